// Command lsinfo reads what localstack/test.sh needs from LocalStack,
// with signed HTTP calls (aws-sdk-go-v2's SigV4 signer, and its Secrets
// Manager client) rather than the AWS CLI:
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
// ListFunctionUrlConfigs for each. The endpoint defaults to
// AWS_ENDPOINT_URL, else http://127.0.0.1:4566; region and credentials
// come from the SDK's usual environment (test.sh sets test/test and
// us-east-1).
package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"encoding/xml"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
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
		region := cfg.Region
		if region == "" {
			region = "us-east-1"
		}
		c := newClient(strings.TrimRight(*endpoint, "/"), region, cfg.Credentials, http.DefaultClient)
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

// ---- signed calls

type client struct {
	endpoint string
	region   string
	creds    aws.CredentialsProvider
	hc       *http.Client
	signer   *v4.Signer
	sm       *secretsmanager.Client
}

func newClient(endpoint, region string, creds aws.CredentialsProvider, hc *http.Client) *client {
	return &client{
		endpoint: endpoint, region: region, creds: creds, hc: hc, signer: v4.NewSigner(),
		sm: secretsmanager.New(secretsmanager.Options{
			Region: region, Credentials: creds, BaseEndpoint: aws.String(endpoint), HTTPClient: hc,
		}),
	}
}

// apiError is an AWS API's refusal.
type apiError struct {
	status int
	body   string
}

func (e *apiError) Error() string { return fmt.Sprintf("%d: %.400s", e.status, e.body) }

// call sends one signed request: a GET of path (Lambda's REST API), or
// with form set a POST of the form to / (CloudFormation's query API).
func (c *client) call(ctx context.Context, service, path string, form url.Values) ([]byte, error) {
	method, body := http.MethodGet, ""
	if form != nil {
		method, body = http.MethodPost, form.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, c.endpoint+path, strings.NewReader(body))
	if err != nil {
		return nil, err
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
	}
	creds, err := c.creds.Retrieve(ctx)
	if err != nil {
		return nil, fmt.Errorf("credentials: %w", err)
	}
	sum := sha256.Sum256([]byte(body))
	if err := c.signer.SignHTTP(ctx, creds, req, hex.EncodeToString(sum[:]), service, c.region, time.Now()); err != nil {
		return nil, err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode/100 != 2 {
		return nil, &apiError{status: resp.StatusCode, body: string(b)}
	}
	return b, nil
}

func (c *client) cloudFormation(ctx context.Context, action string, params url.Values, out any) error {
	form := url.Values{"Action": {action}, "Version": {"2010-05-15"}}
	for k, v := range params {
		form[k] = v
	}
	b, err := c.call(ctx, "cloudformation", "/", form)
	if err != nil {
		return fmt.Errorf("cloudformation %s: %w", action, err)
	}
	if err := xml.Unmarshal(b, out); err != nil {
		return fmt.Errorf("cloudformation %s: %w", action, err)
	}
	return nil
}

func (c *client) lambda(ctx context.Context, path string, out any) error {
	b, err := c.call(ctx, "lambda", path, nil)
	if err != nil {
		return fmt.Errorf("lambda %s: %w", path, err)
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("lambda %s: %w", path, err)
	}
	return nil
}

// ---- the stack

type describeStacks struct {
	Stacks []struct {
		StackName         string `xml:"StackName"`
		StackStatus       string `xml:"StackStatus"`
		StackStatusReason string `xml:"StackStatusReason"`
		Outputs           []struct {
			OutputKey   string `xml:"OutputKey"`
			OutputValue string `xml:"OutputValue"`
		} `xml:"Outputs>member"`
	} `xml:"DescribeStacksResult>Stacks>member"`
}

type listStackResources struct {
	Summaries []struct {
		LogicalResourceID  string `xml:"LogicalResourceId"`
		PhysicalResourceID string `xml:"PhysicalResourceId"`
		ResourceType       string `xml:"ResourceType"`
		ResourceStatus     string `xml:"ResourceStatus"`
	} `xml:"ListStackResourcesResult>StackResourceSummaries>member"`
	NextToken string `xml:"ListStackResourcesResult>NextToken"`
}

type functionConfiguration struct {
	FunctionName     string   `json:"FunctionName"`
	State            string   `json:"State"`
	StateReason      string   `json:"StateReason"`
	LastUpdateStatus string   `json:"LastUpdateStatus"`
	Architectures    []string `json:"Architectures"`
	Environment      struct {
		Variables map[string]string `json:"Variables"`
	} `json:"Environment"`
}

type functionURLConfigs struct {
	FunctionURLConfigs []struct {
		FunctionURL string `json:"FunctionUrl"`
		AuthType    string `json:"AuthType"`
	} `json:"FunctionUrlConfigs"`
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
		var ds describeStacks
		err := c.cloudFormation(ctx, "DescribeStacks", url.Values{"StackName": {stack}}, &ds)
		if err != nil && ctx.Err() != nil && seen != nil {
			err = seen
		}
		if err == nil && len(ds.Stacks) == 1 {
			s := ds.Stacks[0]
			info.status = s.StackStatus
			switch {
			case s.StackStatus == "CREATE_COMPLETE" || s.StackStatus == "UPDATE_COMPLETE":
				outputs := map[string]string{}
				for _, o := range s.Outputs {
					outputs[o.OutputKey] = o.OutputValue
				}
				return outputs, nil
			case strings.HasSuffix(s.StackStatus, "_FAILED") || strings.Contains(s.StackStatus, "ROLLBACK"):
				return nil, fmt.Errorf("stack %s is %s: %s", stack, s.StackStatus, s.StackStatusReason)
			}
			err = fmt.Errorf("stack %s is %s", stack, s.StackStatus)
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
	token := ""
	for {
		params := url.Values{"StackName": {stack}}
		if token != "" {
			params.Set("NextToken", token)
		}
		var lr listStackResources
		if err := c.cloudFormation(ctx, "ListStackResources", params, &lr); err != nil {
			return nil, err
		}
		for _, r := range lr.Summaries {
			m := logicalID.FindStringSubmatch(r.LogicalResourceID)
			if r.ResourceType != "AWS::Lambda::Function" || m == nil {
				continue
			}
			fn := strings.ToLower(m[1])
			if prev, dup := names[fn]; dup {
				return nil, fmt.Errorf("stack %s has two %s functions: %s and %s", stack, fn, prev, r.PhysicalResourceID)
			}
			names[fn] = r.PhysicalResourceID
		}
		if token = lr.NextToken; token == "" {
			break
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
	path := "/2015-03-31/functions/" + url.PathEscape(name) + "/configuration"
	var seen error // the last state seen, as in waitStack
	for {
		var fc functionConfiguration
		err := c.lambda(ctx, path, &fc)
		if err != nil && ctx.Err() != nil && seen != nil {
			err = seen
		}
		if err == nil {
			switch {
			case fc.State == "Failed":
				return nil, fmt.Errorf("%s is Failed: %s (is the Docker socket mounted into LocalStack?)", name, fc.StateReason)
			case fc.State == "Active" && (fc.LastUpdateStatus == "" || fc.LastUpdateStatus == "Successful"):
				f := &function{name: name, architectures: fc.Architectures, env: fc.Environment.Variables}
				var urls functionURLConfigs
				if err := c.lambda(ctx, "/2021-10-31/functions/"+url.PathEscape(name)+"/urls", &urls); err != nil {
					return nil, err
				}
				if len(urls.FunctionURLConfigs) != 1 {
					return nil, fmt.Errorf("%s has %d Function URLs, want 1", name, len(urls.FunctionURLConfigs))
				}
				u := urls.FunctionURLConfigs[0]
				if u.AuthType != "NONE" {
					return nil, fmt.Errorf("%s: Function URL auth %s, want NONE", name, u.AuthType)
				}
				f.url = u.FunctionURL
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
