package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/google/go-cmp/cmp"
)

func init() { pollEvery = 10 * time.Millisecond }

// fakeLocalStack answers the calls lsinfo makes, as LocalStack would
// (CloudFormation's query protocol, Lambda's REST JSON, Secrets Manager's
// JSON, LocalStack's health), and checks each is signed for the right
// service.
type fakeLocalStack struct {
	t *testing.T

	mu          sync.Mutex
	describes   int    // DescribeStacks calls so far
	pendingFor  int    // DescribeStacks answers CREATE_IN_PROGRESS this many times
	stackStatus string // then this
	healthCalls int
	resources   []string          // ListStackResources members (XML)
	functions   map[string]string // name -> State
	secret      string
}

func (f *fakeLocalStack) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	auth := r.Header.Get("Authorization")
	switch {
	case r.URL.Path == "/_localstack/health":
		f.healthCalls++
		status := "available"
		if f.healthCalls < 3 {
			status = "initialized"
		}
		fmt.Fprintf(w, `{"services":{"s3":"running","lambda":%q,"cloudfront":"disabled"},"edition":"community","version":"4.14.0"}`, status)
	case r.Method == http.MethodPost && r.Header.Get("X-Amz-Target") == "secretsmanager.GetSecretValue":
		if !strings.Contains(auth, "/us-east-1/secretsmanager/aws4_request") {
			f.t.Errorf("GetSecretValue signed as %q", auth)
		}
		var in struct{ SecretId string }
		json.NewDecoder(r.Body).Decode(&in)
		if in.SecretId != "arn:aws:secretsmanager:us-east-1:000000000000:secret:OriginSecret-abc" {
			w.WriteHeader(400)
			fmt.Fprintf(w, `{"__type":"ResourceNotFoundException","message":"no %s"}`, in.SecretId)
			return
		}
		fmt.Fprintf(w, `{"ARN":%q,"Name":"OriginSecret","SecretString":%q,"VersionId":"v1","VersionStages":["AWSCURRENT"]}`, in.SecretId, f.secret)
	case r.Method == http.MethodPost && r.URL.Path == "/":
		if !strings.Contains(auth, "/us-east-1/cloudformation/aws4_request") {
			f.t.Errorf("CloudFormation call signed as %q", auth)
		}
		r.ParseForm()
		if r.PostForm.Get("StackName") != "Skiff" || r.PostForm.Get("Version") != "2010-05-15" {
			w.WriteHeader(400)
			fmt.Fprintf(w, "<ErrorResponse><Error><Code>ValidationError</Code><Message>Stack with id %s does not exist</Message></Error></ErrorResponse>", r.PostForm.Get("StackName"))
			return
		}
		switch r.PostForm.Get("Action") {
		case "DescribeStacks":
			f.describes++
			status := f.stackStatus
			if f.describes <= f.pendingFor {
				status = "CREATE_IN_PROGRESS"
			}
			fmt.Fprintf(w, `<DescribeStacksResponse xmlns="http://cloudformation.amazonaws.com/doc/2010-05-15/"><DescribeStacksResult><Stacks><member>
<StackName>Skiff</StackName><CreationTime>2026-01-02T03:04:05.000Z</CreationTime><StackStatus>%s</StackStatus><Outputs>
<member><OutputKey>RegistryURL</OutputKey><OutputValue>https://unknown</OutputValue></member>
<member><OutputKey>BucketName</OutputKey><OutputValue>skiff-blobs-1</OutputValue></member>
<member><OutputKey>TableName</OutputKey><OutputValue>Skiff-Metadata-1</OutputValue></member>
</Outputs></member></Stacks></DescribeStacksResult><ResponseMetadata><RequestId>r1</RequestId></ResponseMetadata></DescribeStacksResponse>`, status)
		case "ListStackResources":
			// Two pages, as a long stack gets.
			half := len(f.resources) / 2
			page, next := f.resources[:half], "<NextToken>page2</NextToken>"
			if r.PostForm.Get("NextToken") == "page2" {
				page, next = f.resources[half:], ""
			}
			fmt.Fprintf(w, `<ListStackResourcesResponse xmlns="http://cloudformation.amazonaws.com/doc/2010-05-15/"><ListStackResourcesResult><StackResourceSummaries>%s</StackResourceSummaries>%s</ListStackResourcesResult></ListStackResourcesResponse>`,
				strings.Join(page, ""), next)
		default:
			w.WriteHeader(400)
		}
	case strings.HasPrefix(r.URL.Path, "/2015-03-31/functions/") && strings.HasSuffix(r.URL.Path, "/configuration"):
		if !strings.Contains(auth, "/us-east-1/lambda/aws4_request") {
			f.t.Errorf("Lambda call signed as %q", auth)
		}
		name := strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, "/2015-03-31/functions/"), "/configuration")
		state, ok := f.functions[name]
		if !ok {
			w.Header().Set("X-Amzn-ErrorType", "ResourceNotFoundException")
			w.WriteHeader(404)
			fmt.Fprintf(w, `{"Type":"User","Message":"Function not found: %s"}`, name)
			return
		}
		// Pending first, as a function just created is.
		f.functions[name] = "Active"
		json.NewEncoder(w).Encode(map[string]any{
			"FunctionName": name, "State": state, "LastUpdateStatus": "Successful", "Architectures": []string{"arm64"},
			"Environment": map[string]any{"Variables": map[string]string{
				"SKIFF_S3_BUCKET": "skiff-blobs-1", "SKIFF_DYNAMODB_TABLE": "Skiff-Metadata-1",
				"SKIFF_ORIGIN_SECRET_ARN": "arn:aws:secretsmanager:us-east-1:000000000000:secret:OriginSecret-abc",
			}},
		})
	case strings.HasPrefix(r.URL.Path, "/2021-10-31/functions/") && strings.HasSuffix(r.URL.Path, "/urls"):
		if !strings.Contains(auth, "/us-east-1/lambda/aws4_request") {
			f.t.Errorf("Lambda call signed as %q", auth)
		}
		name := strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, "/2021-10-31/functions/"), "/urls")
		fmt.Fprintf(w, `{"FunctionUrlConfigs":[{"FunctionUrl":"http://%s-id.lambda-url.us-east-1.localhost.localstack.cloud:4566/","AuthType":"NONE","InvokeMode":"BUFFERED"}]}`,
			strings.ToLower(strings.Split(name, "-")[1]))
	default:
		f.t.Errorf("unexpected call %s %s", r.Method, r.URL)
		w.WriteHeader(404)
	}
}

func resource(logical, physical, typ string) string {
	return fmt.Sprintf("<member><LogicalResourceId>%s</LogicalResourceId><PhysicalResourceId>%s</PhysicalResourceId><ResourceType>%s</ResourceType><LastUpdatedTimestamp>2026-01-02T03:04:05.000Z</LastUpdatedTimestamp><ResourceStatus>CREATE_COMPLETE</ResourceStatus></member>",
		logical, physical, typ)
}

func newFake(t *testing.T) (*fakeLocalStack, *httptest.Server) {
	f := &fakeLocalStack{
		t: t, pendingFor: 2, stackStatus: "CREATE_COMPLETE", secret: "s3cr3t\n",
		resources: []string{
			resource("ManifestFunction0A1B2C3D", "Skiff-ManifestFunction0A1B2C3D-x1", "AWS::Lambda::Function"),
			resource("ManifestFunctionFunctionUrl9F8E7D6C", "arn:aws:lambda:us-east-1:000000000000:function:Skiff-ManifestFunction0A1B2C3D-x1", "AWS::Lambda::Url"),
			resource("ManifestRole12345678", "Skiff-ManifestRole", "AWS::IAM::Role"),
			resource("BlobFunctionAABBCCDD", "Skiff-BlobFunctionAABBCCDD-x2", "AWS::Lambda::Function"),
			resource("FrontDoorABCDEF12", "unknown", "AWS::CloudFront::Distribution"),
			resource("CatalogFunction11223344", "Skiff-CatalogFunction11223344-x3", "AWS::Lambda::Function"),
		},
		functions: map[string]string{
			"Skiff-ManifestFunction0A1B2C3D-x1": "Pending",
			"Skiff-BlobFunctionAABBCCDD-x2":     "Active",
			"Skiff-CatalogFunction11223344-x3":  "Active",
		},
	}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return f, srv
}

// newTestClient points the SDK's clients at the fake, as lsinfo stack
// -endpoint does at LocalStack.
func newTestClient(srv *httptest.Server) *client {
	return newClient(aws.Config{
		Region:      "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider("test", "test", ""),
		HTTPClient:  srv.Client(),
	}, srv.URL)
}

func TestStack(t *testing.T) {
	t.Parallel()
	_, srv := newFake(t)
	c := newTestClient(srv)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	info, err := c.stackInfo(ctx, "Skiff")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	envFile, secretFile := filepath.Join(dir, "stack.env"), filepath.Join(dir, "secret")
	var out bytes.Buffer
	if err := info.write(&out, envFile, secretFile); err != nil {
		t.Fatal(err)
	}
	env, _ := os.ReadFile(envFile)
	want := `# Written by localstack/lsinfo stack: the Skiff stack deployed in LocalStack.
LS_STACK='Skiff'
LS_STACK_STATUS='CREATE_COMPLETE'
SKIFF_S3_BUCKET='skiff-blobs-1'
SKIFF_DYNAMODB_TABLE='Skiff-Metadata-1'
LS_MANIFEST_URL='http://manifestfunction0a1b2c3d-id.lambda-url.us-east-1.localhost.localstack.cloud:4566/'
LS_MANIFEST_FUNCTION='Skiff-ManifestFunction0A1B2C3D-x1'
LS_BLOB_URL='http://blobfunctionaabbccdd-id.lambda-url.us-east-1.localhost.localstack.cloud:4566/'
LS_BLOB_FUNCTION='Skiff-BlobFunctionAABBCCDD-x2'
LS_CATALOG_URL='http://catalogfunction11223344-id.lambda-url.us-east-1.localhost.localstack.cloud:4566/'
LS_CATALOG_FUNCTION='Skiff-CatalogFunction11223344-x3'
LS_PROXY='manifest=http://manifestfunction0a1b2c3d-id.lambda-url.us-east-1.localhost.localstack.cloud:4566/,blob=http://blobfunctionaabbccdd-id.lambda-url.us-east-1.localhost.localstack.cloud:4566/,catalog=http://catalogfunction11223344-id.lambda-url.us-east-1.localhost.localstack.cloud:4566/'
`
	if diff := cmp.Diff(want, string(env)); diff != "" {
		t.Errorf("env file (-want +got):\n%s", diff)
	}
	secret, _ := os.ReadFile(secretFile)
	fi, _ := os.Stat(secretFile)
	if string(secret) != "s3cr3t\n" || fi.Mode().Perm() != 0o600 {
		t.Errorf("secret file %q, mode %v", secret, fi.Mode().Perm())
	}
	if !strings.Contains(out.String(), "stack Skiff is CREATE_COMPLETE") {
		t.Errorf("stdout: %s", out.String())
	}
}

func TestStackFailures(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		change func(f *fakeLocalStack)
		want   string
	}{
		{"stack failed", func(f *fakeLocalStack) { f.stackStatus = "ROLLBACK_COMPLETE" }, "is ROLLBACK_COMPLETE"},
		{"function missing", func(f *fakeLocalStack) { f.resources = f.resources[:4] }, "has no catalog function"},
		{"function failed", func(f *fakeLocalStack) { f.functions["Skiff-BlobFunctionAABBCCDD-x2"] = "Failed" }, "is Failed"},
		{"stack never completes", func(f *fakeLocalStack) { f.pendingFor = 1 << 30 }, "is CREATE_IN_PROGRESS"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f, srv := newFake(t)
			tc.change(f)
			c := newTestClient(srv)
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			defer cancel()
			_, err := c.stackInfo(ctx, "Skiff")
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one saying %q", err, tc.want)
			}
		})
	}
}

func TestHealth(t *testing.T) {
	t.Parallel()
	_, srv := newFake(t)
	var out bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := waitHealth(ctx, srv.Client(), srv.URL, []string{"s3", "lambda"}, &out); err != nil {
		t.Fatal(err)
	}
	if want := "LocalStack 4.14.0 (community)"; !strings.Contains(out.String(), want) {
		t.Errorf("output %q lacks %q", out.String(), want)
	}

	ctx, cancel = context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	err := waitHealth(ctx, srv.Client(), srv.URL, []string{"s3", "cloudfront", "ecs"}, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "cloudfront: disabled, ecs: not listed") {
		t.Errorf("error %v, want one naming cloudfront and ecs", err)
	}
}

func TestWriteRefusesOddValues(t *testing.T) {
	t.Parallel()
	info := &stackInfo{stack: "Skiff", status: "CREATE_COMPLETE", bucket: "b'; rm -rf /", table: "t", functions: map[string]function{}}
	if err := info.write(io.Discard, "", ""); err == nil {
		t.Error("no error for a value with quotes")
	}
}
