package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/skiff-registry/skiff/internal/gc"
	"github.com/skiff-registry/skiff/internal/httpapi"
	"github.com/skiff-registry/skiff/internal/mirror"
	"github.com/skiff-registry/skiff/internal/policy"
	"github.com/skiff-registry/skiff/pkg/oci"
)

// clientTimeout bounds one operator API call; every one is a small JSON
// exchange.
const clientTimeout = 30 * time.Second

// maxResponse bounds what the CLI reads of an answer (a history of
// thousands of changes fits).
const maxResponse = 32 << 20

// operatorClient talks to a server's operator API (/v2/_skiff/). It is a
// PolicyStore like policy.Store, so the commands do not care which path
// they take; the who of Set and Delete travels as X-Skiff-Operator, and
// the server adds the client address (with authentication on, the server
// records the authenticated user instead).
type operatorClient struct {
	base string
	cred credentials
	http *http.Client
}

var _ httpapi.PolicyStore = (*operatorClient)(nil)

func newOperatorClient(base string, cred credentials) *operatorClient {
	return &operatorClient{base: base, cred: cred, http: &http.Client{Timeout: clientTimeout}}
}

// Collect runs a collection pass on the server (POST /v2/_skiff/gc); it
// lasts as long as the pass, so the client's timeout does not apply.
func (c *operatorClient) Collect(ctx context.Context, dryRun bool, grace time.Duration) (gc.Report, error) {
	var rep gc.Report
	q := url.Values{}
	if dryRun {
		q.Set("dryRun", "true")
	}
	if grace > 0 {
		q.Set("grace", grace.String())
	}
	long := *c
	long.http = &http.Client{}
	path := "/v2/_skiff/gc"
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	return rep, long.do(ctx, http.MethodPost, path, "", nil, &rep)
}

// credentials are the Basic credentials the CLI sends to a server's
// operator API, which needs an admin when authentication is on.
type credentials struct{ user, password string }

// envCredentials reads SKIFF_USERNAME and SKIFF_PASSWORD. The password is
// never a flag: a command line shows in ps and in shell history.
func envCredentials(getenv func(string) string) (credentials, error) {
	c := credentials{user: getenv("SKIFF_USERNAME"), password: getenv("SKIFF_PASSWORD")}
	if (c.user == "") != (c.password == "") {
		return credentials{}, errors.New("set both SKIFF_USERNAME and SKIFF_PASSWORD (an admin's credentials), or neither")
	}
	return c, nil
}

// Get returns the policy of prefix.
func (c *operatorClient) Get(ctx context.Context, prefix string) (policy.Record, error) {
	var rec policy.Record
	return rec, c.do(ctx, http.MethodGet, "/v2/_skiff/policies/"+prefix, "", nil, &rec)
}

// List returns every policy.
func (c *operatorClient) List(ctx context.Context) ([]policy.Record, error) {
	var out httpapi.PolicyList
	err := c.do(ctx, http.MethodGet, "/v2/_skiff/policies", "", nil, &out)
	return out.Policies, err
}

// Set stores p, its prefix in the path.
func (c *operatorClient) Set(ctx context.Context, p oci.Policy, who string) (policy.Record, error) {
	body := struct {
		IndexChildren oci.IndexChildren `json:"indexChildren"`
		Platforms     []string          `json:"platforms,omitempty"`
		ImageBlobs    oci.ImageBlobs    `json:"imageBlobs"`
	}{p.IndexChildren, p.Platforms, p.ImageBlobs}
	var rec policy.Record
	return rec, c.do(ctx, http.MethodPut, "/v2/_skiff/policies/"+p.Prefix, who, body, &rec)
}

// Delete removes the policy of prefix.
func (c *operatorClient) Delete(ctx context.Context, prefix, who string) (policy.Record, error) {
	var rec policy.Record
	return rec, c.do(ctx, http.MethodDelete, "/v2/_skiff/policies/"+prefix, who, nil, &rec)
}

// History returns the changes of prefix.
func (c *operatorClient) History(ctx context.Context, prefix string) ([]policy.Change, error) {
	var out httpapi.PolicyHistory
	err := c.do(ctx, http.MethodGet, "/v2/_skiff/history/"+prefix, "", nil, &out)
	return out.Changes, err
}

// IndexStatus reports the children of the index repo:ref names.
func (c *operatorClient) IndexStatus(ctx context.Context, repo string, ref oci.Reference) (httpapi.IndexReport, error) {
	var out httpapi.IndexReport
	return out, c.do(ctx, http.MethodGet, "/v2/_skiff/index/"+repo+"/"+ref.String(), "", nil, &out)
}

// do sends one request. Paths are built from locally validated prefixes,
// repository names, references and user names, whose characters need no
// escaping (query values are escaped by their callers).
// An error answer becomes its envelope's messages.
func (c *operatorClient) do(ctx context.Context, method, path, who string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if who != "" {
		req.Header.Set(httpapi.OperatorHeader, who)
	}
	if c.cred.user != "" {
		req.SetBasicAuth(c.cred.user, c.cred.password)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, c.base+path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	if err != nil {
		return fmt.Errorf("%s %s: read answer: %w", method, c.base+path, err)
	}
	if resp.StatusCode/100 != 2 {
		err := remoteError(method, c.base+path, resp.Status, b)
		switch {
		case resp.StatusCode == http.StatusUnauthorized && c.cred.user == "":
			return fmt.Errorf("%s requires authentication: set SKIFF_USERNAME and SKIFF_PASSWORD to an admin's credentials (the server said: %w)", c.base, err)
		case resp.StatusCode == http.StatusUnauthorized:
			return fmt.Errorf("%s refused the credentials of %s (SKIFF_USERNAME, SKIFF_PASSWORD): %w", c.base, c.cred.user, err)
		}
		return err
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("%s %s: answer is not the operator API's JSON (is %s a Skiff server?): %w", method, c.base+path, c.base, err)
	}
	return nil
}

// remoteError shows an error answer as the server's message; a body that
// is not an error envelope is quoted with the status.
func remoteError(method, url, status string, body []byte) error {
	errs, err := oci.ParseEnvelope(body)
	if err != nil || len(errs) == 0 {
		snippet := strings.TrimSpace(string(body))
		if len(snippet) > 200 {
			snippet = snippet[:200] + "..."
		}
		return fmt.Errorf("%s %s: %s: %s", method, url, status, snippet)
	}
	msgs := make([]error, len(errs))
	for i, e := range errs {
		msg := e.Message
		if msg == "" {
			msg = string(e.Code)
		}
		msgs[i] = errors.New(msg)
	}
	return errors.Join(msgs...)
}

// ruleClient is one kind of rule behind the operator API (retention
// policies, mirror rules), a RuleStore like internal/policy's: list at
// root, one rule at root/<key>, its changes at history<key>.
type ruleClient[P policy.Rule[P]] struct {
	c             *operatorClient
	root, history string
}

var (
	_ httpapi.RetentionStore = ruleClient[oci.Retention]{}
	_ httpapi.MirrorStore    = ruleClient[mirror.Rule]{}
)

func retentionClient(c *operatorClient) ruleClient[oci.Retention] {
	return ruleClient[oci.Retention]{c, "/v2/_skiff/retention", "/v2/_skiff/retention-history/"}
}

func mirrorClient(c *operatorClient) ruleClient[mirror.Rule] {
	return ruleClient[mirror.Rule]{c, "/v2/_skiff/mirror-rules", "/v2/_skiff/mirror-rule-history/"}
}

func (rc ruleClient[P]) Get(ctx context.Context, key string) (policy.RecordOf[P], error) {
	var rec policy.RecordOf[P]
	return rec, rc.c.do(ctx, http.MethodGet, rc.root+"/"+key, "", nil, &rec)
}

func (rc ruleClient[P]) List(ctx context.Context) ([]policy.RecordOf[P], error) {
	var out httpapi.RuleList[P]
	err := rc.c.do(ctx, http.MethodGet, rc.root, "", nil, &out)
	return out.Policies, err
}

// Set stores r, its key in the path.
func (rc ruleClient[P]) Set(ctx context.Context, r P, who string) (policy.RecordOf[P], error) {
	var rec policy.RecordOf[P]
	return rec, rc.c.do(ctx, http.MethodPut, rc.root+"/"+r.RulePrefix(), who, r.WithPrefix(""), &rec)
}

func (rc ruleClient[P]) Delete(ctx context.Context, key, who string) (policy.RecordOf[P], error) {
	var rec policy.RecordOf[P]
	return rec, rc.c.do(ctx, http.MethodDelete, rc.root+"/"+key, who, nil, &rec)
}

func (rc ruleClient[P]) History(ctx context.Context, key string) ([]policy.ChangeOf[P], error) {
	var out httpapi.RuleHistory[P]
	err := rc.c.do(ctx, http.MethodGet, rc.history+key, "", nil, &out)
	return out.Changes, err
}

// MirrorRuns returns each mirror rule's last run.
func (c *operatorClient) MirrorRuns(ctx context.Context) (map[string]mirror.Run, error) {
	var out httpapi.MirrorRuns
	err := c.do(ctx, http.MethodGet, "/v2/_skiff/mirror-runs", "", nil, &out)
	return out.Runs, err
}
