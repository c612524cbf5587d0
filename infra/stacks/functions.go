package stacks

import (
	"strconv"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambda"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslogs"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssecretsmanager"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"
	"github.com/skiff-registry/skiff/internal/deploy"
)

// Request limits passed to every function (internal/deploy).
const (
	// maxBody is the largest request body a function accepts. Lambda's
	// synchronous payload is 6 MB and a Function URL carries a binary body
	// base64-encoded inside the event JSON (4/3 the size), which leaves
	// about 4.4 MiB; 4 MiB keeps headroom for headers and the event.
	maxBody = deploy.LambdaMaxBody
	// redirectMin is the smallest blob a GET answers with a 307 to a
	// presigned S3 URL instead of the bytes; smaller blobs (configs, small
	// layers) are cheaper to return inline than to make a second request.
	redirectMin = deploy.LambdaRedirectMin
)

// fnSpec is what differs between the three functions.
type fnSpec struct {
	name        string
	description string
	// memory in MB. Lambda allocates CPU and network in proportion.
	memory float64
	// timeout of the function; readTimeout of the CloudFront origin in
	// front of it (at most 60 s without a quota increase), a little longer
	// so that a timed-out function answers, not CloudFront.
	timeout, readTimeout float64
	tableActions         []string
	// updateKeys are the partition key prefixes (besides the counters')
	// whose items UpdateItem may change: links and manifests ("R#"),
	// content records ("D#").
	updateKeys []string
	// objectActions are the S3 actions on objectPrefixes of the bucket.
	objectActions  []string
	objectPrefixes []string
	// listBucket grants s3:ListBucket on the bucket. S3 answers a HEAD or
	// GET of a missing key with 403 AccessDenied, not 404, to a caller
	// without it, and the blob store maps only 404 to "not found".
	listBucket bool
	// noSecrets: the function reads neither the origin secret nor the
	// token key (the collector checks no request).
	noSecrets bool
}

var fnSpecs = []fnSpec{
	{
		name:        "manifest",
		description: "Skiff manifest route group: /v2/<name>/manifests/<ref>, /v2/<name>/referrers/<digest>",
		// Manifests are small JSON (at most maxBody); 256 MB is plenty and
		// the cheapest size that still gets a useful CPU share.
		memory: 256, timeout: 20, readTimeout: 30,
		tableActions: []string{"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:DeleteItem", "dynamodb:Query", "dynamodb:BatchGetItem"},
		// A use of a manifest (a GET by digest), a marked link an image
		// names, a large body's content record.
		updateKeys: []string{repoKeyPrefix, contentKeyPrefix},
		// Manifest bodies too large to keep inline in their item are
		// stored (and read) as blobs/<alg>/<hex>/<nonce>; a copy that
		// loses to one stored at once is deleted.
		objectActions:  []string{"s3:GetObject", "s3:PutObject", "s3:DeleteObject"},
		objectPrefixes: []string{blobsPrefix},
	},
	{
		name:        "blob",
		description: "Skiff blob route group: /v2/<name>/blobs/<digest>, /v2/<name>/blobs/uploads/...",
		// A PATCH holds up to one 8 MiB part plus the decoded request body
		// (up to maxBody) and the base64 event it came in, and hashes it
		// with SHA-256 and SHA-512; 512 MB gives that room twice over and
		// twice the CPU and network share of 256 MB, which shortens every
		// upload request.
		memory: 512, timeout: 55, readTimeout: 60,
		tableActions: []string{"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:DeleteItem", "dynamodb:BatchGetItem", "dynamodb:Query"},
		// A HEAD refreshing a link, the content record of a push.
		updateKeys: []string{repoKeyPrefix, contentKeyPrefix},
		// s3:PutObject also authorizes CreateMultipartUpload, UploadPart and
		// CompleteMultipartUpload. GetObject also signs the presigned GETs.
		objectActions:  []string{"s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"},
		objectPrefixes: []string{blobsPrefix, uploadsPrefix},
		// A mount without from= (POST ?mount=<digest>) looks for
		// blobs/<alg>/<hex> with HeadObject and expects a 404 when the blob
		// isn't there; with a 403 it would answer 500 instead of falling
		// back to an upload session. Without a condition on s3:prefix: S3
		// documents the 404 only for callers allowed s3:ListBucket on the
		// bucket, and a HEAD has no prefix to match a condition against.
		listBucket: true,
	},
	{
		name:        "catalog",
		description: "Skiff catalog route group: /v2/, /v2/_catalog, /v2/<name>/tags/list, /v2/_skiff/... (operator API), tokens",
		// Listings and settings: small items, paged.
		memory: 256, timeout: 20, readTimeout: 30,
		// Catalog, tags, and settings (policies, audit, users) written
		// through the operator API. The operator API's index status
		// (/v2/_skiff/index/<repo>/<ref>, Registry.IndexStatus) also looks
		// its children up with BatchGetItem (GetManifests) and reads the
		// index body, which is in S3 (blobs/<alg>/<hex>) when it is over
		// the 64 KiB kept inline: read-only, never a write to S3.
		tableActions:   []string{"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:DeleteItem", "dynamodb:Query", "dynamodb:BatchGetItem"},
		objectActions:  []string{"s3:GetObject"},
		objectPrefixes: []string{blobsPrefix},
	},
}

type function struct {
	spec fnSpec
	fn   awslambda.Function
	url  awslambda.FunctionUrl
}

type secrets struct {
	origin  awssecretsmanager.Secret
	authKey awssecretsmanager.Secret
}

func newFunctions(scope constructs.Construct, s settings, st storage, sec secrets) []function {
	var out []function
	for _, spec := range fnSpecs {
		out = append(out, newFunction(scope, s, st, sec, spec))
	}
	return out
}

func newFunction(scope constructs.Construct, s settings, st storage, sec secrets, spec fnSpec) function {
	env := serverEnv(s, st, sec)
	env[deploy.EnvMaxBody] = jsii.String(strconv.Itoa(maxBody))
	env[deploy.EnvRedirectMin] = jsii.String(strconv.Itoa(redirectMin))
	fn := newLambda(scope, s, st, sec, spec, env, nil)
	// AuthType NONE: IAM auth (or CloudFront OAC, which signs with SigV4)
	// would need the payload hash of PUT and PATCH bodies from the
	// client, and registry clients don't send one. The origin secret
	// header, checked by every function, keeps direct calls out.
	url := fn.AddFunctionUrl(&awslambda.FunctionUrlOptions{
		AuthType:   awslambda.FunctionUrlAuthType_NONE,
		InvokeMode: awslambda.InvokeMode_BUFFERED,
	})
	return function{spec: spec, fn: fn, url: url}
}

// newLambda adds spec's function with env, its own log group and its own
// role granted exactly what spec says; reserved, if set, caps its
// concurrency.
func newLambda(scope constructs.Construct, s settings, st storage, sec secrets, spec fnSpec, env map[string]*string, reserved *float64) awslambda.Function {
	id := func(suffix string) *string { return jsii.String(titleCase(spec.name) + suffix) }

	// Created here rather than left to Lambda so it has a retention and a
	// removal policy, and so the role can be granted exactly this group.
	logGroup := awslogs.NewLogGroup(scope, id("Logs"), &awslogs.LogGroupProps{
		Retention:     awslogs.RetentionDays_ONE_MONTH,
		RemovalPolicy: s.removal,
	})

	// An explicit role instead of Lambda's default: the default attaches
	// AWSLambdaBasicExecutionRole, which may write to every log group.
	what := "its log group, the metadata table, its bucket prefixes, the two secrets"
	if spec.noSecrets {
		what = "its log group, the metadata table, its bucket prefixes"
	}
	role := awsiam.NewRole(scope, id("Role"), &awsiam.RoleProps{
		AssumedBy:   awsiam.NewServicePrincipal(jsii.String("lambda.amazonaws.com"), nil),
		Description: jsii.String("Skiff " + spec.name + " function: " + what),
	})
	logGroup.GrantWrite(role)
	grantStorage(role, spec, st, sec)

	return awslambda.NewFunction(scope, id("Function"), &awslambda.FunctionProps{
		Description:                  jsii.String(spec.description),
		Runtime:                      awslambda.Runtime_PROVIDED_AL2023(),
		Architecture:                 awslambda.Architecture_ARM_64(),
		Handler:                      jsii.String("bootstrap"),
		Code:                         awslambda.Code_FromAsset(jsii.String(s.zips[spec.name]), nil),
		MemorySize:                   jsii.Number(spec.memory),
		Timeout:                      awscdk.Duration_Seconds(jsii.Number(spec.timeout)),
		Role:                         role,
		LogGroup:                     logGroup,
		Environment:                  &env,
		ReservedConcurrentExecutions: reserved,
	})
}

func titleCase(s string) string {
	if s == "" {
		return s
	}
	return string(s[0]-'a'+'A') + s[1:]
}

// grantStorage gives role what spec's route group needs: its table
// actions, the counter updates of the failed-login limit, its object
// actions on its bucket prefixes, the bucket listing when it needs it, and
// the two secrets. The ingest service's task role gets the blob
// function's (ingest.go).
func grantStorage(role awsiam.Role, spec fnSpec, st storage, sec secrets) {
	st.table.Grant(role, *jsii.Strings(spec.tableActions...)...)
	// Every function checks Basic credentials, so every one counts failed
	// logins (awsstore.Reserve and Release: UpdateItem ADD). UpdateItem is allowed
	// on the counter partitions ("C#<key>") and those of spec.updateKeys
	// only: no other item of the table can be changed that way.
	keys := []string{counterKeyPrefix + "*"}
	for _, k := range spec.updateKeys {
		keys = append(keys, k+"*")
	}
	role.AddToPrincipalPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Actions:   jsii.Strings("dynamodb:UpdateItem"),
		Resources: jsii.Strings(*st.table.TableArn()),
		Conditions: &map[string]any{
			"ForAllValues:StringLike": map[string]any{"dynamodb:LeadingKeys": keys},
		},
	}))
	if len(spec.objectActions) > 0 {
		var resources []*string
		for _, p := range spec.objectPrefixes {
			resources = append(resources, st.bucket.ArnForObjects(jsii.String(p+"*")))
		}
		role.AddToPrincipalPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
			Actions:   jsii.Strings(spec.objectActions...),
			Resources: &resources,
		}))
	}
	if spec.listBucket {
		role.AddToPrincipalPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
			Actions:   jsii.Strings("s3:ListBucket"),
			Resources: jsii.Strings(*st.bucket.BucketArn()),
		}))
	}
	if !spec.noSecrets {
		sec.origin.GrantRead(role, nil)
		sec.authKey.GrantRead(role, nil)
	}
}

// serverEnv is the environment the functions and the ingest service share
// (internal/config.FromEnv reads it).
func serverEnv(s settings, st storage, sec secrets) map[string]*string {
	env := map[string]*string{
		deploy.EnvBucket:          st.bucket.BucketName(),
		deploy.EnvTable:           st.table.TableName(),
		deploy.EnvOriginSecretARN: sec.origin.SecretArn(),
		deploy.EnvTokenKeySecret:  sec.authKey.SecretArn(),
		deploy.EnvAnonymousPull:   jsii.String(s.anonymousPull),
		deploy.EnvDefaultPolicies: jsii.String(s.defaultPolicies),
		deploy.EnvLogLevel:        jsii.String(s.LogLevel),
		deploy.EnvGCGrace:         jsii.String(s.GCGrace.String()),
	}
	if s.defaultRetention != "" {
		env[deploy.EnvDefaultRetention] = jsii.String(s.defaultRetention)
	}
	// The realm in WWW-Authenticate normally comes from the X-Forwarded-Host
	// the front door's CloudFront Function sets; with a custom domain the
	// public URL is known here, so it is pinned as well (a fixed realm wins
	// over forwarded headers). Without one it can't be for the functions:
	// the distribution's domain depends on them.
	if d := s.CustomDomain; d != nil {
		env[deploy.EnvRealm] = jsii.String("https://" + d.DomainName + deploy.TokenPath)
	}
	return env
}
