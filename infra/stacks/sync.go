package stacks

import (
	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambda"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"

	"github.com/skiff-registry/skiff/internal/deploy"
)

// MirrorSecretsPrefix is where the sync's upstream credentials live in
// Secrets Manager (internal/mirror refuses a rule naming another).
const MirrorSecretsPrefix = deploy.MirrorSecretsPrefix

// syncSpec is what the scheduled sync may do: what a push does (links,
// manifests, tags, uploads and their multipart objects, content records),
// read its checkpoint and the rules, and record each rule's run. Its
// secrets are the upstreams' (syncSecrets), not the origin secret or the
// token key: it serves no request.
func syncSpec() fnSpec {
	return fnSpec{
		name:        deploy.FunctionSync,
		description: "Skiff sync: runs the stored mirror rules, pulling from upstream registries into the registry; resumable, invoked by EventBridge Scheduler",
		// A layer streams through two parts in memory; CPU for SHA-256
		// comes with memory (1,769 MB is a whole vCPU).
		memory: 2048, timeout: collectorTimeout,
		tableActions:   []string{"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:DeleteItem", "dynamodb:Query", "dynamodb:BatchGetItem"},
		updateKeys:     []string{repoKeyPrefix, contentKeyPrefix},
		objectActions:  []string{"s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"},
		objectPrefixes: []string{blobsPrefix, uploadsPrefix},
		listBucket:     true,
		noSecrets:      true,
	}
}

// newSync adds the sync function, its schedule and its read of the
// upstreams' secrets.
func newSync(scope constructs.Construct, s settings, st storage, sec secrets) awslambda.Function {
	env := serverEnv(s, st, sec)
	env[deploy.EnvSyncInterval] = jsii.String(s.SyncInterval.String())
	fn := newScheduled(scope, s, st, sec, syncSpec(), env, "Sync",
		"Skiff sync: goes on with the run of the mirror rules in progress, or starts one every SyncInterval")
	stack := awscdk.Stack_Of(scope)
	fn.Role().AddToPrincipalPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Actions: jsii.Strings("secretsmanager:GetSecretValue"),
		Resources: jsii.Strings(*stack.FormatArn(&awscdk.ArnComponents{
			Service: jsii.String("secretsmanager"), Resource: jsii.String("secret"),
			ResourceName: jsii.String(MirrorSecretsPrefix + "*"), ArnFormat: awscdk.ArnFormat_COLON_RESOURCE_NAME,
		})),
	}))
	return fn
}
