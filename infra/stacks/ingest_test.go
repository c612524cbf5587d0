package stacks

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
	"github.com/aws/jsii-runtime-go"
	"github.com/google/go-cmp/cmp"

	"github.com/skiff-registry/skiff/infra/internal/placeholder"
	"github.com/skiff-registry/skiff/internal/deploy"
)

// ingestDir returns a temporary image context: the repository's
// Dockerfile and a placeholder binary.
func ingestDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := placeholder.WriteIngest(dir, filepath.Join("..", "ingest", "Dockerfile")); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestIngestStack: with Ingest on, the stack has the ingest service (ECS
// Fargate, arm64, one task at least, autoscaled), its image built from the
// repository's Dockerfile, behind an internal load balancer that only the
// VPC (CloudFront's VPC origin) reaches, with the blob function's grants;
// CloudFront sends exactly the upload routes there, with the origin
// secret; and cdk-nag finds nothing.
func TestIngestStack(t *testing.T) {
	defer jsii.Close()
	stack, template, tj := synth(t, &SkiffStackProps{FunctionsDir: functionsDir(t), Ingest: true, IngestDir: ingestDir(t), IngestMaxTasks: 6})
	n := tj.namer(t)

	t.Run("service", func(t *testing.T) {
		check(t, func() {
			template.HasResourceProperties(str("AWS::ECS::TaskDefinition"), map[string]any{
				"RuntimePlatform":         map[string]any{"CpuArchitecture": "ARM64", "OperatingSystemFamily": "LINUX"},
				"RequiresCompatibilities": []any{"FARGATE"},
				"ContainerDefinitions": []any{assertions.Match_ObjectLike(&map[string]any{
					"Command":                []any{"serve", "--ingest", "--addr", ":8080"},
					"PortMappings":           []any{assertions.Match_ObjectLike(&map[string]any{"ContainerPort": deploy.IngestPort})},
					"ReadonlyRootFilesystem": true,
					"LogConfiguration":       assertions.Match_ObjectLike(&map[string]any{"LogDriver": "awslogs"}),
				})},
			})
			template.HasResourceProperties(str("AWS::ECS::Service"), map[string]any{
				"LaunchType":   "FARGATE",
				"DesiredCount": 1,
				"NetworkConfiguration": map[string]any{"AwsvpcConfiguration": assertions.Match_ObjectLike(&map[string]any{
					"AssignPublicIp": "ENABLED",
				})},
			})
			template.HasResourceProperties(str("AWS::ApplicationAutoScaling::ScalableTarget"), map[string]any{
				"MinCapacity": 1, "MaxCapacity": 6, "ScalableDimension": "ecs:service:DesiredCount",
			})
			template.HasResourceProperties(str("AWS::ElasticLoadBalancingV2::TargetGroup"), map[string]any{
				"HealthCheckPath": deploy.HealthPath, "Port": deploy.IngestPort, "Protocol": "HTTP",
			})
		})
	})

	t.Run("image from the repository", func(t *testing.T) {
		asm := awscdk.Stage_Of(stack).Synth(nil)
		raw, err := os.ReadFile(filepath.Join(*asm.Directory(), "Skiff.assets.json"))
		if err != nil {
			t.Fatal(err)
		}
		var manifest struct {
			DockerImages map[string]struct {
				Source struct{ Directory, Platform string }
			}
		}
		if err := json.Unmarshal(raw, &manifest); err != nil {
			t.Fatal(err)
		}
		if len(manifest.DockerImages) != 1 {
			t.Fatalf("%d docker image assets, want 1", len(manifest.DockerImages))
		}
		want, err := os.ReadFile(filepath.Join("..", "ingest", "Dockerfile"))
		if err != nil {
			t.Fatal(err)
		}
		for _, img := range manifest.DockerImages {
			if img.Source.Platform != "linux/arm64" {
				t.Errorf("image platform %q, want linux/arm64", img.Source.Platform)
			}
			got, err := os.ReadFile(filepath.Join(*asm.Directory(), img.Source.Directory, "Dockerfile"))
			if err != nil || string(got) != string(want) {
				t.Errorf("the image is not built from infra/ingest/Dockerfile (%v)", err)
			}
			if !strings.Contains(string(want), "COPY skiff /skiff") {
				t.Errorf("the Dockerfile does not ship the skiff binary")
			}
		}
	})

	t.Run("who can reach it", func(t *testing.T) {
		check(t, func() {
			template.HasResourceProperties(str("AWS::ElasticLoadBalancingV2::LoadBalancer"), map[string]any{
				"Scheme": "internal", "Type": "application",
			})
			template.HasResourceProperties(str("AWS::ElasticLoadBalancingV2::Listener"), map[string]any{"Port": 80, "Protocol": "HTTP"})
		})
		// Every ingress rule in the stack: the load balancer's from the VPC
		// range, the tasks' from the load balancer. Nothing from outside.
		var rules []string
		for _, id := range tj.ofType("AWS::EC2::SecurityGroup") {
			for _, r := range list(tj.Resources[id].Properties["SecurityGroupIngress"]) {
				if m, ok := r.(map[string]any); ok {
					b, _ := json.Marshal(map[string]any{"cidr": m["CidrIp"], "port": m["FromPort"]})
					rules = append(rules, string(b))
				}
			}
		}
		for _, id := range tj.ofType("AWS::EC2::SecurityGroupIngress") {
			p := tj.Resources[id].Properties
			b, _ := json.Marshal(map[string]any{"from": refID(p["SourceSecurityGroupId"], "GroupId"), "port": p["FromPort"]})
			rules = append(rules, string(b))
		}
		slices.Sort(rules)
		albSG := tj.only(t, "AWS::EC2::SecurityGroup", func(r resource) bool {
			d, _ := r.Properties["GroupDescription"].(string)
			return strings.HasPrefix(d, "Skiff ingest load balancer")
		})
		want := []string{`{"cidr":"` + ingestCIDR + `","port":80}`, `{"from":"` + albSG + `","port":8080}`}
		slices.Sort(want)
		if diff := cmp.Diff(want, rules); diff != "" {
			t.Errorf("ingress rules (-want +got):\n%s", diff)
		}
		check(t, func() {
			template.HasResourceProperties(str("AWS::EC2::VPC"), map[string]any{"CidrBlock": ingestCIDR})
			template.ResourceCountIs(str("AWS::EC2::NatGateway"), jsii0())
		})
	})

	t.Run("origin and routes", func(t *testing.T) {
		dist := tj.Resources[tj.only(t, "AWS::CloudFront::Distribution", func(resource) bool { return true })]
		cfg, _ := dist.Properties["DistributionConfig"].(map[string]any)
		var ingest map[string]any
		for _, o := range list(cfg["Origins"]) {
			if om, _ := o.(map[string]any); om["Id"] == ingestOriginID {
				ingest = om
			}
		}
		if ingest == nil || ingest["VpcOriginConfig"] == nil {
			t.Fatalf("no VPC origin %s: %v", ingestOriginID, cfg["Origins"])
		}
		headers := list(ingest["OriginCustomHeaders"])
		if h, _ := headers[0].(map[string]any); len(headers) != 1 || h["HeaderName"] != OriginSecretHeader ||
			!strings.HasPrefix(n.resource(h["HeaderValue"]), secretsManagerDynamicRefHead+"secret:origin") {
			t.Errorf("the ingest origin's headers %v, want the origin secret by reference", headers)
		}
		check(t, func() {
			template.HasResourceProperties(str("AWS::CloudFront::VpcOrigin"), map[string]any{
				"VpcOriginEndpointConfig": assertions.Match_ObjectLike(&map[string]any{"HTTPPort": 80, "OriginProtocolPolicy": "http-only"}),
			})
		})
		got := map[string]string{}
		for _, b := range list(cfg["CacheBehaviors"]) {
			bm, _ := b.(map[string]any)
			got[bm["PathPattern"].(string)] = bm["TargetOriginId"].(string)
		}
		for _, b := range deploy.Behaviors(true) {
			if got[b.Pattern] != originID(b.Function) {
				t.Errorf("behaviour %s goes to %s, want %s", b.Pattern, got[b.Pattern], originID(b.Function))
			}
		}
		if got["/v2/*/blobs/uploads/*"] != ingestOriginID || got["/v2/*/blobs/*"] != originID(deploy.FunctionBlob) {
			t.Errorf("uploads to %s, blobs to %s: want the ingest service, then the blob function", got["/v2/*/blobs/uploads/*"], got["/v2/*/blobs/*"])
		}
		code := assertions.NewCapture(nil)
		check(t, func() {
			template.HasResourceProperties(str("AWS::CloudFront::Function"), map[string]any{"FunctionCode": code})
		})
		js := *code.AsString()
		if !strings.Contains(js, "var ingest = true;") {
			t.Errorf("the viewer-request function's ingest switch is off")
		}
		table := codeOrigins(t, js)
		var ids, want []string
		for _, id := range table {
			ids = append(ids, id)
		}
		for _, o := range list(cfg["Origins"]) {
			om, _ := o.(map[string]any)
			want = append(want, om["Id"].(string))
		}
		slices.Sort(ids)
		slices.Sort(want)
		if diff := cmp.Diff(want, ids); diff != "" {
			t.Errorf("origin IDs (-distribution +function code):\n%s", diff)
		}
	})

	t.Run("grants", func(t *testing.T) {
		role := tj.only(t, "AWS::IAM::Role", func(r resource) bool {
			d, _ := r.Properties["Description"].(string)
			return strings.HasPrefix(d, "Skiff ingest tasks")
		})
		n[role] = "role:ingest"
		got := tj.grants(t, n, role)
		want := tj.grants(t, n, key(n, "role:blob"))
		// The log group each writes to differs: the task's is written by the
		// awslogs driver (the execution role), the function's by itself.
		want = slices.DeleteFunc(want, func(g string) bool { return strings.Contains(g, "logs:blob") })
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("the ingest task role's grants differ from the blob function's (-blob +ingest):\n%s", diff)
		}
	})

	t.Run("alarms", func(t *testing.T) {
		check(t, func() {
			template.HasResourceProperties(str("AWS::CloudWatch::Alarm"), map[string]any{
				"MetricName": "HTTPCode_Target_5XX_Count", "Namespace": "AWS/ApplicationELB",
			})
			template.HasResourceProperties(str("AWS::CloudWatch::Alarm"), map[string]any{
				"MetricName": "CPUUtilization", "Namespace": "AWS/ECS",
			})
		})
	})

	t.Run("cdk-nag", func(t *testing.T) { noFindings(t, stack) })
}

// TestNoIngestByDefault: without Ingest, none of it exists.
func TestNoIngestByDefault(t *testing.T) {
	defer jsii.Close()
	_, _, tj := synth(t, &SkiffStackProps{FunctionsDir: functionsDir(t)})
	for _, typ := range []string{"AWS::ECS::Service", "AWS::ECS::Cluster", "AWS::ElasticLoadBalancingV2::LoadBalancer",
		"AWS::EC2::VPC", "AWS::CloudFront::VpcOrigin", "AWS::EC2::SecurityGroup"} {
		if ids := tj.ofType(typ); len(ids) != 0 {
			t.Errorf("%d %s without Ingest", len(ids), typ)
		}
	}
}

func jsii0() *float64 { f := 0.0; return &f }
