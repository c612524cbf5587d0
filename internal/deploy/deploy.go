// Package deploy is the contract between Skiff's server and the
// deployments that run it: the route table the front door sends requests
// by, the function of each route group, the headers the front door adds,
// the token path, the Lambda body limits and the environment variables a
// function is configured with. internal/config, internal/httpapi,
// tools/lambdafront (the local front door) and infra/stacks (the CDK app)
// all import it, so a route or a variable is added here, once; the
// CloudFront Function (infra/stacks/viewer-request.js) stays JavaScript
// and is checked against it under Node. It imports only the standard
// library.
package deploy

import (
	"errors"
	"strconv"
	"strings"
)

// The Lambda functions, one per route group of internal/httpapi.
const (
	FunctionManifest = "manifest" // manifests, referrers
	FunctionBlob     = "blob"     // blobs, uploads
	FunctionCatalog  = "catalog"  // /v2/, _catalog, tags/list, /v2/_skiff/ (operator API, tokens)
)

// FunctionGC is the garbage collector EventBridge Scheduler invokes: no
// route group, no URL.
const FunctionGC = "gc"

// FunctionSync is the sync of the stored mirror rules EventBridge
// Scheduler invokes: no route group, no URL.
const FunctionSync = "sync"

// MirrorSecretsPrefix is where the sync's upstream credentials live in
// Secrets Manager: its role may read the secrets named under it alone, and
// a stored mirror rule may name no other.
const MirrorSecretsPrefix = "skiff/mirror/"

// Functions returns the function names, in the order they are started.
func Functions() []string { return []string{FunctionManifest, FunctionBlob, FunctionCatalog} }

// DefaultFunction serves what no behaviour matches, and every path that is
// no registry route.
const DefaultFunction = FunctionCatalog

// Behavior sends the paths matching a CloudFront path pattern (`*` matches
// any run of characters, `/` included) to an origin: a function or the
// ingest service.
type Behavior struct {
	Pattern  string
	Function string
}

// Behaviors returns the front door's cache behaviours in CloudFront's
// order (first match wins). The viewer-request function picks the origin
// by the registry's own route grammar and overrides them; they attach the
// origins to the distribution and route ordinary names right without it.
// With ingest on, the upload patterns name the ingest service.
func Behaviors(ingest bool) []Behavior {
	uploads := FunctionBlob
	if ingest {
		uploads = Ingest
	}
	return []Behavior{
		{"/v2/_skiff/*", FunctionCatalog},
		{"/v2/*/blobs/uploads", uploads},
		{"/v2/*/blobs/uploads/*", uploads},
		{"/v2/*/tags/list", FunctionCatalog},
		{"/v2/*/manifests/*", FunctionManifest},
		{"/v2/*/referrers/*", FunctionManifest},
		{"/v2/*/blobs/*", FunctionBlob},
	}
}

// Headers the front door sets on every request it forwards.
const (
	// OriginSecretHeader carries the front door's shared secret; a
	// function refuses a request without it (direct calls to its URL).
	OriginSecretHeader = "X-Skiff-Origin-Secret"
	// ViewerIPHeader is the viewer's address, replacing any a client sent:
	// behind CloudFront a function's peer, and maybe the last
	// X-Forwarded-For entry, is an edge. The failed-login limit counts by it.
	ViewerIPHeader = "X-Skiff-Viewer-Ip"
)

// TokenPath is where clients get tokens (the realm of the challenge).
const TokenPath = "/v2/_skiff/token"

// The ingest service: `skiff serve --ingest`, the same server as the blob
// function without a body cap, on ECS behind an internal load balancer. A
// stack with Ingest on sends every upload route there (whole layers in one
// request); the functions keep everything else.
const (
	// Ingest names its origin in the viewer-request function's table.
	Ingest = "ingest"
	// IngestPort is the port it listens on in its container.
	IngestPort = 8080
	// HealthPath answers 200 without the origin secret, for the load
	// balancer's health checks; it is no registry route.
	HealthPath = "/healthz"
)

// Origins returns the origin names of the front door: the functions, then
// the ingest service.
func Origins() []string { return append(Functions(), Ingest) }

// TooLargeAdvice is the message of the 413 SIZE_INVALID the front door
// answers, before any function runs, to a request whose Content-Length is
// over limit (LambdaMaxBody) and which is bound for a function: skopeo,
// crane, oras, podman and docker push a layer in one request and print it.
// The viewer-request function builds the same text (a test compares them).
func TooLargeAdvice(limit int64) string {
	n := strconv.FormatInt(limit, 10)
	return "request body exceeds this registry's limit of " + n + " bytes per request (its Lambda functions' cap); " +
		"push large blobs in chunks of at most " + n + " bytes with PATCH and Content-Range " +
		"(for example `regctl registry set HOST --blob-chunk " + n + " --blob-max " + n + "`), " +
		"or ask the operator to turn on the ingest service (stack prop Ingest), which takes a layer of any size in one request"
}

// ingestOff is the viewer-request function's ingest switch as the file
// has it (infra/stacks/viewer-request.js).
const ingestOff = "var ingest = false;"

// ViewerRequestCode returns the viewer-request function's code for a
// front door with (ingest) or without the ingest service: the file's code
// with its switch set. It fails when the code has not exactly one switch.
func ViewerRequestCode(code string, ingest bool) (string, error) {
	if n := strings.Count(code, ingestOff); n != 1 {
		return "", errors.New("the viewer-request function must have exactly one line " + strconv.Quote(ingestOff) + ", has " + strconv.Itoa(n))
	}
	if !ingest {
		return code, nil
	}
	return strings.Replace(code, ingestOff, "var ingest = true;", 1), nil
}

// Lambda's limits, as the functions apply them.
const (
	// LambdaMaxBody keeps a request under Lambda's 6 MB synchronous
	// payload once base64-encoded inside the event (4 MiB * 4/3 = 5.3 MiB).
	LambdaMaxBody = 4 << 20
	// LambdaRedirectMin sends every blob of a MiB or more to S3 by 307:
	// function responses are capped at 6 MB and cost function time.
	LambdaRedirectMin = 1 << 20
)

// The environment of a function (internal/config.FromEnv reads it, the
// stack and the local front door set it).
const (
	EnvBucket          = "SKIFF_S3_BUCKET"
	EnvTable           = "SKIFF_DYNAMODB_TABLE"
	EnvMaxBody         = "SKIFF_MAX_BODY"
	EnvRedirectMin     = "SKIFF_REDIRECT_MIN"
	EnvAuth            = "SKIFF_AUTH"
	EnvOperatorAPI     = "SKIFF_OPERATOR_API"
	EnvTrustForwarded  = "SKIFF_TRUST_FORWARDED"
	EnvAnonymousPull   = "SKIFF_ANONYMOUS_PULL"
	EnvDefaultPolicies = "SKIFF_DEFAULT_POLICIES"
	EnvTokenKeySecret  = "SKIFF_AUTH_KEY_SECRET_ARN"
	EnvTokenKeyFile    = "SKIFF_AUTH_KEY_FILE"
	EnvRealm           = "SKIFF_REALM"
	EnvOriginSecret    = "SKIFF_ORIGIN_SECRET"
	EnvOriginSecretARN = "SKIFF_ORIGIN_SECRET_ARN"
	EnvLogLevel        = "LOG_LEVEL"
	// EnvGCGrace is the garbage collector's grace period (a Go duration):
	// HEADs refresh links older than half of it, so the servers and the
	// collector must share it.
	EnvGCGrace = "SKIFF_GC_GRACE"
	// EnvDefaultRetention holds the deployment's retention policies (a
	// JSON list); a stored one for the same prefix replaces one.
	EnvDefaultRetention = "SKIFF_DEFAULT_RETENTION"
	// EnvGCInterval is the time from one collection's end to the next
	// one's start (a Go duration; the scheduled collector reads it).
	EnvGCInterval = "SKIFF_GC_INTERVAL"
	// EnvSyncInterval is the time from one sync run's start to the next
	// one's (a Go duration; the scheduled sync reads it).
	EnvSyncInterval = "SKIFF_SYNC_INTERVAL"
)

// Env returns every variable above, for checks that a deployment sets
// only variables the server reads.
func Env() []string {
	return []string{EnvBucket, EnvTable, EnvMaxBody, EnvRedirectMin, EnvAuth, EnvOperatorAPI, EnvTrustForwarded,
		EnvAnonymousPull, EnvDefaultPolicies, EnvTokenKeySecret, EnvTokenKeyFile, EnvRealm, EnvOriginSecret, EnvOriginSecretARN, EnvLogLevel, EnvGCGrace, EnvDefaultRetention, EnvGCInterval, EnvSyncInterval}
}
