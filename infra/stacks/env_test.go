package stacks

import (
	"cmp"
	"slices"
	"testing"
	"time"

	"github.com/aws/jsii-runtime-go"

	"github.com/skiff-registry/skiff/internal/config"
	"github.com/skiff-registry/skiff/internal/deploy"
	"github.com/skiff-registry/skiff/pkg/oci"
)

// Each synthesized function's environment is one the server accepts:
// config.FromEnv reads it without an error and gets what the stack meant,
// and the stack sets no variable the server does not read. References the
// template resolves at deploy time (the bucket, the table, secret ARNs)
// stand in as placeholders.
func TestFunctionEnvironmentsParse(t *testing.T) {
	defer jsii.Close()
	cases := []struct {
		name       string
		props      *SkiffStackProps
		realm      string
		policies   int
		anonymous  []string
		logLevelIs string
	}{
		{"defaults", &SkiffStackProps{FunctionsDir: functionsDir(t)}, "", 0, nil, "INFO"},
		{"options", &SkiffStackProps{
			FunctionsDir:     functionsDir(t),
			DefaultPolicies:  []oci.Policy{{Prefix: "mirror/", IndexChildren: oci.IndexChildrenNone}},
			DefaultRetention: []oci.Retention{{Prefix: "ci/", KeepTags: []oci.TagKeep{{Pattern: "pr-.*", Last: 5}}}},
			AnonymousPull:    []string{"public/"},
			CustomDomain:     &CustomDomain{DomainName: "registry.example.com", CertificateArn: "arn:aws:acm:us-east-1:123456789012:certificate/0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0"},
			LogLevel:         "debug",
			GCGrace:          48 * time.Hour,
		}, "https://registry.example.com" + deploy.TokenPath, 1, []string{"public"}, "DEBUG"},
		{"ingest", &SkiffStackProps{FunctionsDir: functionsDir(t), Ingest: true, IngestDir: ingestDir(t)}, "", 0, nil, "INFO"},
	}
	for _, tc := range cases {
		_, _, tj := synth(t, tc.props)
		environments := map[string]map[string]any{}
		for _, fn := range deploy.Functions() {
			env, _ := tj.Resources[tj.function(t, fn)].Properties["Environment"].(map[string]any)
			environments[fn], _ = env["Variables"].(map[string]any)
		}
		if tc.props.Ingest {
			// The ingest container: a list of name/value pairs.
			task := tj.Resources[tj.only(t, "AWS::ECS::TaskDefinition", func(resource) bool { return true })]
			cd, _ := list(task.Properties["ContainerDefinitions"])[0].(map[string]any)
			vars := map[string]any{}
			for _, e := range list(cd["Environment"]) {
				m, _ := e.(map[string]any)
				vars[m["Name"].(string)] = m["Value"]
			}
			environments[deploy.Ingest] = vars
		}
		for fn, vars := range environments {
			get := func(k string) string {
				switch v := vars[k].(type) {
				case nil:
					return ""
				case string:
					return v
				default: // Ref, Fn::GetAtt: resolved when deployed
					return "resolved-" + k
				}
			}
			for k := range vars {
				if !slices.Contains(deploy.Env(), k) {
					t.Errorf("%s, %s: sets %s, which the server does not read (deploy.Env)", tc.name, fn, k)
				}
			}
			c, err := config.FromEnv(get)
			if err != nil {
				t.Errorf("%s, %s: config.FromEnv: %v", tc.name, fn, err)
				continue
			}
			switch {
			case c.Backend != config.BackendAWS, c.Bucket == "", c.Table == "", c.TokenKeySecret == "", c.OriginSecretARN == "":
				t.Errorf("%s, %s: %+v lacks the AWS backend, its bucket, table or secrets", tc.name, fn, c)
			case fn != deploy.Ingest && (c.MaxBody != deploy.LambdaMaxBody || c.RedirectMin != deploy.LambdaRedirectMin):
				t.Errorf("%s, %s: max body %d, redirect min %d", tc.name, fn, c.MaxBody, c.RedirectMin)
			case fn == deploy.Ingest && c.Realm != "resolved-"+deploy.EnvRealm:
				// The distribution's https address (its domain resolves at deploy).
				t.Errorf("%s, %s: realm %q, want the distribution's", tc.name, fn, c.Realm)
			case !c.Auth || !c.TrustForwarded || c.ClientIPHeader != deploy.ViewerIPHeader:
				t.Errorf("%s, %s: auth %v, forwarded %v, client IP header %q", tc.name, fn, c.Auth, c.TrustForwarded, c.ClientIPHeader)
			case fn != deploy.Ingest && c.Realm != tc.realm:
				t.Errorf("%s, %s: realm %q, want %q", tc.name, fn, c.Realm, tc.realm)
			case c.GCGrace != cmp.Or(tc.props.GCGrace, 24*time.Hour):
				t.Errorf("%s, %s: gc grace %s", tc.name, fn, c.GCGrace)
			case len(c.DefaultRetention) != tc.policies || len(c.DefaultRetention) == 1 && c.DefaultRetention[0].Prefix != "ci":
				t.Errorf("%s, %s: default retention %v", tc.name, fn, c.DefaultRetention)
			case len(c.DefaultPolicies) != tc.policies || !slices.Equal(c.AnonymousPull, tc.anonymous) || c.LogLevel.String() != tc.logLevelIs:
				t.Errorf("%s, %s: policies %v, anonymous pull %v, log level %v", tc.name, fn, c.DefaultPolicies, c.AnonymousPull, c.LogLevel)
			}
		}
	}
}
