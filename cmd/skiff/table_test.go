package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/skiff-registry/skiff/internal/httpapi"
	"github.com/skiff-registry/skiff/internal/policy"
	"github.com/skiff-registry/skiff/internal/storage/awsstore"
	"github.com/skiff-registry/skiff/internal/testenv"
)

// newTable creates a table of its own for t on the stand-in and deletes
// it when t ends.
func newTable(t *testing.T) string {
	t.Helper()
	cfg, err := awsconfig.LoadDefaultConfig(t.Context())
	if err != nil {
		t.Fatalf("load AWS config: %v", err)
	}
	client := dynamodb.NewFromConfig(cfg)
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	table := "skiff-cli-test-" + hex.EncodeToString(b)
	if err := awsstore.CreateTable(t.Context(), client, table); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := awsstore.DeleteTable(ctx, client, table); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	return table
}

// fakeSTS answers GetCallerIdentity (the query protocol's XML) with arn.
func fakeSTS(t *testing.T, arn string) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil || r.Form.Get("Action") != "GetCallerIdentity" {
			http.Error(w, "unexpected STS call", http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "text/xml")
		w.Write([]byte(`<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <GetCallerIdentityResult><Arn>` + arn + `</Arn><UserId>AIDAEXAMPLE</UserId><Account>123456789012</Account></GetCallerIdentityResult>
  <ResponseMetadata><RequestId>1</RequestId></ResponseMetadata>
</GetCallerIdentityResponse>`))
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// TestPolicyCLITable: with --table the CLI changes the DynamoDB table
// itself through policy.Store, and who is the caller's ARN.
func TestPolicyCLITable(t *testing.T) {
	testenv.DynamoDB(t)
	const arn = "arn:aws:iam::123456789012:user/alice"
	t.Setenv("AWS_ENDPOINT_URL_STS", fakeSTS(t, arn))
	table := "--table=" + newTable(t)
	getenv := env("USER", "tester")

	out, _, err := cli(t, getenv, "policy", "set", "mirror/", "--index-children=platforms", "--platforms=linux/amd64", table)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "updated-by:      "+arn) || !strings.Contains(out, "servers apply it within "+policy.DefaultTTL.String()) {
		t.Errorf("set output:\n%s", out)
	}
	if _, _, err := cli(t, getenv, "policy", "set", "mirror", "--index-children=none", table); err != nil {
		t.Fatal(err)
	}
	out, _, err = cli(t, getenv, "policy", "get", "mirror", "--json", table)
	var rec policy.Record
	if err != nil || json.Unmarshal([]byte(out), &rec) != nil {
		t.Fatalf("get --json: %q %v", out, err)
	}
	if rec.Policy.IndexChildren != "none" || rec.UpdatedBy != arn || rec.Previous == nil || rec.Previous.IndexChildren != "platforms" {
		t.Errorf("get: %+v", rec)
	}
	out, _, err = cli(t, getenv, "policy", "list", "--json", table)
	var list httpapi.PolicyList
	if err != nil || json.Unmarshal([]byte(out), &list) != nil || len(list.Policies) != 1 || list.Policies[0].Policy.Prefix != "mirror" {
		t.Errorf("list: %q %v", out, err)
	}

	// Without STS the change is still recorded, as user@host.
	t.Setenv("AWS_ENDPOINT_URL_STS", "http://127.0.0.1:1")
	out, _, err = cli(t, getenv, "policy", "delete", "mirror", "--json", table)
	if err != nil || json.Unmarshal([]byte(out), &rec) != nil {
		t.Fatalf("delete: %q %v", out, err)
	}
	if want := localOperator(getenv) + " (aws credentials)"; !rec.Deleted || rec.UpdatedBy != want {
		t.Errorf("delete without STS: %+v, want updatedBy %q", rec, want)
	}
	if _, _, err := cli(t, getenv, "policy", "get", "mirror", table); err == nil || !strings.Contains(err.Error(), "no policy is set for prefix mirror") {
		t.Errorf("get after delete: %v", err)
	}
	out, _, err = cli(t, getenv, "policy", "history", "mirror", "--json", table)
	var hist httpapi.PolicyHistory
	if err != nil || json.Unmarshal([]byte(out), &hist) != nil {
		t.Fatalf("history: %q %v", out, err)
	}
	var by []string
	for _, c := range hist.Changes {
		by = append(by, c.Action+" by "+c.By)
	}
	if want := []string{"set by " + arn, "set by " + arn, "delete by tester@"}; len(by) != 3 || by[0] != want[0] || by[1] != want[1] || !strings.HasPrefix(by[2], want[2]) {
		t.Errorf("history: %q", by)
	}
}
