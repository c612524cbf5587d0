package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/skiff-registry/skiff/internal/gc"
	"github.com/skiff-registry/skiff/internal/mirror"
	"github.com/skiff-registry/skiff/internal/policy"
	"github.com/skiff-registry/skiff/internal/registry"
	"github.com/skiff-registry/skiff/pkg/oci"
)

// The operator API lives under /v2/_skiff/. No registry client uses that
// path, and it cannot collide with a repository: a name component must
// start with a lower-case letter or digit, never '_'.
//
//	GET    /v2/_skiff/policies                        {"policies":[Record...]}
//	GET    /v2/_skiff/policies/<prefix>               Record
//	PUT    /v2/_skiff/policies/<prefix>               Record (body: the policy)
//	DELETE /v2/_skiff/policies/<prefix>               Record (the tombstone, with previous)
//	GET    /v2/_skiff/history/<prefix>                {"changes":[Change...]}
//	GET    /v2/_skiff/retention                       {"policies":[RetentionRecord...]}
//	GET|PUT|DELETE /v2/_skiff/retention/<prefix>      RetentionRecord (PUT body: the retention policy)
//	GET    /v2/_skiff/retention-history/<prefix>      {"changes":[RetentionChange...]}
//	GET    /v2/_skiff/mirror-rules                    {"policies":[MirrorRecord...]}
//	GET|PUT|DELETE /v2/_skiff/mirror-rules/<name>     MirrorRecord (PUT body: the rule)
//	GET    /v2/_skiff/mirror-rule-history/<name>      {"changes":[MirrorChange...]}
//	GET    /v2/_skiff/mirror-runs                     {"runs":{"<name>":mirror.Run...}}: each rule's last sync
//	GET    /v2/_skiff/index/<repo>/<reference>        IndexReport
//	POST   /v2/_skiff/gc[?dryRun=true][&grace=24h]     gc.Report: one collection pass
//	...    /v2/_skiff/users[/<name>[/password|/grants]]  users (users.go)
//
// With authentication on (WithAuth), every operator route needs the admin
// role (registry:admin:*).
//
// History has its own root rather than a /history suffix because a prefix
// may itself have a component named "history".
const operatorRoot = "_skiff"

// Operator route kinds.
const (
	routePolicies       = "operator-policies"
	routePolicy         = "operator-policy"
	routePolicyHistory  = "operator-history"
	routeRetentions     = "operator-retentions"
	routeRetention      = "operator-retention"
	routeRetentionHist  = "operator-retention-history"
	routeMirrorRules    = "operator-mirror-rules"
	routeMirrorRule     = "operator-mirror-rule"
	routeMirrorHistory  = "operator-mirror-history"
	routeMirrorRuns     = "operator-mirror-runs"
	routeIndexStatus    = "operator-index"
	routeGC             = "operator-gc"
	routeOperatorNoSuch = "operator-unknown"
)

// Operator API error codes. They are not the spec's, so oci's table does
// not know them: every use sets its status explicitly.
const (
	// CodePolicyInvalid: the policy, its prefix or the request body is
	// invalid (400; 413 for an oversize body).
	CodePolicyInvalid oci.ErrorCode = "POLICY_INVALID"
	// CodePolicyUnknown: no policy is set for the prefix (404).
	CodePolicyUnknown oci.ErrorCode = "POLICY_UNKNOWN"
)

const (
	// maxPolicyBody bounds a policy PUT body: a policy is a few hundred
	// bytes, even with every platform of a large index listed.
	maxPolicyBody = 64 << 10
	// maxOperatorName bounds the X-Skiff-Operator header kept in the audit
	// trail.
	maxOperatorName = 128
	// OperatorHeader names who makes a change through the operator API.
	OperatorHeader = "X-Skiff-Operator"
)

// RuleStore is what the operator API needs of internal/policy's stores.
type RuleStore[P any] interface {
	Get(ctx context.Context, prefix string) (policy.RecordOf[P], error)
	List(ctx context.Context) ([]policy.RecordOf[P], error)
	Set(ctx context.Context, p P, who string) (policy.RecordOf[P], error)
	Delete(ctx context.Context, prefix, who string) (policy.RecordOf[P], error)
	History(ctx context.Context, prefix string) ([]policy.ChangeOf[P], error)
}

// The stores of index policies, retention policies and mirror rules.
type (
	PolicyStore    = RuleStore[oci.Policy]
	RetentionStore = RuleStore[oci.Retention]
	MirrorStore    = RuleStore[mirror.Rule]
)

var (
	_ PolicyStore    = (*policy.Store)(nil)
	_ RetentionStore = (*policy.RetentionStore)(nil)
)

// WithOperator serves the operator API under /v2/_skiff/ over store
// (default: off, and those paths answer 404 saying how to turn it on).
// With WithAuth it needs an admin, and it serves user management too;
// without, anyone who reaches it may use it: a trusted network only.
func WithOperator(store PolicyStore) Option { return func(o *options) { o.operator = store } }

// WithRetention serves the retention policies under /v2/_skiff/retention
// over store (with WithOperator; default: 404).
func WithRetention(store RetentionStore) Option { return func(o *options) { o.retention = store } }

// WithMirrorRules serves the sync's mirror rules under
// /v2/_skiff/mirror-rules over store, and their last runs, which runs
// reads (with WithOperator; default: 404).
func WithMirrorRules(store MirrorStore, runs func(context.Context) (map[string]mirror.Run, error)) Option {
	return func(o *options) { o.mirror, o.mirrorRuns = store, runs }
}

// MirrorRuns is the body of GET /v2/_skiff/mirror-runs.
type MirrorRuns struct {
	Runs map[string]mirror.Run `json:"runs"`
}

// RuleList is the body of GET /v2/_skiff/policies and /v2/_skiff/retention.
type RuleList[P any] struct {
	Policies []policy.RecordOf[P] `json:"policies"`
}

// RuleHistory is the body of GET /v2/_skiff/history/<prefix> and
// /v2/_skiff/retention-history/<prefix>.
type RuleHistory[P any] struct {
	Changes []policy.ChangeOf[P] `json:"changes"`
}

// The bodies of the index policies' and the retention policies' lists and
// histories.
type (
	PolicyList       = RuleList[oci.Policy]
	PolicyHistory    = RuleHistory[oci.Policy]
	RetentionList    = RuleList[oci.Retention]
	RetentionHistory = RuleHistory[oci.Retention]
	MirrorList       = RuleList[mirror.Rule]
	MirrorHistory    = RuleHistory[mirror.Rule]
)

// IndexReport is the body of GET /v2/_skiff/index/<repo>/<reference>.
type IndexReport struct {
	Repository string                 `json:"repository"`
	Digest     string                 `json:"digest"`
	MediaType  string                 `json:"mediaType"`
	Children   []registry.ChildStatus `json:"children"`
	Present    int                    `json:"present"`
	Absent     int                    `json:"absent"`
}

// The operator routes without an argument, by path, and those with one,
// by the path's first part (the rest is the argument: a prefix or a name).
var (
	operatorExact = map[string]string{
		"policies": routePolicies, "retention": routeRetentions, "mirror-rules": routeMirrorRules,
		"mirror-runs": routeMirrorRuns, "gc": routeGC,
	}
	operatorWithArg = map[string]string{
		"policies": routePolicy, "history": routePolicyHistory,
		"retention": routeRetention, "retention-history": routeRetentionHist,
		"mirror-rules": routeMirrorRule, "mirror-rule-history": routeMirrorHistory,
	}
)

// parseOperatorRoute matches the path after /v2/_skiff/.
func parseOperatorRoute(rest string) route {
	rt := route{kind: routeOperatorNoSuch, group: GroupCatalog}
	if kind, ok := operatorExact[rest]; ok {
		rt.kind = kind
		return rt
	}
	if rest == "users" {
		return parseUserRoute("")
	}
	first, arg, ok := strings.Cut(rest, "/")
	if !ok {
		return rt
	}
	if kind, ok := operatorWithArg[first]; ok {
		rt.kind, rt.arg = kind, arg
		return rt
	}
	switch first {
	case "users":
		return parseUserRoute(arg)
	case "index":
		i := strings.LastIndex(arg, "/")
		if i <= 0 || i == len(arg)-1 {
			return rt
		}
		rt.kind, rt.repo, rt.arg = routeIndexStatus, arg[:i], arg[i+1:]
	}
	return rt
}

func isOperatorRoute(kind string) bool { return strings.HasPrefix(kind, "operator-") }

// operatorOff answers every operator path of a server without the API.
func operatorOff() error {
	return oci.Errorf(oci.CodeUnsupported,
		"the operator API is off on this server; start it with `skiff serve --operator-api` (with --auth it needs an admin; without, trusted networks only)").
		WithStatus(http.StatusNotFound)
}

func noOperatorEndpoint(path string) error {
	return oci.Errorf(oci.CodeUnsupported,
		"no operator API endpoint at %s; there are /v2/_skiff/policies[/<prefix>], /v2/_skiff/history/<prefix>, /v2/_skiff/retention[/<prefix>], /v2/_skiff/retention-history/<prefix>, /v2/_skiff/mirror-rules[/<name>], /v2/_skiff/mirror-rule-history/<name>, /v2/_skiff/mirror-runs, /v2/_skiff/index/<repo>/<reference>, "+
			"/v2/_skiff/gc and /v2/_skiff/users[/<name>[/password|/grants]]",
		path).WithStatus(http.StatusNotFound)
}

func policyInvalid(format string, args ...any) *oci.Error {
	return oci.Errorf(CodePolicyInvalid, format, args...).WithStatus(http.StatusBadRequest)
}

// policyPrefix validates the prefix of a route; the message is the
// validation error, which says what is wrong.
func policyPrefix(raw string) (string, error) {
	p, err := oci.NormalizePrefix(raw)
	if err != nil {
		return "", policyInvalid("%s", err.Error())
	}
	return p, nil
}

// ruleAPI serves one kind of rule: index policies or retention policies.
type ruleAPI[P policy.Rule[P]] struct {
	store RuleStore[P]
	what  string // in messages: "policy", "retention policy"
	// unset says what a prefix without a rule gets.
	unset   string
	example string // a body to send
	key     string // what the route's argument is: "prefix" (default) or "name"
}

func (a *API) policies() ruleAPI[oci.Policy] {
	return ruleAPI[oci.Policy]{store: a.opts.operator, what: "policy",
		unset:   "its repositories get the policy of a shorter prefix or the default (" + oci.DefaultPolicy().String() + ")",
		example: `{"indexChildren":"platforms","platforms":["linux/amd64"],"imageBlobs":"required"}`}
}

func (a *API) retentions() ruleAPI[oci.Retention] {
	return ruleAPI[oci.Retention]{store: a.opts.retention, what: "retention policy",
		unset:   "its repositories get the retention policy of a shorter prefix, or keep everything",
		example: `{"untaggedAfter":"30d","keepTags":[{"pattern":"v.*","last":10}]}`}
}

func (a *API) mirrorRules() ruleAPI[mirror.Rule] {
	return ruleAPI[mirror.Rule]{store: a.opts.mirror, what: "mirror rule", key: "name",
		unset:   "the scheduled sync runs the other rules",
		example: `{"source":"quay.io/org/app","target":"mirror/app","tags":"v1\\.[0-9]+","platforms":["linux/amd64"],"referrers":true}`}
}

// mirrorRuns answers GET /v2/_skiff/mirror-runs.
func (a *API) mirrorRuns(w http.ResponseWriter, r *http.Request, _ route) error {
	runs, err := a.opts.mirrorRuns(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, r, http.StatusOK, "application/json", MirrorRuns{Runs: runs})
	return nil
}

// storeError maps the store's not-found to POLICY_UNKNOWN; anything else
// is internal.
func (h ruleAPI[P]) storeError(prefix string, err error) error {
	if errors.Is(err, policy.ErrNotFound) {
		key := h.key
		if key == "" {
			key = "prefix"
		}
		return oci.Errorf(CodePolicyUnknown, "no %s is set for %s %s; %s", h.what, key, prefix, h.unset).WithStatus(http.StatusNotFound)
	}
	return err
}

// list answers GET of the collection.
func (h ruleAPI[P]) list(w http.ResponseWriter, r *http.Request, _ route) error {
	recs, err := h.store.List(r.Context())
	if err != nil {
		return err
	}
	if recs == nil {
		recs = []policy.RecordOf[P]{}
	}
	writeJSON(w, r, http.StatusOK, "application/json", RuleList[P]{Policies: recs})
	return nil
}

// get answers GET of one prefix.
func (h ruleAPI[P]) get(w http.ResponseWriter, r *http.Request, rt route) error {
	prefix, err := policyPrefix(rt.arg)
	if err != nil {
		return err
	}
	rec, err := h.store.Get(r.Context(), prefix)
	if err != nil {
		return h.storeError(prefix, err)
	}
	writeJSON(w, r, http.StatusOK, "application/json", rec)
	return nil
}

// change validates the prefix of a changing request and says who makes it.
func (a *API) change(r *http.Request, rt route) (prefix, who string, err error) {
	if prefix, err = policyPrefix(rt.arg); err != nil {
		return "", "", err
	}
	who, err = a.operatorName(r)
	return prefix, who, err
}

// put answers PUT of one prefix: the body is the rule, its prefix taken
// from the path.
func (h ruleAPI[P]) put(a *API) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request, rt route) error {
		prefix, who, err := a.change(r, rt)
		if err != nil {
			return err
		}
		p, err := decodeRule[P](r.Body, h.what, h.example)
		if err != nil {
			return err
		}
		if bp := p.RulePrefix(); bp != "" {
			bodyPrefix, err := oci.NormalizePrefix(bp)
			if err != nil || bodyPrefix != prefix {
				return policyInvalid("the body names prefix %q but the path names %q; leave prefix out of the body or make them agree", bp, rt.arg)
			}
		}
		p, err = p.WithPrefix(prefix).Validate()
		if err != nil {
			return policyInvalid("%s", err.Error())
		}
		rec, err := h.store.Set(r.Context(), p, who)
		if err != nil {
			return err
		}
		writeJSON(w, r, http.StatusOK, "application/json", rec)
		return nil
	}
}

// del answers DELETE of one prefix with the tombstone, which carries the
// deleted rule as previous.
func (h ruleAPI[P]) del(a *API) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request, rt route) error {
		prefix, who, err := a.change(r, rt)
		if err != nil {
			return err
		}
		rec, err := h.store.Delete(r.Context(), prefix, who)
		if err != nil {
			return h.storeError(prefix, err)
		}
		writeJSON(w, r, http.StatusOK, "application/json", rec)
		return nil
	}
}

// history answers GET of a prefix's changes, oldest first. A prefix that
// never had a rule has an empty history, not an error.
func (h ruleAPI[P]) history(w http.ResponseWriter, r *http.Request, rt route) error {
	prefix, err := policyPrefix(rt.arg)
	if err != nil {
		return err
	}
	changes, err := h.store.History(r.Context(), prefix)
	if err != nil {
		return err
	}
	if changes == nil {
		changes = []policy.ChangeOf[P]{}
	}
	writeJSON(w, r, http.StatusOK, "application/json", RuleHistory[P]{Changes: changes})
	return nil
}

// indexStatus answers GET /v2/_skiff/index/<repo>/<reference>: which
// children of an index the repository holds.
func (a *API) indexStatus(w http.ResponseWriter, r *http.Request, rt route) error {
	ref, err := oci.ParseReference(rt.arg)
	if err != nil {
		return err
	}
	m, children, err := a.reg.IndexStatus(r.Context(), rt.repo, ref)
	if err != nil {
		return err
	}
	rep := IndexReport{Repository: rt.repo, Digest: m.Digest.String(), MediaType: m.MediaType, Children: children}
	if rep.Children == nil {
		rep.Children = []registry.ChildStatus{}
	}
	for _, c := range children {
		if c.Present {
			rep.Present++
		} else {
			rep.Absent++
		}
	}
	writeJSON(w, r, http.StatusOK, "application/json", rep)
	return nil
}

// Collect runs one garbage collection pass (internal/gc), dry or not, with
// a grace period (0: the server's).
type Collect func(ctx context.Context, dryRun bool, grace time.Duration) (gc.Report, error)

// WithCollector serves POST /v2/_skiff/gc with collect (default: 404).
func WithCollector(collect Collect) Option { return func(o *options) { o.collect = collect } }

// runGC answers POST /v2/_skiff/gc: one pass, its report. It runs while
// the request lasts; pushes go on meanwhile.
func (a *API) runGC(w http.ResponseWriter, r *http.Request, rt route) error {
	if a.opts.collect == nil {
		return oci.Errorf(oci.CodeUnsupported, "this server does not collect garbage on request: a scheduled function does (or run skiff gc against its stores)").WithStatus(http.StatusNotFound)
	}
	q := r.URL.Query()
	var dry bool
	if v := q.Get("dryRun"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return oci.Errorf(oci.CodeUnsupported, "dryRun=%q is not true or false", v).WithStatus(http.StatusBadRequest)
		}
		dry = b
	}
	var grace time.Duration
	if v := q.Get("grace"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return oci.Errorf(oci.CodeUnsupported, "grace=%q is not a positive duration such as 24h", v).WithStatus(http.StatusBadRequest)
		}
		grace = d
	}
	rep, err := a.opts.collect(r.Context(), dry, grace)
	if err != nil {
		return fmt.Errorf("garbage collection: %w", err)
	}
	writeJSON(w, r, http.StatusOK, "application/json", rep)
	return nil
}

// decodeRule reads one JSON rule object, refusing unknown fields,
// trailing data and bodies over maxPolicyBody.
func decodeRule[P any](body io.Reader, what, example string) (P, error) {
	var p P
	b, err := io.ReadAll(io.LimitReader(body, maxPolicyBody+1))
	if err != nil {
		return p, fmt.Errorf("read %s body: %w", what, err)
	}
	if len(b) > maxPolicyBody {
		return p, oci.Errorf(CodePolicyInvalid, "%s body exceeds %d bytes", what, maxPolicyBody).WithStatus(http.StatusRequestEntityTooLarge)
	}
	if len(bytes.TrimSpace(b)) == 0 {
		return p, policyInvalid("the body is empty; send a JSON %s such as %s", what, example)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return p, policyInvalid("the body is not a JSON %s (%s); send one such as %s", what, jsonProblem(err), example)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return p, policyInvalid("the body has data after the JSON %s object; send exactly one object such as %s", what, example)
	}
	return p, nil
}

// jsonProblem describes a decoding error without Go type names.
func jsonProblem(err error) string {
	var typeErr *json.UnmarshalTypeError
	if errors.As(err, &typeErr) {
		return fmt.Sprintf("field %q has the wrong type", typeErr.Field)
	}
	// The remaining texts ("unknown field \"x\"", "invalid character ...",
	// "unexpected EOF") name no server internals.
	return strings.TrimPrefix(err.Error(), "json: ")
}

// operatorName says who makes a change: the X-Skiff-Operator header, if
// any, and the client address.
//
// With authentication on, the authenticated user is who, at the client
// address the failed-login limit uses (which honours --trust-forwarded);
// the header is only believed on a server without authentication
// (loopback or --insecure-no-auth).
func (a *API) operatorName(r *http.Request) (string, error) {
	if p, ok := principal(r.Context()); ok && p.Name != "" {
		return p.Name + " via " + a.clientAddr(r), nil
	}
	addr := r.RemoteAddr
	if host, _, err := net.SplitHostPort(addr); err == nil {
		addr = host
	}
	if addr == "" {
		addr = "unknown address"
	}
	name := strings.TrimSpace(r.Header.Get(OperatorHeader))
	if name == "" {
		return "anonymous via " + addr, nil
	}
	if len(name) > maxOperatorName {
		return "", policyInvalid("header %s is %d bytes long; the limit is %d", OperatorHeader, len(name), maxOperatorName)
	}
	for _, c := range name {
		if !unicode.IsPrint(c) {
			return "", policyInvalid("header %s must be printable text, without control characters", OperatorHeader)
		}
	}
	return name + " via " + addr, nil
}

func isRetentionRoute(kind string) bool {
	return kind == routeRetentions || kind == routeRetention || kind == routeRetentionHist
}

func isMirrorRoute(kind string) bool {
	return kind == routeMirrorRules || kind == routeMirrorRule || kind == routeMirrorHistory || kind == routeMirrorRuns
}
