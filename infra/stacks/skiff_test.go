package stacks

import (
	"fmt"
	"github.com/skiff-registry/skiff/internal/deploy"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudfront"
	"github.com/aws/aws-cdk-go/awscdk/v2/cxapi"
	"github.com/aws/jsii-runtime-go"
	"github.com/google/go-cmp/cmp"

	"github.com/skiff-registry/skiff/pkg/oci"
)

// Managed CloudFront policies (IDs fixed by AWS).
const (
	cachingDisabledID            = "4135ea2d-6df8-44a3-9df3-4b5a84be39ad"
	allViewerExceptHostHeaderID  = "b689b0a8-53d0-40ab-baf2-68738e2966ac"
	secretsManagerDynamicRefHead = "{{resolve:secretsmanager:"
)

// TestSkiffStack synthesizes the default stack once (jsii start-up and a
// synth take seconds) and checks it in subtests.
func TestSkiffStack(t *testing.T) {
	defer jsii.Close()

	// GIVEN default props, but for the zips
	// WHEN
	stack, template, tj := synth(t, &SkiffStackProps{FunctionsDir: functionsDir(t)})
	n := tj.namer(t)

	// THEN
	t.Run("resource counts", func(t *testing.T) {
		for typ, want := range map[string]int{
			"AWS::Lambda::Function":         5, // the route groups', the collector and the sync
			"AWS::Lambda::Url":              3,
			"AWS::Logs::LogGroup":           5,
			"AWS::IAM::Role":                7, // the functions' and the schedules'
			"AWS::Scheduler::Schedule":      2,
			"AWS::DynamoDB::Table":          1,
			"AWS::S3::Bucket":               2, // blobs + access logs
			"AWS::S3::BucketPolicy":         2,
			"AWS::SecretsManager::Secret":   2,
			"AWS::CloudFront::Distribution": 1,
			"AWS::CloudFront::Function":     1,
		} {
			check(t, func() { template.ResourceCountIs(str(typ), jsii.Number(float64(want))) })
		}
		if got := len(tj.ofType("AWS::CloudWatch::Alarm")); got < 6 {
			t.Errorf("alarms: got %d, want at least 6 (errors and throttles per function)", got)
		}
	})

	t.Run("buckets are encrypted, private and TLS-only", func(t *testing.T) {
		check(t, func() {
			template.AllResourcesProperties(str("AWS::S3::Bucket"), map[string]any{
				"BucketEncryption": map[string]any{"ServerSideEncryptionConfiguration": []any{
					map[string]any{"ServerSideEncryptionByDefault": map[string]any{"SSEAlgorithm": "AES256"}},
				}},
				"PublicAccessBlockConfiguration": map[string]any{
					"BlockPublicAcls": true, "BlockPublicPolicy": true, "IgnorePublicAcls": true, "RestrictPublicBuckets": true,
				},
			})
		})
		check(t, func() { template.AllResources(str("AWS::S3::Bucket"), map[string]any{"DeletionPolicy": "Retain"}) })
		// Every bucket has a policy denying any request without TLS.
		tlsOnly := map[string]bool{}
		for _, id := range tj.ofType("AWS::S3::BucketPolicy") {
			p := tj.Resources[id].Properties
			doc, _ := p["PolicyDocument"].(map[string]any)
			for _, st := range list(doc["Statement"]) {
				s, _ := st.(map[string]any)
				cond := fmt.Sprint(s["Condition"])
				if s["Effect"] == "Deny" && s["Action"] == "s3:*" && cond == "map[Bool:map[aws:SecureTransport:false]]" {
					tlsOnly[n[refID(p["Bucket"], "")]] = true
				}
			}
		}
		if diff := cmp.Diff(map[string]bool{"bucket": true, "logbucket": true}, tlsOnly); diff != "" {
			t.Errorf("buckets with a TLS-only policy (-want +got):\n%s", diff)
		}
	})

	t.Run("blob bucket lifecycle and logging", func(t *testing.T) {
		check(t, func() {
			template.HasResourceProperties(str("AWS::S3::Bucket"), map[string]any{
				"LifecycleConfiguration": map[string]any{"Rules": assertions.Match_ArrayWith(&[]any{
					assertions.Match_ObjectLike(&map[string]any{
						"Status":                         "Enabled",
						"AbortIncompleteMultipartUpload": map[string]any{"DaysAfterInitiation": 1},
						"Prefix":                         assertions.Match_Absent(), // the whole bucket
					}),
					assertions.Match_ObjectLike(&map[string]any{
						"Status":           "Enabled",
						"Prefix":           "uploads/",
						"ExpirationInDays": 2,
					}),
				})},
				"LoggingConfiguration": map[string]any{
					"DestinationBucketName": assertions.Match_AnyValue(),
					"LogFilePrefix":         "s3-access/",
				},
			})
		})
		// Nothing outside uploads/ expires.
		rules, _ := tj.Resources[key(n, "bucket")].Properties["LifecycleConfiguration"].(map[string]any)
		for _, r := range list(rules["Rules"]) {
			rm, _ := r.(map[string]any)
			if _, ok := rm["ExpirationInDays"]; ok && rm["Prefix"] != "uploads/" {
				t.Errorf("lifecycle rule expires objects outside uploads/: %v", rm)
			}
		}
		logging, _ := tj.Resources[key(n, "bucket")].Properties["LoggingConfiguration"].(map[string]any)
		if got := n[refID(logging["DestinationBucketName"], "")]; got != "logbucket" {
			t.Errorf("access logs go to %q, want the log bucket", got)
		}
	})

	t.Run("table", func(t *testing.T) {
		check(t, func() {
			template.HasResource(str("AWS::DynamoDB::Table"), map[string]any{
				"DeletionPolicy": "Retain",
				"Properties": map[string]any{
					"BillingMode": "PAY_PER_REQUEST",
					"KeySchema": []any{
						map[string]any{"AttributeName": "PK", "KeyType": "HASH"},
						map[string]any{"AttributeName": "SK", "KeyType": "RANGE"},
					},
					"AttributeDefinitions": []any{
						map[string]any{"AttributeName": "PK", "AttributeType": "S"},
						map[string]any{"AttributeName": "SK", "AttributeType": "S"},
					},
					"TimeToLiveSpecification":          map[string]any{"AttributeName": "expiresAt", "Enabled": true},
					"PointInTimeRecoverySpecification": map[string]any{"PointInTimeRecoveryEnabled": true},
					// SSEEnabled without a key: the AWS-managed aws/dynamodb key.
					"SSESpecification":       map[string]any{"SSEEnabled": true, "KMSMasterKeyId": assertions.Match_Absent()},
					"GlobalSecondaryIndexes": assertions.Match_Absent(),
				},
			})
		})
	})

	t.Run("functions", func(t *testing.T) {
		check(t, func() {
			template.AllResourcesProperties(str("AWS::Lambda::Function"), map[string]any{
				"Runtime":       "provided.al2023",
				"Architectures": []any{"arm64"},
				"Handler":       "bootstrap",
			})
		})
		want := map[string]any{
			"SKIFF_MAX_BODY":         "4194304",
			"SKIFF_REDIRECT_MIN":     "1048576",
			"SKIFF_ANONYMOUS_PULL":   "",
			"SKIFF_DEFAULT_POLICIES": "[]",
			"LOG_LEVEL":              "info",
			"SKIFF_GC_GRACE":         "24h0m0s",
		}
		refs := map[string]string{
			"SKIFF_S3_BUCKET":           "bucket",
			"SKIFF_DYNAMODB_TABLE":      "table",
			"SKIFF_ORIGIN_SECRET_ARN":   "secret:origin",
			"SKIFF_AUTH_KEY_SECRET_ARN": "secret:authkey",
		}
		memory := map[string]float64{}
		timeout := map[string]float64{}
		for _, fn := range FunctionNames {
			p := tj.Resources[tj.function(t, fn)].Properties
			env, _ := p["Environment"].(map[string]any)
			vars, _ := env["Variables"].(map[string]any)
			if len(vars) != len(want)+len(refs) {
				t.Errorf("%s: %d environment variables, want %d: %v", fn, len(vars), len(want)+len(refs), vars)
			}
			for k, v := range want {
				if vars[k] != v {
					t.Errorf("%s: %s = %v, want %q", fn, k, vars[k], v)
				}
			}
			for k, name := range refs {
				if got := n.resource(vars[k]); got != name {
					t.Errorf("%s: %s refers to %s, want %s", fn, k, got, name)
				}
			}
			// Without a custom domain the realm comes from X-Forwarded-Host.
			if v, ok := vars["SKIFF_REALM"]; ok {
				t.Errorf("%s: SKIFF_REALM = %v without a custom domain, want none", fn, v)
			}
			memory[fn], _ = p["MemorySize"].(float64)
			timeout[fn], _ = p["Timeout"].(float64)
			// Its own log group, kept a month.
			lc, _ := p["LoggingConfig"].(map[string]any)
			lg := tj.Resources[refID(lc["LogGroup"], "")]
			if lg.Type != "AWS::Logs::LogGroup" || lg.Properties["RetentionInDays"] != 30.0 {
				t.Errorf("%s: log group %v, want an AWS::Logs::LogGroup with 30 days' retention", fn, lg)
			}
		}
		if diff := cmp.Diff(map[string]float64{"manifest": 256, "blob": 512, "catalog": 256}, memory); diff != "" {
			t.Errorf("memory (-want +got):\n%s", diff)
		}
		if timeout["blob"] <= timeout["manifest"] || timeout["blob"] <= timeout["catalog"] {
			t.Errorf("timeouts %v: the blob function should have the longest", timeout)
		}
	})

	t.Run("function URLs are public and buffered", func(t *testing.T) {
		check(t, func() {
			template.AllResourcesProperties(str("AWS::Lambda::Url"), map[string]any{"AuthType": "NONE", "InvokeMode": "BUFFERED"})
		})
	})

	t.Run("IAM is least privilege per function", func(t *testing.T) {
		logs := []string{"logs:CreateLogStream", "logs:PutLogEvents"}
		secrets := []string{"secretsmanager:DescribeSecret", "secretsmanager:GetSecretValue"}
		// Failed-login counters only: UpdateItem on no other partition; the
		// manifest and blob functions also refresh links and manifests
		// and record contents.
		counters := []string{`dynamodb:UpdateItem on table if {"ForAllValues:StringLike":{"dynamodb:LeadingKeys":["C#*"]}}`}
		marks := []string{`dynamodb:UpdateItem on table if {"ForAllValues:StringLike":{"dynamodb:LeadingKeys":["C#*","R#*","D#*"]}}`}
		want := map[string][]string{
			"manifest": slices.Concat(
				pairs(logs, "logs:manifest"),
				marks,
				pairs([]string{"dynamodb:BatchGetItem", "dynamodb:DeleteItem", "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Query"}, "table"),
				pairs([]string{"s3:DeleteObject", "s3:GetObject", "s3:PutObject"}, "bucket/blobs/*"),
				pairs(secrets, "secret:authkey", "secret:origin"),
			),
			"blob": slices.Concat(
				pairs(logs, "logs:blob"),
				marks,
				pairs([]string{"dynamodb:BatchGetItem", "dynamodb:DeleteItem", "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Query"}, "table"),
				pairs([]string{"s3:AbortMultipartUpload", "s3:DeleteObject", "s3:GetObject", "s3:ListMultipartUploadParts", "s3:PutObject"},
					"bucket/blobs/*", "bucket/uploads/*"),
				// 404 rather than 403 for a missing key (mount without from=).
				pairs([]string{"s3:ListBucket"}, "bucket"),
				pairs(secrets, "secret:authkey", "secret:origin"),
			),
			"catalog": slices.Concat(
				pairs(logs, "logs:catalog"),
				counters,
				// BatchGetItem and the read of large index bodies: the
				// operator API's index status.
				pairs([]string{"dynamodb:BatchGetItem", "dynamodb:DeleteItem", "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Query"}, "table"),
				pairs([]string{"s3:GetObject"}, "bucket/blobs/*"),
				pairs(secrets, "secret:authkey", "secret:origin"),
			),
		}
		for _, fn := range FunctionNames {
			w := want[fn]
			sort.Strings(w)
			got := tj.grants(t, n, key(n, "role:"+fn))
			if diff := cmp.Diff(w, got); diff != "" {
				t.Errorf("%s function grants (-want +got):\n%s", fn, diff)
			}
			if fn == "catalog" {
				// Read-only: the catalog function never writes or deletes objects.
				for _, g := range got {
					if strings.HasPrefix(g, "s3:") && !strings.HasPrefix(g, "s3:GetObject on ") {
						t.Errorf("catalog function has S3 access beyond reads: %s", g)
					}
				}
			}
		}
		// Each role is assumable by Lambda only, but the schedule's, by
		// EventBridge Scheduler only.
		for _, id := range tj.ofType("AWS::IAM::Role") {
			service := "lambda.amazonaws.com"
			if strings.HasSuffix(n[id], "-schedule") {
				service = "scheduler.amazonaws.com"
			}
			want := map[string]any{"Statement": []any{
				map[string]any{"Action": "sts:AssumeRole", "Effect": "Allow", "Principal": map[string]any{"Service": service}},
			}, "Version": "2012-10-17"}
			if diff := cmp.Diff(want, tj.Resources[id].Properties["AssumeRolePolicyDocument"]); diff != "" {
				t.Errorf("role %s (%s) trust (-want +got):\n%s", id, n[id], diff)
			}
		}
	})

	t.Run("secrets are generated, not in the template", func(t *testing.T) {
		check(t, func() {
			template.AllResourcesProperties(str("AWS::SecretsManager::Secret"), map[string]any{
				"GenerateSecretString": assertions.Match_ObjectLike(&map[string]any{"ExcludePunctuation": true}),
				"SecretString":         assertions.Match_Absent(),
			})
		})
		check(t, func() {
			template.HasResourceProperties(str("AWS::SecretsManager::Secret"), map[string]any{
				"Description":          assertions.Match_StringLikeRegexp(str("token")),
				"GenerateSecretString": assertions.Match_ObjectLike(&map[string]any{"PasswordLength": 64}),
			})
		})
	})

	t.Run("CloudFront routes", func(t *testing.T) {
		dist := tj.Resources[tj.only(t, "AWS::CloudFront::Distribution", func(resource) bool { return true })]
		cfg, _ := dist.Properties["DistributionConfig"].(map[string]any)

		// origin ID -> function name, through the origin's domain (the
		// Function URL's) and the URL's target function.
		origins := map[string]string{}
		for _, o := range list(cfg["Origins"]) {
			om, _ := o.(map[string]any)
			// "DomainName": {"Fn::Select": [2, {"Fn::Split": ["/", {"Fn::GetAtt": [<url>, "FunctionUrl"]}]}]}
			sel, _ := om["DomainName"].(map[string]any)["Fn::Select"].([]any)
			split, _ := sel[1].(map[string]any)["Fn::Split"].([]any)
			url := tj.Resources[refID(split[1], "FunctionUrl")]
			if url.Type != "AWS::Lambda::Url" {
				t.Fatalf("origin %v is not a Function URL", om["Id"])
			}
			fn := strings.TrimPrefix(n[refID(url.Properties["TargetFunctionArn"], "Arn")], "function:")
			origins[om["Id"].(string)] = fn
			// Explicit and stable: the viewer-request function names it.
			if om["Id"] != originID(fn) {
				t.Errorf("origin of %s has ID %v, want %s", fn, om["Id"], originID(fn))
			}

			// HTTPS to the origin, with the secret header as a dynamic
			// reference to the origin secret (never a literal).
			coc, _ := om["CustomOriginConfig"].(map[string]any)
			if coc["OriginProtocolPolicy"] != "https-only" || fmt.Sprint(coc["OriginSSLProtocols"]) != "[TLSv1.2]" {
				t.Errorf("origin %v: %v, want https-only with TLSv1.2", om["Id"], coc)
			}
			hdrs := list(om["OriginCustomHeaders"])
			if len(hdrs) != 1 {
				t.Fatalf("origin %v: headers %v, want only %s", om["Id"], hdrs, OriginSecretHeader)
			}
			h, _ := hdrs[0].(map[string]any)
			if h["HeaderName"] != OriginSecretHeader {
				t.Errorf("origin %v: header %v, want %s", om["Id"], h["HeaderName"], OriginSecretHeader)
			}
			if got := n.resource(h["HeaderValue"]); got != secretsManagerDynamicRefHead+"secret:origin:SecretString:::}}" {
				t.Errorf("origin %v: secret header value %s, want a dynamic reference to the origin secret", om["Id"], got)
			}
		}

		type behaviour struct{ Pattern, Function string }
		var got []behaviour
		all := []any{cfg["DefaultCacheBehavior"]}
		for _, b := range list(cfg["CacheBehaviors"]) {
			bm, _ := b.(map[string]any)
			got = append(got, behaviour{fmt.Sprint(bm["PathPattern"]), origins[fmt.Sprint(bm["TargetOriginId"])]})
			all = append(all, b)
		}
		dm, _ := cfg["DefaultCacheBehavior"].(map[string]any)
		got = append(got, behaviour{"default", origins[fmt.Sprint(dm["TargetOriginId"])]})
		want := []behaviour{
			{"/v2/_skiff/*", "catalog"},
			{"/v2/*/blobs/uploads", "blob"},
			{"/v2/*/blobs/uploads/*", "blob"},
			{"/v2/*/tags/list", "catalog"},
			{"/v2/*/manifests/*", "manifest"},
			{"/v2/*/referrers/*", "manifest"},
			{"/v2/*/blobs/*", "blob"},
			{"default", "catalog"},
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("behaviours in order (-want +got):\n%s", diff)
		}

		for _, b := range all {
			bm, _ := b.(map[string]any)
			if bm["CachePolicyId"] != cachingDisabledID || bm["OriginRequestPolicyId"] != allViewerExceptHostHeaderID ||
				bm["ViewerProtocolPolicy"] != "redirect-to-https" || bm["Compress"] != false ||
				len(list(bm["AllowedMethods"])) != 7 {
				t.Errorf("behaviour %v: want caching disabled, all viewer headers but Host, HTTPS, no compression, all 7 methods", bm)
			}
		}
	})

	t.Run("viewer request function", func(t *testing.T) {
		check(t, func() {
			template.HasResourceProperties(str("AWS::CloudFront::Function"), map[string]any{
				"AutoPublish": true,
				// Origin selection needs runtime 2.0.
				"FunctionConfig": assertions.Match_ObjectLike(&map[string]any{"Runtime": "cloudfront-js-2.0"}),
				// The client's value is deleted, then the viewer's Host set.
				"FunctionCode": assertions.Match_StringLikeRegexp(str(
					`delete h\['x-forwarded-host'\];[\s\S]*h\['x-forwarded-host'\] = \{ value: h\.host \? h\.host\.value`)),
			})
		})
		code := assertions.NewCapture(nil)
		check(t, func() {
			template.HasResourceProperties(str("AWS::CloudFront::Function"), map[string]any{"FunctionCode": code})
		})
		js := *code.AsString()

		// The origin IDs the code selects are exactly the distribution's,
		// each the origin of the function of that route group.
		dist := tj.Resources[tj.only(t, "AWS::CloudFront::Distribution", func(resource) bool { return true })]
		cfg, _ := dist.Properties["DistributionConfig"].(map[string]any)
		var distIDs []string
		for _, o := range list(cfg["Origins"]) {
			om, _ := o.(map[string]any)
			distIDs = append(distIDs, fmt.Sprint(om["Id"]))
		}
		sort.Strings(distIDs)
		table := codeOrigins(t, js)
		var codeIDs []string
		for _, fn := range FunctionNames {
			if table[fn] != originID(fn) {
				t.Errorf("the code's origin for %s is %q, want %s", fn, table[fn], originID(fn))
			}
		}
		for name, id := range table {
			// Without Ingest the switch is off, so the ingest origin is never selected.
			if name != deploy.Ingest {
				codeIDs = append(codeIDs, id)
			}
		}
		if !strings.Contains(js, "var ingest = false;") {
			t.Errorf("the stack without Ingest deploys the function with its ingest switch on")
		}
		sort.Strings(codeIDs)
		if diff := cmp.Diff(distIDs, codeIDs); diff != "" {
			t.Errorf("origin IDs (-distribution +function code):\n%s", diff)
		}
		// Every selection goes through the table: no other ID is named.
		if all, viaTable := strings.Count(js, "selectRequestOriginById("), strings.Count(js, "cf.selectRequestOriginById(origins["); all != 1 || viaTable != 1 {
			t.Errorf("the code selects an origin %d times, %d through its origins table; want once, through it", all, viaTable)
		}
		checkViewerRouting(t, js)
		// X-Forwarded-Proto is disallowed for edge functions: adding it
		// makes CloudFront answer 502. Only comments may name it.
		for _, line := range strings.Split(js, "\n") {
			if c, _, _ := strings.Cut(line, "//"); strings.Contains(strings.ToLower(c), "x-forwarded-proto") {
				t.Errorf("function code touches X-Forwarded-Proto: %q", line)
			}
		}
		runForwardedHost(t, js)

		// Associated on viewer request with the default behaviour and every
		// cache behaviour.
		fnID := tj.only(t, "AWS::CloudFront::Function", func(resource) bool { return true })
		behaviours := append([]any{cfg["DefaultCacheBehavior"]}, list(cfg["CacheBehaviors"])...)
		if len(behaviours) != len(routes(false))+1 {
			t.Fatalf("%d behaviours, want %d", len(behaviours), len(routes(false))+1)
		}
		for _, b := range behaviours {
			bm, _ := b.(map[string]any)
			fa := list(bm["FunctionAssociations"])
			a, _ := fa[0].(map[string]any)
			if len(fa) != 1 || a["EventType"] != "viewer-request" || refID(a["FunctionARN"], "FunctionARN") != fnID {
				t.Errorf("behaviour %v: function associations %v, want the viewer-request function", bm["PathPattern"], bm["FunctionAssociations"])
			}
		}
	})

	t.Run("CloudFront distribution", func(t *testing.T) {
		check(t, func() {
			template.HasResourceProperties(str("AWS::CloudFront::Distribution"), map[string]any{
				"DistributionConfig": assertions.Match_ObjectLike(&map[string]any{
					"Enabled":     true,
					"HttpVersion": "http2and3",
					"PriceClass":  "PriceClass_100",
					"Logging":     assertions.Match_ObjectLike(&map[string]any{"Prefix": "cloudfront/"}),
					"Aliases":     assertions.Match_Absent(),
				}),
			})
		})
	})

	t.Run("alarms", func(t *testing.T) {
		for _, fn := range FunctionNames {
			id := tj.function(t, fn)
			for _, metric := range []string{"Errors", "Throttles"} {
				check(t, func() {
					template.HasResourceProperties(str("AWS::CloudWatch::Alarm"), map[string]any{
						"Namespace":          "AWS/Lambda",
						"MetricName":         metric,
						"Dimensions":         []any{map[string]any{"Name": "FunctionName", "Value": map[string]any{"Ref": id}}},
						"Statistic":          "Sum",
						"Period":             300,
						"Threshold":          0,
						"ComparisonOperator": "GreaterThanThreshold",
						"EvaluationPeriods":  1,
						"TreatMissingData":   "notBreaching",
						"AlarmActions":       assertions.Match_Absent(),
					})
				})
			}
		}
		// The edge 5xx alarm exists only where CloudFront's metrics are.
		edge := tj.only(t, "AWS::CloudWatch::Alarm", func(r resource) bool { return r.Properties["Namespace"] == "AWS/CloudFront" })
		cond := tj.Resources[edge].Condition
		if got := fmt.Sprint(tj.Conditions[cond]); cond == "" || got != "map[Fn::Equals:[map[Ref:AWS::Region] us-east-1]]" {
			t.Errorf("edge alarm condition %q = %s, want region = us-east-1", cond, got)
		}
	})

	t.Run("outputs", func(t *testing.T) {
		url := assertions.NewCapture(nil)
		check(t, func() {
			template.HasOutput(str("RegistryURL"), map[string]any{"Value": map[string]any{"Fn::Join": []any{"", url}}})
		})
		if got := n.resource(map[string]any{"Fn::Join": []any{"", *url.AsArray()}}); got != "https://distribution.DomainName" {
			t.Errorf("RegistryURL = %s, want https://distribution.DomainName", got)
		}
		check(t, func() {
			template.HasOutput(str("BucketName"), map[string]any{"Value": map[string]any{"Ref": key(n, "bucket")}})
		})
		check(t, func() {
			template.HasOutput(str("TableName"), map[string]any{"Value": map[string]any{"Ref": key(n, "table")}})
		})
	})

	t.Run("cdk-nag", func(t *testing.T) { noFindings(t, stack) })
}

// TestSkiffStackOptions checks what each prop changes.
func TestSkiffStackOptions(t *testing.T) {
	defer jsii.Close()

	// GIVEN
	const cert = "arn:aws:acm:us-east-1:123456789012:certificate/0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0"
	const topic = "arn:aws:sns:eu-west-1:123456789012:skiff-alarms"
	props := &SkiffStackProps{
		FunctionsDir: functionsDir(t),
		DefaultPolicies: []oci.Policy{
			{Prefix: "mirror/", IndexChildren: oci.IndexChildrenPlatforms, Platforms: []string{"linux/arm64/v8", "linux/amd64"}},
			{Prefix: "sparse", IndexChildren: oci.IndexChildrenNone, ImageBlobs: oci.ImageBlobsOptional},
		},
		AnonymousPull: []string{"public/", "mirror/library"},
		CustomDomain:  &CustomDomain{DomainName: "registry.example.com", CertificateArn: cert},
		RemovalPolicy: awscdk.RemovalPolicy_DESTROY,
		LogLevel:      "debug",
		PriceClass:    awscloudfront.PriceClass_PRICE_CLASS_ALL,
		AlarmTopicArn: topic,
		// What `cdk deploy -c skiff:originSecretVersion=...` sets after a rotation.
		OriginSecretVersionID: "a1b2c3d4-5678-90ab-cdef-EXAMPLE11111",
	}

	// WHEN
	stack, template, tj := synth(t, props)

	// THEN
	t.Run("environment", func(t *testing.T) {
		want := map[string]any{
			// Validated and normalized as the server does: no trailing
			// slash, default modes filled in, platforms sorted.
			"SKIFF_DEFAULT_POLICIES": `[{"prefix":"mirror","indexChildren":"platforms","platforms":["linux/amd64","linux/arm64/v8"],"imageBlobs":"required"},` +
				`{"prefix":"sparse","indexChildren":"none","imageBlobs":"optional"}]`,
			"SKIFF_ANONYMOUS_PULL": "public,mirror/library",
			"LOG_LEVEL":            "debug",
			// Pinned with a custom domain, in case X-Forwarded-Host is lost.
			"SKIFF_REALM": "https://registry.example.com/v2/_skiff/token",
		}
		for _, fn := range FunctionNames {
			env, _ := tj.Resources[tj.function(t, fn)].Properties["Environment"].(map[string]any)
			vars, _ := env["Variables"].(map[string]any)
			for k, v := range want {
				if vars[k] != v {
					t.Errorf("%s: %s = %v, want %v", fn, k, vars[k], v)
				}
			}
		}
	})

	t.Run("custom domain", func(t *testing.T) {
		check(t, func() {
			template.HasResourceProperties(str("AWS::CloudFront::Distribution"), map[string]any{
				"DistributionConfig": assertions.Match_ObjectLike(&map[string]any{
					"Aliases":    []any{"registry.example.com"},
					"PriceClass": "PriceClass_All",
					"ViewerCertificate": map[string]any{
						"AcmCertificateArn":      cert,
						"MinimumProtocolVersion": "TLSv1.2_2021",
						"SslSupportMethod":       "sni-only",
					},
				}),
			})
		})
		check(t, func() {
			template.HasOutput(str("RegistryURL"), map[string]any{"Value": "https://registry.example.com"})
		})
	})

	t.Run("origin secret version", func(t *testing.T) {
		n := tj.namer(t)
		dist := tj.Resources[tj.only(t, "AWS::CloudFront::Distribution", func(resource) bool { return true })]
		cfg, _ := dist.Properties["DistributionConfig"].(map[string]any)
		for _, o := range list(cfg["Origins"]) {
			om, _ := o.(map[string]any)
			h, _ := list(om["OriginCustomHeaders"])[0].(map[string]any)
			want := secretsManagerDynamicRefHead + "secret:origin:SecretString:::a1b2c3d4-5678-90ab-cdef-EXAMPLE11111}}"
			if got := n.resource(h["HeaderValue"]); got != want {
				t.Errorf("origin %v: header value %s, want %s", om["Id"], got, want)
			}
		}
	})

	t.Run("destroy", func(t *testing.T) {
		for _, typ := range []string{"AWS::S3::Bucket", "AWS::DynamoDB::Table", "AWS::SecretsManager::Secret", "AWS::Logs::LogGroup"} {
			check(t, func() { template.AllResources(str(typ), map[string]any{"DeletionPolicy": "Delete"}) })
		}
		check(t, func() {
			template.HasResourceProperties(str("AWS::DynamoDB::Table"), map[string]any{"DeletionProtectionEnabled": false})
		})
		// The buckets are emptied on stack deletion, or it would fail.
		if got := len(tj.ofType("Custom::S3AutoDeleteObjects")); got != 2 {
			t.Errorf("%d auto-delete custom resources, want 2 (one per bucket)", got)
		}
	})

	t.Run("alarm actions", func(t *testing.T) {
		check(t, func() {
			template.AllResourcesProperties(str("AWS::CloudWatch::Alarm"), map[string]any{
				"AlarmActions": []any{topic},
				"OKActions":    []any{topic},
			})
		})
	})

	t.Run("cdk-nag", func(t *testing.T) { noFindings(t, stack) })
}

// noFindings fails on any error or warning annotation: unsuppressed
// cdk-nag findings, and CDK's own warnings.
func noFindings(t *testing.T, stack awscdk.Stack) {
	t.Helper()
	ann := assertions.Annotations_FromStack(stack)
	for kind, msgs := range map[string]*[]*cxapi.SynthesisMessage{
		"error":   ann.FindError(str("*"), assertions.Match_AnyValue()),
		"warning": ann.FindWarning(str("*"), assertions.Match_AnyValue()),
	} {
		for _, m := range *msgs {
			t.Errorf("%s at %s: %v", kind, *m.Id, m.Entry.Data)
		}
	}
	// And the AWS Solutions pack did run: a finding it suppressed is
	// recorded in the template metadata.
	check(t, func() {
		assertions.Template_FromStack(stack, nil).HasResource(str("AWS::CloudFront::Distribution"), map[string]any{
			"Metadata": map[string]any{"cdk_nag": map[string]any{"rules_to_suppress": assertions.Match_ArrayWith(&[]any{
				assertions.Match_ObjectLike(&map[string]any{"id": "AwsSolutions-CFR2"}),
			})}},
		})
	})
}

// key returns the logical ID n names name.
func key(n namer, name string) string {
	for id, v := range n {
		if v == name {
			return id
		}
	}
	return ""
}

// TestNewSkiffStackPanicsOnInvalidProps: props are checked before any
// construct exists, with every problem in the message.
func TestNewSkiffStackPanicsOnInvalidProps(t *testing.T) {
	defer jsii.Close()
	defer func() {
		r := recover()
		msg := fmt.Sprint(r)
		for _, want := range []string{"invalid SkiffStackProps", "manifest.zip", "log level"} {
			if !strings.Contains(msg, want) {
				t.Errorf("panic %q lacks %q", msg, want)
			}
		}
	}()
	// No app: validation comes first, so jsii (seconds to start) isn't needed.
	NewSkiffStack(nil, "Skiff", &SkiffStackProps{FunctionsDir: t.TempDir(), LogLevel: "loud"})
	t.Error("NewSkiffStack returned with invalid props")
}

// TestCollectorFunction: the scheduled garbage collector is a function
// without a URL, one at a time, 15 minutes at most, invoked every 15
// minutes by a schedule of its own, with the grants a pass needs and no
// secret.
func TestCollectorFunction(t *testing.T) {
	_, _, tj := synth(t, &SkiffStackProps{FunctionsDir: functionsDir(t), GCInterval: 6 * time.Hour})
	n := tj.namer(t)
	var gc, schedule string
	for id, name := range n {
		switch name {
		case "function:gc":
			gc = id
		case "schedule:gc":
			schedule = id
		}
	}
	p := tj.Resources[gc].Properties
	if p["Timeout"] != 900.0 || p["ReservedConcurrentExecutions"] != 1.0 || p["MemorySize"] != 1024.0 {
		t.Errorf("gc function: timeout %v, reserved concurrency %v, memory %v; want 900, 1, 1024", p["Timeout"], p["ReservedConcurrentExecutions"], p["MemorySize"])
	}
	env, _ := p["Environment"].(map[string]any)
	vars, _ := env["Variables"].(map[string]any)
	if vars["SKIFF_GC_INTERVAL"] != "6h0m0s" || vars["SKIFF_GC_GRACE"] != "24h0m0s" {
		t.Errorf("gc function environment: %v", vars)
	}
	for _, id := range tj.ofType("AWS::Lambda::Url") {
		if refID(tj.Resources[id].Properties["TargetFunctionArn"], "Arn") == gc {
			t.Error("the gc function has a URL")
		}
	}
	want := []string{
		`dynamodb:UpdateItem on table if {"ForAllValues:StringLike":{"dynamodb:LeadingKeys":["C#*","R#*","D#*"]}}`,
		"dynamodb:BatchGetItem on table", "dynamodb:DeleteItem on table", "dynamodb:GetItem on table", "dynamodb:PutItem on table", "dynamodb:Query on table",
		"logs:CreateLogStream on logs:gc", "logs:PutLogEvents on logs:gc",
		"s3:DeleteObject on bucket/blobs/*", "s3:GetObject on bucket/blobs/*", "s3:ListBucket on bucket",
	}
	sort.Strings(want)
	if diff := cmp.Diff(want, tj.grants(t, n, key(n, "role:gc"))); diff != "" {
		t.Errorf("gc function grants (-want +got):\n%s", diff)
	}
	sp := tj.Resources[schedule].Properties
	target, _ := sp["Target"].(map[string]any)
	retry, _ := target["RetryPolicy"].(map[string]any)
	if sp["ScheduleExpression"] != "rate(15 minutes)" || refID(target["Arn"], "Arn") != gc || retry["MaximumRetryAttempts"] != 0.0 {
		t.Errorf("schedule: %v", sp)
	}
	if g := tj.grants(t, n, key(n, "role:gc-schedule")); len(g) != 2 || !strings.HasPrefix(g[0], "lambda:InvokeFunction on function:gc") {
		t.Errorf("schedule role grants: %v, want lambda:InvokeFunction on the gc function (and its versions) only", g)
	}
}

// TestSyncFunction: the scheduled sync is one function at a time, 15
// minutes an invocation, without a URL, with the interval in its
// environment, a push's grants and the secrets under skiff/mirror/ alone,
// and a schedule every 15 minutes whose role may invoke it only.
func TestSyncFunction(t *testing.T) {
	_, _, tj := synth(t, &SkiffStackProps{FunctionsDir: functionsDir(t), SyncInterval: 7 * 24 * time.Hour})
	n := tj.namer(t)
	fn, schedule := key(n, "function:sync"), key(n, "schedule:sync")
	p := tj.Resources[fn].Properties
	if p["Timeout"] != 900.0 || p["ReservedConcurrentExecutions"] != 1.0 || p["MemorySize"] != 2048.0 {
		t.Errorf("sync function: timeout %v, reserved concurrency %v, memory %v; want 900, 1, 2048", p["Timeout"], p["ReservedConcurrentExecutions"], p["MemorySize"])
	}
	env, _ := p["Environment"].(map[string]any)
	vars, _ := env["Variables"].(map[string]any)
	if vars["SKIFF_SYNC_INTERVAL"] != "168h0m0s" {
		t.Errorf("sync function environment: %v", vars)
	}
	for _, id := range tj.ofType("AWS::Lambda::Url") {
		if refID(tj.Resources[id].Properties["TargetFunctionArn"], "Arn") == fn {
			t.Error("the sync function has a URL")
		}
	}
	grants := tj.grants(t, n, key(n, "role:sync"))
	var secrets []string
	for _, g := range grants {
		if strings.HasPrefix(g, "secretsmanager:") {
			secrets = append(secrets, g)
		}
	}
	if len(secrets) != 1 || !strings.Contains(secrets[0], "secretsmanager:GetSecretValue on ") || !strings.Contains(secrets[0], ":secret:skiff/mirror/*") {
		t.Errorf("sync function's secrets grants: %v, want GetSecretValue on skiff/mirror/* alone", secrets)
	}
	for _, want := range []string{"s3:PutObject on bucket/blobs/*", "s3:PutObject on bucket/uploads/*", "dynamodb:PutItem on table"} {
		if !slices.Contains(grants, want) {
			t.Errorf("sync function grants %v lack %s", grants, want)
		}
	}
	sp := tj.Resources[schedule].Properties
	if sp["ScheduleExpression"] != "rate(15 minutes)" {
		t.Errorf("sync schedule: %v", sp)
	}
	if g := tj.grants(t, n, key(n, "role:sync-schedule")); len(g) != 2 || !strings.HasPrefix(g[0], "lambda:InvokeFunction on function:sync") {
		t.Errorf("sync schedule role grants: %v, want lambda:InvokeFunction on the sync function (and its versions) only", g)
	}
	if _, err := resolve(&SkiffStackProps{FunctionsDir: functionsDir(t), SyncInterval: time.Minute}); err == nil || !strings.Contains(err.Error(), "sync interval 1m0s: at least 15m") {
		t.Errorf("a 1m sync interval: %v", err)
	}
}
