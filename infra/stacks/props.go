package stacks

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudfront"

	"github.com/skiff-registry/skiff/internal/deploy"
	"github.com/skiff-registry/skiff/pkg/oci"
)

// DefaultFunctionsDir is where `make functions` leaves the three zips,
// relative to infra/ (the directory `cdk synth` runs the app in).
const DefaultFunctionsDir = "../build/functions"

// DefaultIngestDir is where `make functions` leaves the ingest service's
// image context (its Dockerfile and the linux/arm64 skiff binary).
const DefaultIngestDir = "../build/ingest"

// Ingest task counts: at least one task runs while Ingest is on.
const (
	defaultIngestMaxTasks = 4
	maxIngestMaxTasks     = 100
)

// FunctionNames are the three Lambda functions, one per route group of
// internal/httpapi; each is deployed from <FunctionsDir>/<name>.zip.
var FunctionNames = deploy.Functions()

// Zips are the function zips a deployment needs: the route groups' and
// the scheduled collector's and sync's.
var Zips = append(slices.Clone(FunctionNames), deploy.FunctionGC, deploy.FunctionSync)

// Lambda's whole environment (keys and values) must fit in 4 KB. The
// values Skiff controls (ARNs and names are ~100 bytes each) get this
// budget for the operator-supplied ones: policies and anonymous prefixes.
const maxOperatorEnvBytes = 3000

var logLevels = []string{"debug", "info", "warn", "error"}

// SkiffStackProps configures a Skiff deployment. The zero value (or nil)
// is a valid, strict, retained deployment with the zips from
// DefaultFunctionsDir.
type SkiffStackProps struct {
	awscdk.StackProps

	// DefaultPolicies are index policies applied to prefixes that have no
	// stored policy (SKIFF_DEFAULT_POLICIES, JSON). A policy stored through
	// the operator API or `skiff policy --table` overrides the default of
	// its prefix. Each is validated as the server validates it.
	DefaultPolicies []oci.Policy

	// DefaultRetention are retention policies applied to prefixes that
	// have no stored one (SKIFF_DEFAULT_RETENTION, JSON), by the
	// collections the deployment runs. One stored with `skiff retention
	// set` overrides the default of its prefix.
	DefaultRetention []oci.Retention

	// AnonymousPull lists repository prefixes anyone may pull from without
	// a token (SKIFF_ANONYMOUS_PULL, comma-separated). Prefixes follow the
	// policy rules: "mirror" covers "mirror" and "mirror/...".
	AnonymousPull []string

	// CustomDomain, when set, adds the domain as an alias of the
	// distribution with its ACM certificate (which must be in us-east-1).
	CustomDomain *CustomDomain

	// FunctionsDir holds manifest.zip, blob.zip, catalog.zip, gc.zip and sync.zip, each with a
	// `bootstrap` at its root. Default DefaultFunctionsDir.
	FunctionsDir string

	// RemovalPolicy of the stateful resources (buckets, table, secrets, log
	// groups): RETAIN (the default) or DESTROY, for throwaway dev stacks
	// (DESTROY also empties the buckets on stack deletion).
	RemovalPolicy awscdk.RemovalPolicy

	// LogLevel of the functions (LOG_LEVEL): debug, info (default), warn or
	// error.
	LogLevel string

	// GCGrace is the garbage collector's grace period (SKIFF_GC_GRACE):
	// nothing younger is collected, and a HEAD keeps a blob for half of it,
	// so set it to more than twice the longest push. Default 24h; at least
	// 10 minutes. Collect with the same grace (skiff gc --grace).
	GCGrace time.Duration

	// GCInterval is the time from one collection's end to the next one's
	// start (SKIFF_GC_INTERVAL, default 24h, at least 1h). The gc function
	// runs every 15 minutes, going on with the pass in progress.
	GCInterval time.Duration

	// SyncInterval is the time from one run of the stored mirror rules to
	// the next (SKIFF_SYNC_INTERVAL, default 24h, at least 15m). The sync
	// function runs every 15 minutes, going on with the run in progress.
	// Upstream credentials: Secrets Manager secrets under skiff/mirror/.
	SyncInterval time.Duration

	// PriceClass of the distribution. Default PRICE_CLASS_100 (North
	// America and Europe edges: the cheapest).
	PriceClass awscloudfront.PriceClass

	// OriginSecretVersionID pins the version of the origin secret that
	// CloudFront sends. Empty: the version current at deploy time. Changing
	// it is how a rotated secret reaches the distribution: CloudFormation
	// resolves the dynamic reference again only when the distribution
	// changes (infra/README.md, Rotating the origin secret).
	OriginSecretVersionID string

	// Ingest adds the ingest service: `skiff serve --ingest` on ECS
	// Fargate behind an internal load balancer, CloudFront's origin for
	// every upload route, so clients that push a layer in one request
	// (skopeo, podman, crane, oras, docker) can push layers of any size.
	// Off (the default), the stack is pure Lambda: uploads go to the blob
	// function, 4 MiB per request, and larger ones are refused with advice.
	// On, an idle registry pays for one small task and a load balancer
	// (infra/README.md, Costs).
	Ingest bool

	// IngestMaxTasks bounds the ingest service's autoscaling (on CPU, from
	// one task). Default 4.
	IngestMaxTasks int

	// IngestDir holds the ingest image's context: Dockerfile and the
	// linux/arm64 skiff binary. Default DefaultIngestDir.
	IngestDir string

	// AlarmTopicArn, when set, is an SNS topic every alarm notifies (on
	// ALARM and back to OK). Without it the alarms are only visible in
	// CloudWatch.
	AlarmTopicArn string
}

// CustomDomain is a domain name served by the distribution.
type CustomDomain struct {
	// DomainName, e.g. registry.example.com. Point it (CNAME, or a Route 53
	// alias) at the DistributionDomainName output.
	DomainName string
	// CertificateArn of an ACM certificate for DomainName in us-east-1
	// (CloudFront only uses certificates from that region).
	CertificateArn string
}

// settings is props after defaults and validation, with the environment
// values rendered.
type settings struct {
	SkiffStackProps
	removal          awscdk.RemovalPolicy
	zips             map[string]string // function name -> zip path
	defaultPolicies  string            // SKIFF_DEFAULT_POLICIES
	defaultRetention string            // SKIFF_DEFAULT_RETENTION
	anonymousPull    string            // SKIFF_ANONYMOUS_PULL
	ingestDir        string            // with Ingest: the image context
	ingestMaxTasks   int
}

var (
	domainRE  = regexp.MustCompile(`^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$`)
	acmArnRE  = regexp.MustCompile(`^arn:aws[a-z-]*:acm:us-east-1:\d{12}:certificate/[A-Za-z0-9-]+$`)
	versionRE = regexp.MustCompile(`^[A-Za-z0-9-]{32,64}$`)
	snsArnRE  = regexp.MustCompile(`^arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_-]{1,256}$`)
	anyACMArn = regexp.MustCompile(`^arn:aws[a-z-]*:acm:`)
)

// resolve applies defaults to p (nil is the zero value) and reports every
// problem at once. It only reads the file system (the zips); it never
// touches jsii, so it is cheap to test.
func resolve(p *SkiffStackProps) (settings, error) {
	var s settings
	if p != nil {
		s.SkiffStackProps = *p
	}
	var errs []error

	if s.FunctionsDir == "" {
		s.FunctionsDir = DefaultFunctionsDir
	}
	s.zips = map[string]string{}
	var missing []string
	for _, name := range Zips {
		path := filepath.Join(s.FunctionsDir, name+".zip")
		if fi, err := os.Stat(path); err != nil || !fi.Mode().IsRegular() {
			missing = append(missing, name+".zip")
			continue
		}
		s.zips[name] = path
	}
	if len(missing) > 0 {
		errs = append(errs, fmt.Errorf("functions dir %s lacks %s: build the functions first (`make functions` at the repository root) or set FunctionsDir",
			s.FunctionsDir, strings.Join(missing, ", ")))
	}

	if s.Ingest {
		s.ingestDir = s.IngestDir
		if s.ingestDir == "" {
			s.ingestDir = DefaultIngestDir
		}
		var lacks []string
		for _, f := range []string{"Dockerfile", "skiff"} {
			if fi, err := os.Stat(filepath.Join(s.ingestDir, f)); err != nil || !fi.Mode().IsRegular() {
				lacks = append(lacks, f)
			}
		}
		if len(lacks) > 0 {
			errs = append(errs, fmt.Errorf("ingest dir %s lacks %s: build it first (`make functions` at the repository root) or set IngestDir",
				s.ingestDir, strings.Join(lacks, ", ")))
		}
		s.ingestMaxTasks = s.IngestMaxTasks
		if s.ingestMaxTasks == 0 {
			s.ingestMaxTasks = defaultIngestMaxTasks
		}
		if s.ingestMaxTasks < 1 || s.ingestMaxTasks > maxIngestMaxTasks {
			errs = append(errs, fmt.Errorf("ingest max tasks %d: want 1 to %d", s.IngestMaxTasks, maxIngestMaxTasks))
		}
	} else if s.IngestMaxTasks != 0 || s.IngestDir != "" {
		errs = append(errs, errors.New("IngestMaxTasks and IngestDir apply with Ingest on only"))
	}

	switch s.RemovalPolicy {
	case "":
		s.removal = awscdk.RemovalPolicy_RETAIN
	case awscdk.RemovalPolicy_RETAIN, awscdk.RemovalPolicy_DESTROY:
		s.removal = s.RemovalPolicy
	default:
		errs = append(errs, fmt.Errorf("removal policy %s: want RETAIN (the default) or DESTROY", s.RemovalPolicy))
	}

	if s.LogLevel == "" {
		s.LogLevel = "info"
	}
	if !slices.Contains(logLevels, s.LogLevel) {
		errs = append(errs, fmt.Errorf("log level %q: want one of %s", s.LogLevel, strings.Join(logLevels, ", ")))
	}

	switch {
	case s.GCGrace == 0:
		s.GCGrace = 24 * time.Hour
	case s.GCGrace < 10*time.Minute:
		errs = append(errs, fmt.Errorf("gc grace %s: at least 10m (pushes must finish well within half of it)", s.GCGrace))
	}

	switch {
	case s.GCInterval == 0:
		s.GCInterval = 24 * time.Hour
	case s.GCInterval < time.Hour:
		errs = append(errs, fmt.Errorf("gc interval %s: at least 1h", s.GCInterval))
	}

	switch {
	case s.SyncInterval == 0:
		s.SyncInterval = 24 * time.Hour
	case s.SyncInterval < 15*time.Minute:
		errs = append(errs, fmt.Errorf("sync interval %s: at least 15m", s.SyncInterval))
	}

	if s.PriceClass == "" {
		s.PriceClass = awscloudfront.PriceClass_PRICE_CLASS_100
	}

	s.defaultPolicies = encodeDefaults(s.DefaultPolicies, "default policy", &errs)
	if len(s.DefaultRetention) > 0 {
		s.defaultRetention = encodeDefaults(s.DefaultRetention, "default retention policy", &errs)
	}

	anon := make([]string, 0, len(s.AnonymousPull))
	for _, prefix := range s.AnonymousPull {
		n, err := oci.NormalizePrefix(prefix)
		if err != nil {
			errs = append(errs, fmt.Errorf("anonymous pull: %w", err))
			continue
		}
		anon = append(anon, n)
	}
	s.anonymousPull = strings.Join(anon, ",")

	if n := len(s.defaultPolicies) + len(s.defaultRetention) + len(s.anonymousPull); n > maxOperatorEnvBytes {
		errs = append(errs, fmt.Errorf("default policies, retention policies and anonymous pull prefixes take %d bytes of the functions' environment, more than %d (Lambda allows 4 KB in all): store policies with `skiff policy set` instead",
			n, maxOperatorEnvBytes))
	}

	if d := s.CustomDomain; d != nil {
		if !domainRE.MatchString(d.DomainName) {
			errs = append(errs, fmt.Errorf("custom domain %q is not a lowercase DNS name such as registry.example.com", d.DomainName))
		}
		switch {
		case acmArnRE.MatchString(d.CertificateArn):
		case anyACMArn.MatchString(d.CertificateArn):
			errs = append(errs, fmt.Errorf("certificate %s: CloudFront only uses ACM certificates in us-east-1", d.CertificateArn))
		default:
			errs = append(errs, fmt.Errorf("certificate %q is not an ACM certificate ARN (arn:aws:acm:us-east-1:<account>:certificate/<id>)", d.CertificateArn))
		}
	}

	if v := s.OriginSecretVersionID; v != "" && !versionRE.MatchString(v) {
		errs = append(errs, fmt.Errorf("origin secret version %q is not a Secrets Manager version ID (a UUID)", v))
	}

	if s.AlarmTopicArn != "" && !snsArnRE.MatchString(s.AlarmTopicArn) {
		errs = append(errs, fmt.Errorf("alarm topic %q is not an SNS topic ARN", s.AlarmTopicArn))
	}

	if err := errors.Join(errs...); err != nil {
		return settings{}, fmt.Errorf("invalid SkiffStackProps:\n%w", err)
	}
	return s, nil
}

// encodeDefaults validates rules (index or retention policies), each
// prefix once, as the server validates them, and returns their JSON for
// the functions' environment; problems go to errs, named what.
func encodeDefaults[P interface {
	Validate() (P, error)
	RulePrefix() string
}](rules []P, what string, errs *[]error) string {
	out := make([]P, 0, len(rules))
	seen := map[string]bool{}
	for i, r := range rules {
		v, err := r.Validate()
		if err != nil {
			*errs = append(*errs, fmt.Errorf("%s %d (prefix %q): %w", what, i, r.RulePrefix(), err))
			continue
		}
		if seen[v.RulePrefix()] {
			*errs = append(*errs, fmt.Errorf("%s %d: prefix %q is given twice", what, i, v.RulePrefix()))
		}
		seen[v.RulePrefix()] = true
		out = append(out, v)
	}
	b, err := json.Marshal(out)
	if err != nil { // cannot happen for these types; kept so a future field can't fail silently
		*errs = append(*errs, fmt.Errorf("encode %ss: %w", what, err))
	}
	return string(b)
}
