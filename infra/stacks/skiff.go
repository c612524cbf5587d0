// Package stacks is Skiff's AWS deployment: one stack with the blob bucket,
// the metadata table, the manifest, blob and catalog functions, and a
// CloudFront distribution routing the registry API to them. See
// infra/README.md for the design and what each choice costs.
package stacks

import (
	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"
)

// NewSkiffStack defines the stack. props may be nil. Invalid props panic
// with every problem listed (the CDK idiom: they are programming errors
// caught at synth time), before any resource is defined.
func NewSkiffStack(scope constructs.Construct, id string, props *SkiffStackProps) awscdk.Stack {
	s, err := resolve(props)
	if err != nil {
		panic(err)
	}
	sprops := s.StackProps
	if sprops.Description == nil {
		sprops.Description = jsii.String("Skiff: serverless OCI container registry (S3, DynamoDB, Lambda, CloudFront)")
	}
	stack := awscdk.NewStack(scope, &id, &sprops)

	st := newStorage(stack, s)
	sec := newSecrets(stack, s)
	fns := newFunctions(stack, s, st, sec)
	newCollector(stack, s, st, sec)
	newSync(stack, s, st, sec)
	var ing *ingest
	if s.Ingest {
		ing = newIngest(stack, s, st, sec)
	}
	dist := newFrontDoor(stack, s, st, fns, sec, ing)
	if ing != nil {
		ing.setRealm(s, dist)
	}
	newAlarms(stack, s, fns, dist, ing)

	host := dist.DistributionDomainName()
	if s.CustomDomain != nil {
		host = jsii.String(s.CustomDomain.DomainName)
	}
	output(stack, "RegistryURL", awscdk.Fn_Join(jsii.String(""), &[]*string{jsii.String("https://"), host}),
		"the registry: docker login / push / pull against this host")
	output(stack, "DistributionDomainName", dist.DistributionDomainName(),
		"the CloudFront domain; point a custom domain's CNAME or alias here")
	output(stack, "BucketName", st.bucket.BucketName(), "blobs (SKIFF_S3_BUCKET)")
	output(stack, "TableName", st.table.TableName(), "metadata (SKIFF_DYNAMODB_TABLE); `skiff policy --table` takes this")

	suppress(stack, s)
	return stack
}

func output(stack awscdk.Stack, id string, value *string, description string) {
	awscdk.NewCfnOutput(stack, jsii.String(id), &awscdk.CfnOutputProps{
		Value:       value,
		Description: jsii.String(description),
	})
}
