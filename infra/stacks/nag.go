package stacks

import (
	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"
	"github.com/cdklabs/cdk-nag-go/cdknag/v2"
)

// AddNagChecks runs cdk-nag's AWS Solutions rules over everything in
// scope (the app) at synth time. An unsuppressed error fails `cdk synth`;
// the tests fail on errors and warnings alike.
func AddNagChecks(scope constructs.IConstruct) {
	awscdk.Aspects_Of(scope).Add(cdknag.NewAwsSolutionsChecks(&cdknag.NagPackProps{Verbose: jsii.Bool(true)}), nil)
}

// suppression is one accepted cdk-nag finding: the rule, why it doesn't
// apply or is accepted, and (for granular rules) which findings exactly.
type suppression struct {
	id, reason string
	appliesTo  []any // strings or *cdknag.RegexAppliesTo; nil: the whole rule
}

// Each suppression sits on the one construct it concerns, never on the
// whole stack, so a new resource with the same problem is still reported.
func suppress(stack awscdk.Stack, s settings) {
	on := func(c constructs.IConstruct, children bool, list ...suppression) {
		var ps []*cdknag.NagPackSuppression
		for _, x := range list {
			p := &cdknag.NagPackSuppression{Id: jsii.String(x.id), Reason: jsii.String(x.reason)}
			if x.appliesTo != nil {
				p.AppliesTo = &x.appliesTo
			}
			ps = append(ps, p)
		}
		cdknag.NagSuppressions_AddResourceSuppressions(c, &ps, jsii.Bool(children))
	}
	child := func(id string) constructs.IConstruct { return stack.Node().FindChild(jsii.String(id)) }

	// The object prefixes in the function policies. The regexes name this
	// stack's bucket and exactly the two prefixes, so any other wildcard
	// (another bucket, another prefix, an action wildcard) is still an error.
	prefixes := map[string]suppression{
		blobsPrefix: {
			id: "AwsSolutions-IAM5",
			reason: "Blob keys are blobs/<alg>/<hex> (content-addressed) and blobs/uploaded/<upload id>, " +
				"new for every pushed blob, so access can only be granted by key prefix; the statement is limited " +
				"to the actions each function uses, on this bucket's blobs/ prefix only (internal/registry/keys.go)",
			appliesTo: []any{&cdknag.RegexAppliesTo{Regex: jsii.String(`/^Resource::<Blobs[0-9A-F]+\.Arn>\/blobs\/\*$/`)}},
		},
		uploadsPrefix: {
			id: "AwsSolutions-IAM5",
			reason: "Upload tail segments are uploads/<upload id>/<offset>-<claim>, new keys for every chunk, " +
				"so access can only be granted by key prefix; only the blob function gets it, and uploads/ is scratch " +
				"that the bucket's lifecycle expires",
			appliesTo: []any{&cdknag.RegexAppliesTo{Regex: jsii.String(`/^Resource::<Blobs[0-9A-F]+\.Arn>\/uploads\/\*$/`)}},
		},
	}
	for _, spec := range fnSpecs {
		var list []suppression
		for _, p := range spec.objectPrefixes {
			list = append(list, prefixes[p])
		}
		if len(list) > 0 {
			// The role's DefaultPolicy is its child.
			on(child(titleCase(spec.name)+"Role"), true, list...)
		}
	}

	on(child("GcRole"), true, prefixes[blobsPrefix])
	on(child("SyncRole"), true, prefixes[blobsPrefix], prefixes[uploadsPrefix], suppression{
		id: "AwsSolutions-IAM5",
		reason: "The upstream registries' credentials are secrets the operator creates per mirror rule, named under " +
			MirrorSecretsPrefix + "; the sync reads those alone (GetSecretValue), never the origin secret or the token key",
		appliesTo: []any{&cdknag.RegexAppliesTo{Regex: jsii.String(`/^Resource::arn:<AWS::Partition>:secretsmanager:<AWS::Region>:<AWS::AccountId>:secret:skiff\/mirror\/\*$/`)}},
	})
	for _, fn := range []string{"Gc", "Sync"} {
		on(child(fn+"ScheduleRole"), true, suppression{
			id: "AwsSolutions-IAM5",
			reason: "CDK's Lambda target grants lambda:InvokeFunction on the function and its versions (<arn>:*); " +
				"the role is the schedule's own and may invoke nothing else",
			appliesTo: []any{&cdknag.RegexAppliesTo{Regex: jsii.String(`/^Resource::<` + fn + `Function[0-9A-F]+\.Arn>:\*$/`)}},
		})
	}

	if s.Ingest {
		// The ingest task role holds the blob function's grants.
		on(child("IngestRole"), true, prefixes[blobsPrefix], prefixes[uploadsPrefix])
		on(child("IngestTask"), true,
			suppression{
				id: "AwsSolutions-ECS2",
				reason: "The container's environment holds names and ARNs only (bucket, table, the two secrets' ARNs, " +
					"policies, the realm): the server reads the secrets' values from Secrets Manager at start, as the functions do",
			},
			suppression{
				id: "AwsSolutions-IAM5",
				reason: "The task execution role CDK generates: ecr:GetAuthorizationToken has no resource-level " +
					"permissions, so it is granted on *; the image pull and log writes are on the asset repository and the log group",
				appliesTo: []any{"Resource::*"},
			})
		on(child("IngestCluster"), true, suppression{
			id: "AwsSolutions-ECS4",
			reason: "The ingest alarms use the load balancer's and the service's own metrics (5xx, CPU), which need no " +
				"Container Insights; it is billed per metric and can be turned on for a deployment that wants it",
		})
		on(child("IngestLoadBalancer"), true, suppression{
			id: "AwsSolutions-ELB2",
			reason: "Its only client is CloudFront, whose access log (the stack's log bucket) records every request; " +
				"the tasks log one JSON line per request to CloudWatch. ELB log delivery also needs the region at " +
				"synth time, which this environment-agnostic stack does not have",
		})
	}

	on(child("OriginSecret"), false, suppression{
		id: "AwsSolutions-SMG4",
		reason: "Not rotatable automatically: CloudFront holds the value CloudFormation resolved from the dynamic " +
			"reference at deploy time, so a new value reaches the distribution only with a stack update of it. " +
			"Rotation is an operator procedure (infra/README.md, Rotating the origin secret)",
	})
	on(child("AuthKey"), false, suppression{
		id: "AwsSolutions-SMG4",
		reason: "The token signing key is rotated by operators (put-secret-value, see infra/README.md); automatic " +
			"rotation needs a rotation function and a verifier that accepts the previous key until the tokens it " +
			"signed expire, which the functions don't have yet",
	})

	dist := child("FrontDoor")
	list := []suppression{
		{
			id: "AwsSolutions-CFR1",
			reason: "A registry serves its clients wherever they are: there is no country to refuse by default. " +
				"Deployments with export-control needs add a geo restriction",
		},
		{
			id: "AwsSolutions-CFR2",
			reason: "Every function refuses requests without the origin secret and Lambda concurrency bounds the load; " +
				"a web ACL adds a fixed monthly cost and per-request charges to every layer pull. Attach one " +
				"(a rate-based rule) when the registry faces untrusted clients",
		},
	}
	if s.CustomDomain == nil {
		list = append(list, suppression{
			id: "AwsSolutions-CFR4",
			reason: "Without CustomDomain the distribution serves *.cloudfront.net with CloudFront's default " +
				"certificate, whose security policy CloudFront fixes (TLSv1) and no setting can raise; with " +
				"CustomDomain the stack sets TLSv1.2_2021 and SNI and this suppression is not added",
		})
	}
	on(dist, true, list...)
}
