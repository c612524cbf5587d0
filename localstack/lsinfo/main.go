// Command lsinfo reads what localstack/test.sh needs from LocalStack,
// with aws-sdk-go-v2's CloudFormation, Lambda and Secrets Manager clients
// rather than the AWS CLI:
//
//	lsinfo health [-endpoint URL] [-services s3,dynamodb,...] [-timeout 3m]
//	lsinfo stack  [-endpoint URL] [-stack Skiff] [-env-file FILE] [-secret-file FILE] [-timeout 5m]
//
// health waits until LocalStack's /_localstack/health lists every service
// as available (or running) and prints its version and edition.
//
// stack waits until the stack is deployed and its three functions are
// Active, then writes what the front door and the tests need:
//
//   - -env-file, shell assignments: SKIFF_S3_BUCKET and
//     SKIFF_DYNAMODB_TABLE (the stack's outputs), LS_MANIFEST_URL,
//     LS_BLOB_URL, LS_CATALOG_URL (each function's Function URL) and
//     LS_PROXY (the three, as lambdafront -proxy takes them);
//   - -secret-file (mode 0600): the origin secret, read from Secrets
//     Manager through the SKIFF_ORIGIN_SECRET_ARN the functions have.
//
// The stack outputs the bucket and the table but not the Function URLs
// (CloudFront is their only client in AWS), so they are looked up: the
// stack's AWS::Lambda::Function resources whose logical IDs start with
// Manifest, Blob and Catalog + "Function" (infra/stacks/functions.go names
// them so), then Lambda's GetFunctionConfiguration and
// ListFunctionUrlConfigs for each. The endpoint (every client's
// BaseEndpoint, and health's) defaults to AWS_ENDPOINT_URL, else
// http://127.0.0.1:4566; region (us-east-1 if none is set) and
// credentials come from the SDK's usual environment (test.sh sets
// test/test and us-east-1).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	lambdatypes "github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
)

// functions are the stack's three functions, by route group.
var functions = []string{"manifest", "blob", "catalog"}

// defaultServices are the LocalStack services the stack and the test use
// (compose.yaml's SERVICES, less what only the deployment touches).
const defaultServices = "s3,dynamodb,lambda,iam,sts,secretsmanager,cloudformation,logs,cloudwatch,ssm,kms"

// pollEvery is how often a wait asks again.
var pollEvery = 2 * time.Second

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "lsinfo:", err)
		os.Exit(1)
	}
}

func usage() error {
	return errors.New("usage: lsinfo health [-endpoint URL] [-services LIST] [-timeout D] | " +
		"lsinfo stack [-endpoint URL] [-stack NAME] [-env-file FILE] [-secret-file FILE] [-timeout D]")
}

func run(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return usage()
	}
	cmd, args := args[0], args[1:]
	fs := flag.NewFlagSet("lsinfo "+cmd, flag.ContinueOnError)
	endpoint := fs.String("endpoint", defaultEndpoint(), "LocalStack's gateway")
	timeout := fs.Duration("timeout", 5*time.Minute, "how long to wait")
	switch cmd {
	case "health":
		services := fs.String("services", defaultServices, "comma-separated services that must be available")
		if err := fs.Parse(args); err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(ctx, *timeout)
		defer cancel()
		return waitHealth(ctx, http.DefaultClient, strings.TrimRight(*endpoint, "/"), splitList(*services), stdout)
	case "stack":
		stack := fs.String("stack", "Skiff", "the stack's name (infra/main.go)")
		envFile := fs.String("env-file", "", "write shell assignments here")
		secretFile := fs.String("secret-file", "", "write the origin secret here (mode 0600)")
		if err := fs.Parse(args); err != nil {
			return err
		}
		cfg, err := awsconfig.LoadDefaultConfig(ctx)
		if err != nil {
			return fmt.Errorf("load AWS configuration: %w", err)
		}
		if cfg.Region == "" {
			cfg.Region = "us-east-1"
		}
		c := newClient(cfg, strings.TrimRight(*endpoint, "/"))
		ctx, cancel := context.WithTimeout(ctx, *timeout)
		defer cancel()
		info, err := c.stackInfo(ctx, *stack)
		if err != nil {
			return err
		}
		return info.write(stdout, *envFile, *secretFile)
	}
	return usage()
}

func defaultEndpoint() string {
	if e := os.Getenv("AWS_ENDPOINT_URL"); e != "" {
		return e
	}
	return "http://127.0.0.1:4566"
}

func splitList(s string) []string {
	var out []string
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}

// ---- health

type health struct {
	Services map[string]string `json:"services"`
	Edition  string            `json:"edition"`
	Version  string            `json:"version"`
}

// waitHealth polls /_localstack/health until every service in want is
// available or running.
func waitHealth(ctx context.Context, hc *http.Client, endpoint string, want []string, stdout io.Writer) error {
	var last string
	for {
		h, err := getHealth(ctx, hc, endpoint)
		switch {
		case err != nil && ctx.Err() != nil && last != "":
			// Cut off mid-request: keep the last answer, which says more.
		case err != nil:
			last = err.Error()
		default:
			var missing []string
			for _, s := range want {
				if st := h.Services[s]; st != "available" && st != "running" {
					if st == "" {
						st = "not listed"
					}
					missing = append(missing, s+": "+st)
				}
			}
			if len(missing) == 0 {
				fmt.Fprintf(stdout, "lsinfo: LocalStack %s (%s) at %s: %s available\n", h.Version, h.Edition, endpoint, strings.Join(want, ", "))
				return nil
			}
			last = "not available: " + strings.Join(missing, ", ")
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("LocalStack at %s not ready: %s", endpoint, last)
		case <-time.After(pollEvery):
		}
	}
}

func getHealth(ctx context.Context, hc *http.Client, endpoint string) (*health, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, endpoint+"/_localstack/health", nil)
	if err != nil {
		return nil, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("health: %s: %.200s", resp.Status, b)
	}
	var h health
	if err := json.Unmarshal(b, &h); err != nil {
		return nil, fmt.Errorf("health: %w", err)
	}
	return &h, nil
}

// ---- the stack

// client reads the stack through the SDK's clients, all pointed at the
// one endpoint.
type client struct {
	cf *cloudformation.Client
	fn *lambda.Client
	sm *secretsmanager.Client
}

func newClient(cfg aws.Config, endpoint string) *client {
	base := aws.String(endpoint)
	return &client{
		cf: cloudformation.NewFromConfig(cfg, func(o *cloudformation.Options) { o.BaseEndpoint = base }),
		fn: lambda.NewFromConfig(cfg, func(o *lambda.Options) { o.BaseEndpoint = base }),
		sm: secretsmanager.NewFromConfig(cfg, func(o *secretsmanager.Options) { o.BaseEndpoint = base }),
	}
}

// function is what the test needs of one deployed function.
type function struct {
	name          string // the Lambda function's name
	url           string
	architectures []string
	env           map[string]string
}

// stackInfo is what stack writes.
type stackInfo struct {
	stack, status string
	bucket, table string
	functions     map[string]function // by route group
	originSecret  string
}

// logicalID matches the stack's function resources: titleCase(name) +
// "Function" + CDK's 8-hex-digit hash.
var logicalID = regexp.MustCompile(`^(Manifest|Blob|Catalog)Function[0-9A-F]{8}$`)

func (c *client) stackInfo(ctx context.Context, stack string) (*stackInfo, error) {
	info := &stackInfo{stack: stack, functions: map[string]function{}}
	outputs, err := c.waitStack(ctx, stack, info)
	if err != nil {
		return nil, err
	}
	names, err := c.functionNames(ctx, stack)
	if err != nil {
		return nil, err
	}
	for _, fn := range functions {
		f, err := c.waitFunction(ctx, names[fn])
		if err != nil {
			return nil, fmt.Errorf("%s function: %w", fn, err)
		}
		info.functions[fn] = *f
	}

	// The bucket and table: the stack's outputs, which must be what the
	// functions were given.
	info.bucket, info.table = outputs["BucketName"], outputs["TableName"]
	if info.bucket == "" || info.table == "" {
		return nil, fmt.Errorf("stack %s has no BucketName or TableName output (outputs: %v)", stack, keys(outputs))
	}
	arns := map[string]bool{}
	for _, fn := range functions {
		env := info.functions[fn].env
		if env["SKIFF_S3_BUCKET"] != info.bucket || env["SKIFF_DYNAMODB_TABLE"] != info.table {
			return nil, fmt.Errorf("%s function has bucket %q and table %q, the stack outputs %q and %q",
				fn, env["SKIFF_S3_BUCKET"], env["SKIFF_DYNAMODB_TABLE"], info.bucket, info.table)
		}
		arns[env["SKIFF_ORIGIN_SECRET_ARN"]] = true
	}
	if len(arns) != 1 || arns[""] {
		return nil, fmt.Errorf("the functions name different origin secrets, or none: %v", keys(arns))
	}
	var arn string
	for a := range arns {
		arn = a
	}
	out, err := c.sm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(arn)})
	if err != nil {
		return nil, fmt.Errorf("read the origin secret %s: %w", arn, err)
	}
	if out.SecretString == nil || strings.TrimSpace(*out.SecretString) == "" {
		return nil, fmt.Errorf("the origin secret %s holds no string", arn)
	}
	info.originSecret = strings.TrimSpace(*out.SecretString)
	return info, nil
}

// waitStack waits until the stack is deployed and returns its outputs.
func (c *client) waitStack(ctx context.Context, stack string, info *stackInfo) (map[string]string, error) {
	// The last status seen: when the wait ends in the middle of a request,
	// that says more than the request's own "context deadline exceeded".
	var seen error
	for {
		ds, err := c.cf.DescribeStacks(ctx, &cloudformation.DescribeStacksInput{StackName: aws.String(stack)})
		if err != nil && ctx.Err() != nil && seen != nil {
			err = seen
		}
		if err == nil && len(ds.Stacks) == 1 {
			s := ds.Stacks[0]
			status := string(s.StackStatus)
			info.status = status
			switch {
			case status == "CREATE_COMPLETE" || status == "UPDATE_COMPLETE":
				outputs := map[string]string{}
				for _, o := range s.Outputs {
					outputs[aws.ToString(o.OutputKey)] = aws.ToString(o.OutputValue)
				}
				return outputs, nil
			case strings.HasSuffix(status, "_FAILED") || strings.Contains(status, "ROLLBACK"):
				return nil, fmt.Errorf("stack %s is %s: %s", stack, status, aws.ToString(s.StackStatusReason))
			}
			err = fmt.Errorf("stack %s is %s", stack, status)
			seen = err
		} else if err == nil {
			err = fmt.Errorf("stack %s: %d stacks described", stack, len(ds.Stacks))
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("waiting for the stack: %w", err)
		case <-time.After(pollEvery):
		}
	}
}

// functionNames finds the stack's three functions: route group → the
// Lambda function's name (its physical ID).
func (c *client) functionNames(ctx context.Context, stack string) (map[string]string, error) {
	names := map[string]string{}
	pages := cloudformation.NewListStackResourcesPaginator(c.cf, &cloudformation.ListStackResourcesInput{StackName: aws.String(stack)})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil, err
		}
		for _, r := range page.StackResourceSummaries {
			m := logicalID.FindStringSubmatch(aws.ToString(r.LogicalResourceId))
			if aws.ToString(r.ResourceType) != "AWS::Lambda::Function" || m == nil {
				continue
			}
			fn, physical := strings.ToLower(m[1]), aws.ToString(r.PhysicalResourceId)
			if prev, dup := names[fn]; dup {
				return nil, fmt.Errorf("stack %s has two %s functions: %s and %s", stack, fn, prev, physical)
			}
			names[fn] = physical
		}
	}
	for _, fn := range functions {
		if names[fn] == "" {
			return nil, fmt.Errorf("stack %s has no %s function (AWS::Lambda::Function %sFunction<hash>); found %v",
				stack, fn, strings.ToUpper(fn[:1])+fn[1:], names)
		}
	}
	return names, nil
}

// waitFunction waits until the function is Active and returns it with its
// Function URL.
func (c *client) waitFunction(ctx context.Context, name string) (*function, error) {
	var seen error // the last state seen, as in waitStack
	for {
		fc, err := c.fn.GetFunctionConfiguration(ctx, &lambda.GetFunctionConfigurationInput{FunctionName: aws.String(name)})
		if err != nil && ctx.Err() != nil && seen != nil {
			err = seen
		}
		if err == nil {
			switch {
			case fc.State == lambdatypes.StateFailed:
				return nil, fmt.Errorf("%s is Failed: %s (is the Docker socket mounted into LocalStack?)", name, aws.ToString(fc.StateReason))
			case fc.State == lambdatypes.StateActive && (fc.LastUpdateStatus == "" || fc.LastUpdateStatus == lambdatypes.LastUpdateStatusSuccessful):
				f := &function{name: name}
				for _, a := range fc.Architectures {
					f.architectures = append(f.architectures, string(a))
				}
				if fc.Environment != nil {
					f.env = fc.Environment.Variables
				}
				if f.url, err = c.functionURL(ctx, name); err != nil {
					return nil, err
				}
				return f, nil
			}
			err = fmt.Errorf("%s is %s (last update %s)", name, fc.State, fc.LastUpdateStatus)
			seen = err
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("waiting for %s: %w", name, err)
		case <-time.After(pollEvery):
		}
	}
}

// functionURL returns the function's one Function URL, which must need no
// auth.
func (c *client) functionURL(ctx context.Context, name string) (string, error) {
	var urls []lambdatypes.FunctionUrlConfig
	pages := lambda.NewListFunctionUrlConfigsPaginator(c.fn, &lambda.ListFunctionUrlConfigsInput{FunctionName: aws.String(name)})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return "", err
		}
		urls = append(urls, page.FunctionUrlConfigs...)
	}
	if len(urls) != 1 {
		return "", fmt.Errorf("%s has %d Function URLs, want 1", name, len(urls))
	}
	if urls[0].AuthType != lambdatypes.FunctionUrlAuthTypeNone {
		return "", fmt.Errorf("%s: Function URL auth %s, want NONE", name, urls[0].AuthType)
	}
	return aws.ToString(urls[0].FunctionUrl), nil
}

// ---- output

// safe are the values written unquoted-safe: names, ARNs, URLs.
var safe = regexp.MustCompile(`^[A-Za-z0-9._:/@=,+-]*$`)

func (info *stackInfo) write(stdout io.Writer, envFile, secretFile string) error {
	vars := [][2]string{
		{"LS_STACK", info.stack},
		{"LS_STACK_STATUS", info.status},
		{"SKIFF_S3_BUCKET", info.bucket},
		{"SKIFF_DYNAMODB_TABLE", info.table},
	}
	var proxy []string
	for _, fn := range functions {
		f := info.functions[fn]
		vars = append(vars, [2]string{"LS_" + strings.ToUpper(fn) + "_URL", f.url})
		vars = append(vars, [2]string{"LS_" + strings.ToUpper(fn) + "_FUNCTION", f.name})
		proxy = append(proxy, fn+"="+f.url)
	}
	vars = append(vars, [2]string{"LS_PROXY", strings.Join(proxy, ",")})
	var b strings.Builder
	b.WriteString("# Written by localstack/lsinfo stack: the Skiff stack deployed in LocalStack.\n")
	for _, v := range vars {
		if !safe.MatchString(v[1]) {
			return fmt.Errorf("%s: unexpected characters in %q", v[0], v[1])
		}
		fmt.Fprintf(&b, "%s='%s'\n", v[0], v[1])
	}
	if envFile != "" {
		if err := os.WriteFile(envFile, []byte(b.String()), 0o644); err != nil {
			return err
		}
	}
	if secretFile != "" {
		if err := os.WriteFile(secretFile, []byte(info.originSecret+"\n"), 0o600); err != nil {
			return err
		}
		// WriteFile keeps the mode of a file that exists.
		if err := os.Chmod(secretFile, 0o600); err != nil {
			return err
		}
	}
	fmt.Fprintf(stdout, "lsinfo: stack %s is %s: bucket %s, table %s\n", info.stack, info.status, info.bucket, info.table)
	for _, fn := range functions {
		f := info.functions[fn]
		fmt.Fprintf(stdout, "lsinfo: %-8s %s (%s) %s\n", fn, f.name, strings.Join(f.architectures, ","), f.url)
	}
	return nil
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
