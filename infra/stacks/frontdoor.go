package stacks

import (
	_ "embed"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscertificatemanager"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudfront"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudfrontorigins"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssecretsmanager"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"

	"github.com/skiff-registry/skiff/internal/deploy"
)

// OriginSecretHeader (deploy.OriginSecretHeader) is the header CloudFront
// adds to every request it sends to a function. Each function compares it
// (in constant time) with the secret named by deploy.EnvOriginSecretARN and
// refuses a request without it: the Function URLs are public (AuthType
// NONE), so this is what keeps direct calls, which bypass CloudFront's TLS
// policy and logs, out.
const OriginSecretHeader = deploy.OriginSecretHeader

// routes are the distribution's cache behaviours in CloudFront's order
// (first match wins). They do not decide where a request goes: the
// viewer-request function (viewerRequestCode), associated with every
// behaviour, selects the origin of the path's route group, and that
// choice overrides the matched behaviour's origin. They stay because
// CDK's Distribution adds an origin only through a behaviour (the
// function can select only origins of the distribution), and as a
// fallback that routes ordinary repository names right should the
// function's association ever be removed. Every behaviour has the same
// policies and the same function, so which one matches changes nothing
// else. On its own a glob can't say "one segment" (CloudFront's `*`
// matches `/` too), which is why the function routes: a repository named
// like a route keyword (a/blobs/b, x/manifests/y) would be misrouted by
// these patterns alone. API Gateway can't route these paths at all: its
// greedy {proxy+} only matches at the end of a path, and repository names
// contain slashes.
func routes(ingest bool) []deploy.Behavior { return deploy.Behaviors(ingest) }

// defaultRoute is the function behind the default behaviour, and the one
// the viewer-request function picks for a path that is no registry route.
const defaultRoute = deploy.DefaultFunction

// originID is the ID of a function's origin in the distribution, which
// viewerRequestCode names in its `origins` table. Explicit, so the IDs are
// stable and the function can name them (CDK would generate them).
func originID(fn string) string { return "skiff-" + fn }

// viewerRequestCode is the CloudFront Function (cloudfront-js-2.0) every
// behaviour runs on viewer request. It does three things.
//
// It routes: it reads the route group from the end of the path, as
// internal/httpapi parseRoute does (httpapi.RouteGroup; tools/lambdafront
// runs this code under Node against it, over tricky repository names and
// random ones), and selects that group's origin by ID with
// cf.selectRequestOriginById, which needs runtime 2.0, the import on the
// first line, a viewer-request trigger and an origin of this
// distribution. A path that is no registry route goes to the catalog,
// like the default behaviour. The path is percent-decoded first, because
// the functions route the decoded path (net/http's URL.Path: %2F is a
// slash to them), byte by byte: only ASCII ('/' and the keywords) matters
// to the grammar, and a UTF-8 byte above 0x7f can't decode to one. A
// malformed escape, which the functions refuse whatever the route, goes
// to the catalog. No regular expression runs on a path without '%': the
// code stays well inside a function's 1 ms compute budget and 10 KB.
//
// It sets X-Forwarded-Host. CloudFront replaces Host with the Function
// URL's domain, so without it a function can't tell which name clients
// used, and the token realm it puts in WWW-Authenticate
// (internal/httpapi realm(): X-Forwarded-Host when forwarded headers are
// trusted, as they are in Lambda) would name the Function URL. It sets
// only that: X-Forwarded-Proto is one of the headers CloudFront calls
// disallowed for edge functions: it is not shown to them, a function that
// adds it fails validation (502 to the viewer), CloudFront removes a
// client's X-Forwarded-Proto before the origin request, and the Function
// URL adds its own (https: CloudFront reaches the origins over HTTPS
// only), which is also the viewer's scheme, since viewer HTTP is
// redirected to HTTPS.
//
// It sets X-Skiff-Viewer-Ip to event.viewer.ip, replacing a client's. A
// function sees a CloudFront edge as the request's source, and the last
// X-Forwarded-For entry may be an edge too; the failed-login limit counts
// per source address, and an edge's address would let one attacker
// block every client behind it. The functions read this header instead
// (internal/config ViewerIPHeader, trusted in Lambda); only CloudFront
// reaches them (the origin secret), and this function always sets it.
//
// The code is in viewer-request.js, embedded here.
//
//go:embed viewer-request.js
var viewerRequestCode string

func newFrontDoor(scope constructs.Construct, s settings, st storage, fns []function, sec secrets, ing *ingest) awscloudfront.Distribution {
	header := originSecretHeader(s, sec)
	origins := map[string]awscloudfront.IOrigin{}
	for _, f := range fns {
		origins[f.spec.name] = awscloudfrontorigins.NewFunctionUrlOrigin(f.url, &awscloudfrontorigins.FunctionUrlOriginProps{
			OriginId:      jsii.String(originID(f.spec.name)),
			CustomHeaders: header,
			ReadTimeout:   awscdk.Duration_Seconds(jsii.Number(f.spec.readTimeout)),
		})
	}
	if ing != nil {
		origins[deploy.Ingest] = ing.origin
	}
	code, err := deploy.ViewerRequestCode(viewerRequestCode, ing != nil)
	if err != nil {
		panic(err) // the embedded file: a test runs it
	}

	// JS 2.0: origin selection (the cloudfront module) needs it.
	viewerRequest := awscloudfront.NewFunction(scope, jsii.String("ViewerRequest"), &awscloudfront.FunctionProps{
		Comment: jsii.String("Skiff: origin by route group; X-Forwarded-Host from the viewer's Host, for the token realm"),
		Code:    awscloudfront.FunctionCode_FromInline(jsii.String(code)),
		Runtime: awscloudfront.FunctionRuntime_JS_2_0(),
	})
	associations := &[]*awscloudfront.FunctionAssociation{{
		Function:  viewerRequest,
		EventType: awscloudfront.FunctionEventType_VIEWER_REQUEST,
	}}

	// Registry traffic is per-request and authenticated: nothing is cached
	// (manifest tags move, blobs are served by presigned S3 redirects), and
	// the functions see every viewer header but Host, which must name the
	// Function URL for Lambda to route it (Authorization included: the
	// managed policy may forward it because caching is off), and every
	// query string (?digest=, ?mount=, ?n=&last=). Compression is off:
	// manifests must reach clients byte for byte.
	//
	// The viewer-request function runs before CloudFront builds the origin
	// request, and what it returns is the viewer request from then on, so
	// "all viewer headers except Host" includes the X-Forwarded-Host it
	// sets: no policy of our own is needed (AWS's own CloudFront Functions
	// examples add origin-bound headers the same way).
	behavior := func(origin awscloudfront.IOrigin) *awscloudfront.BehaviorOptions {
		return &awscloudfront.BehaviorOptions{
			Origin:               origin,
			AllowedMethods:       awscloudfront.AllowedMethods_ALLOW_ALL(),
			CachePolicy:          awscloudfront.CachePolicy_CACHING_DISABLED(),
			OriginRequestPolicy:  awscloudfront.OriginRequestPolicy_ALL_VIEWER_EXCEPT_HOST_HEADER(),
			ViewerProtocolPolicy: awscloudfront.ViewerProtocolPolicy_REDIRECT_TO_HTTPS,
			Compress:             jsii.Bool(false),
			FunctionAssociations: associations,
		}
	}

	props := &awscloudfront.DistributionProps{
		Comment:         jsii.String("Skiff OCI registry"),
		DefaultBehavior: behavior(origins[defaultRoute]),
		HttpVersion:     awscloudfront.HttpVersion_HTTP2_AND_3,
		PriceClass:      s.PriceClass,
		EnableLogging:   jsii.Bool(true),
		LogBucket:       st.logBucket,
		LogFilePrefix:   jsii.String("cloudfront/"),
	}
	// The minimum TLS version is only settable with a custom certificate:
	// the default *.cloudfront.net certificate's policy is fixed by
	// CloudFront (TLSv1), which is why CustomDomain is recommended.
	if d := s.CustomDomain; d != nil {
		props.DomainNames = jsii.Strings(d.DomainName)
		props.MinimumProtocolVersion = awscloudfront.SecurityPolicyProtocol_TLS_V1_2_2021
		props.SslSupportMethod = awscloudfront.SSLMethod_SNI
		props.Certificate = awscertificatemanager.Certificate_FromCertificateArn(scope, jsii.String("Certificate"), jsii.String(d.CertificateArn))
	}
	dist := awscloudfront.NewDistribution(scope, jsii.String("FrontDoor"), props)

	// Added one by one, not through AdditionalBehaviors: a Go map has no
	// order, and the order is the routing.
	for _, r := range routes(ing != nil) {
		b := behavior(origins[r.Function])
		dist.AddBehavior(jsii.String(r.Pattern), origins[r.Function], &awscloudfront.AddBehaviorOptions{
			AllowedMethods:       b.AllowedMethods,
			CachePolicy:          b.CachePolicy,
			OriginRequestPolicy:  b.OriginRequestPolicy,
			ViewerProtocolPolicy: b.ViewerProtocolPolicy,
			Compress:             b.Compress,
			FunctionAssociations: b.FunctionAssociations,
		})
	}
	return dist
}

// originSecretHeader is the custom origin header every origin gets: the
// origin secret, by reference.
func originSecretHeader(s settings, sec secrets) *map[string]*string {
	// CloudFront keeps custom origin header values as plain strings, and
	// CDK can only put a literal or a token in the template. A Secrets
	// Manager dynamic reference is such a token: the template holds
	// {{resolve:secretsmanager:<arn>:SecretString:::}} and CloudFormation
	// resolves it when it creates or updates the distribution (secretsmanager
	// dynamic references are allowed in any resource property), so the
	// value is in neither the template nor cdk.out, and the functions read
	// the same secret at cold start. What this does not hide: CloudFront
	// stores the resolved value in the distribution config, readable by
	// anyone allowed cloudfront:GetDistributionConfig in this account.
	// UnsafeUnwrap is safe here: it yields the reference, not the value.
	value := sec.origin.SecretValue()
	if s.OriginSecretVersionID != "" {
		value = awscdk.SecretValue_SecretsManager(sec.origin.SecretArn(), &awscdk.SecretsManagerSecretOptions{
			VersionId: jsii.String(s.OriginSecretVersionID),
		})
	}
	return &map[string]*string{OriginSecretHeader: value.UnsafeUnwrap()}
}

// newSecrets creates the two secrets every function reads. Secrets
// Manager generates both values at deploy time: they are never in the
// template or in cdk.out.
func newSecrets(scope constructs.Construct, s settings) secrets {
	origin := awssecretsmanager.NewSecret(scope, jsii.String("OriginSecret"), &awssecretsmanager.SecretProps{
		Description: jsii.String("Skiff: value of the " + OriginSecretHeader + " header CloudFront adds to every origin request; the functions refuse requests without it"),
		GenerateSecretString: &awssecretsmanager.SecretStringGenerator{
			// Alphanumeric only: it travels as an HTTP header value.
			PasswordLength:     jsii.Number(48),
			ExcludePunctuation: jsii.Bool(true),
			IncludeSpace:       jsii.Bool(false),
		},
		RemovalPolicy: s.removal,
	})
	authKey := awssecretsmanager.NewSecret(scope, jsii.String("AuthKey"), &awssecretsmanager.SecretProps{
		Description: jsii.String("Skiff: key that signs and verifies registry bearer tokens"),
		GenerateSecretString: &awssecretsmanager.SecretStringGenerator{
			PasswordLength:     jsii.Number(64),
			ExcludePunctuation: jsii.Bool(true),
			IncludeSpace:       jsii.Bool(false),
		},
		RemovalPolicy: s.removal,
	})
	return secrets{origin: origin, authKey: authKey}
}
