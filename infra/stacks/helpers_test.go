package stacks

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
	"github.com/aws/jsii-runtime-go"

	"github.com/skiff-registry/skiff/infra/internal/placeholder"
)

// JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION=20 must be in the
// environment of `go test` itself (the Makefile exports it): the jsii
// runtime starts Node while the awscdk package initializes, before
// TestMain could set anything.

// functionsDir returns a temporary directory with placeholder zips of the
// three functions.
func functionsDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := placeholder.WriteZips(dir, Zips...); err != nil {
		t.Fatal(err)
	}
	return dir
}

// cdkContext is the context of ../cdk.json (the feature flags), so the
// tests synthesize what `cdk synth` does.
func cdkContext(t *testing.T) *map[string]any {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "cdk.json"))
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		Context map[string]any `json:"context"`
	}
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatalf("cdk.json: %v", err)
	}
	return &c.Context
}

// synth builds the app as main does (with cdk-nag) around one stack.
func synth(t *testing.T, props *SkiffStackProps) (awscdk.Stack, assertions.Template, *tmpl) {
	t.Helper()
	app := awscdk.NewApp(&awscdk.AppProps{Context: cdkContext(t)})
	AddNagChecks(app)
	stack := NewSkiffStack(app, "Skiff", props)
	template := assertions.Template_FromStack(stack, nil)
	b, err := json.Marshal(template.ToJSON())
	if err != nil {
		t.Fatal(err)
	}
	var tj tmpl
	if err := json.Unmarshal(b, &tj); err != nil {
		t.Fatal(err)
	}
	return stack, template, &tj
}

// check runs a CDK assertion, which reports a mismatch by panicking (a jsii
// error), as a test error, so one failed assertion doesn't end the run.
func check(t *testing.T, assertion func()) {
	t.Helper()
	defer func() {
		if r := recover(); r != nil {
			t.Helper()
			t.Errorf("%v", r)
		}
	}()
	assertion()
}

// tmpl is a synthesized template, for following references between
// resources by what they are, never by their (hashed) logical IDs.
type tmpl struct {
	Resources  map[string]resource `json:"Resources"`
	Outputs    map[string]any      `json:"Outputs"`
	Conditions map[string]any      `json:"Conditions"`
}

type resource struct {
	Type           string         `json:"Type"`
	Properties     map[string]any `json:"Properties"`
	DeletionPolicy string         `json:"DeletionPolicy"`
	Condition      string         `json:"Condition"`
}

// ofType returns the logical IDs of the resources of type typ, sorted.
func (tj *tmpl) ofType(typ string) []string {
	var ids []string
	for id, r := range tj.Resources {
		if r.Type == typ {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	return ids
}

// only returns the one resource of type typ that satisfies ok.
func (tj *tmpl) only(t *testing.T, typ string, ok func(resource) bool) string {
	t.Helper()
	var found []string
	for _, id := range tj.ofType(typ) {
		if ok(tj.Resources[id]) {
			found = append(found, id)
		}
	}
	if len(found) != 1 {
		t.Fatalf("want exactly one %s matching, found %d (%v)", typ, len(found), found)
	}
	return found[0]
}

// function returns the logical ID of the function of a route group, found
// by its description.
func (tj *tmpl) function(t *testing.T, name string) string {
	t.Helper()
	return tj.only(t, "AWS::Lambda::Function", func(r resource) bool {
		d, _ := r.Properties["Description"].(string)
		return strings.HasPrefix(d, "Skiff "+name+" route group")
	})
}

// refID returns the logical ID that v refers to with Ref or Fn::GetAtt
// (attribute attr), or "" if v is not such a reference.
func refID(v any, attr string) string {
	m, ok := v.(map[string]any)
	if !ok {
		return ""
	}
	if id, ok := m["Ref"].(string); ok && attr == "" {
		return id
	}
	if ga, ok := m["Fn::GetAtt"].([]any); ok && len(ga) == 2 && ga[1] == attr {
		id, _ := ga[0].(string)
		return id
	}
	return ""
}

// namer gives resources short, stable names for assertions: "table",
// "bucket", "secret:origin", "logs:blob", "function:manifest", ...
type namer map[string]string

func (tj *tmpl) namer(t *testing.T) namer {
	t.Helper()
	n := namer{}
	for _, fn := range FunctionNames {
		id := tj.function(t, fn)
		n[id] = "function:" + fn
		lc, _ := tj.Resources[id].Properties["LoggingConfig"].(map[string]any)
		n[refID(lc["LogGroup"], "")] = "logs:" + fn
		n[refID(tj.Resources[id].Properties["Role"], "Arn")] = "role:" + fn
	}
	// The scheduled functions, by their description, and their schedules.
	for name, desc := range map[string]string{"gc": "Skiff garbage collector", "sync": "Skiff sync:"} {
		id := tj.only(t, "AWS::Lambda::Function", func(r resource) bool {
			d, _ := r.Properties["Description"].(string)
			return strings.HasPrefix(d, desc)
		})
		n[id] = "function:" + name
		lc, _ := tj.Resources[id].Properties["LoggingConfig"].(map[string]any)
		n[refID(lc["LogGroup"], "")] = "logs:" + name
		n[refID(tj.Resources[id].Properties["Role"], "Arn")] = "role:" + name
		for _, sid := range tj.ofType("AWS::Scheduler::Schedule") {
			target, _ := tj.Resources[sid].Properties["Target"].(map[string]any)
			if refID(target["Arn"], "Arn") == id {
				n[sid] = "schedule:" + name
				n[refID(target["RoleArn"], "Arn")] = "role:" + name + "-schedule"
			}
		}
	}
	for _, id := range tj.ofType("AWS::DynamoDB::Table") {
		n[id] = "table"
	}
	for _, id := range tj.ofType("AWS::CloudFront::Distribution") {
		n[id] = "distribution"
	}
	for _, id := range tj.ofType("AWS::S3::Bucket") {
		if _, isBlobs := tj.Resources[id].Properties["LoggingConfiguration"]; isBlobs {
			n[id] = "bucket"
		} else {
			n[id] = "logbucket"
		}
	}
	for _, id := range tj.ofType("AWS::SecretsManager::Secret") {
		d, _ := tj.Resources[id].Properties["Description"].(string)
		switch {
		case strings.Contains(d, OriginSecretHeader):
			n[id] = "secret:origin"
		case strings.Contains(d, "token"):
			n[id] = "secret:authkey"
		}
	}
	return n
}

// resource renders a reference: "table" (Ref or Arn), "bucket/blobs/*",
// "distribution.DomainName", or the raw JSON for anything unknown.
func (n namer) resource(v any) string {
	if m, ok := v.(map[string]any); ok {
		if id, ok := m["Ref"].(string); ok && n[id] != "" {
			return n[id]
		}
		if ga, ok := m["Fn::GetAtt"].([]any); ok && len(ga) == 2 {
			id, _ := ga[0].(string)
			if name := n[id]; name != "" {
				if ga[1] == "Arn" {
					return name
				}
				return fmt.Sprintf("%s.%v", name, ga[1])
			}
		}
	}
	if m, ok := v.(map[string]any); ok {
		if j, ok := m["Fn::Join"].([]any); ok && len(j) == 2 && j[0] == "" {
			if parts, ok := j[1].([]any); ok {
				var s strings.Builder
				for _, p := range parts {
					if str, ok := p.(string); ok {
						s.WriteString(str)
					} else {
						s.WriteString(n.resource(p))
					}
				}
				return s.String()
			}
		}
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// list turns a JSON scalar-or-array into a slice.
func list(v any) []any {
	if a, ok := v.([]any); ok {
		return a
	}
	return []any{v}
}

// grants returns "action on resource" for every Allow statement of every
// policy attached to the role, sorted, with " if <condition JSON>" when the
// statement has a condition, and fails on anything that is not an Allow
// of actions on resources (Deny, NotAction would need their own checks).
func (tj *tmpl) grants(t *testing.T, n namer, roleID string) []string {
	t.Helper()
	var out []string
	add := func(doc any) {
		d, _ := doc.(map[string]any)
		for _, st := range list(d["Statement"]) {
			s, _ := st.(map[string]any)
			if s["Effect"] != "Allow" || s["Action"] == nil || s["Resource"] == nil {
				t.Errorf("role %s: unexpected statement shape %v", n[roleID], s)
				continue
			}
			cond := ""
			if c := s["Condition"]; c != nil {
				b, _ := json.Marshal(c) // maps marshal with sorted keys
				cond = " if " + string(b)
			}
			for _, a := range list(s["Action"]) {
				for _, r := range list(s["Resource"]) {
					out = append(out, fmt.Sprintf("%v on %s%s", a, n.resource(r), cond))
				}
			}
		}
	}
	role := tj.Resources[roleID]
	if mp := role.Properties["ManagedPolicyArns"]; mp != nil {
		t.Errorf("role %s has managed policies %v", n[roleID], mp)
	}
	for _, p := range list(role.Properties["Policies"]) {
		if pm, ok := p.(map[string]any); ok {
			add(pm["PolicyDocument"])
		}
	}
	for _, id := range tj.ofType("AWS::IAM::Policy") {
		p := tj.Resources[id].Properties
		for _, r := range list(p["Roles"]) {
			if refID(r, "") == roleID {
				add(p["PolicyDocument"])
			}
		}
	}
	sort.Strings(out)
	return out
}

// pairs expands actions x resources into sorted "action on resource".
func pairs(actions []string, resources ...string) []string {
	var out []string
	for _, a := range actions {
		for _, r := range resources {
			out = append(out, a+" on "+r)
		}
	}
	return out
}

// str is jsii.String, shorter in tables of matchers.
func str(s string) *string { return jsii.String(s) }
