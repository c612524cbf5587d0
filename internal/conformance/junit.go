// Package conformance summarises the junit.xml written by the OCI
// conformance suite (opencontainers/distribution-spec/conformance), for
// test/integration's TestConformance: one line with the suite's own counts,
// then the name and message of every failed test case. A run fails when a
// test failed or errored, or when fewer than MinTests ran (a suite that
// stopped early or was misconfigured must not look green).
//
// Counts come from the <testsuites> attributes, which the suite computes over
// its whole result tree, so they match the numbers it prints itself.
//
// Expected-failures mode (ExpectFail) turns the verdict around for
// a run whose failures are the point, e.g. the sparse data against a strict
// registry. It passes when, and only when:
//
//   - at least one test failed, and every failed test's name matches REGEXP
//     (a failure anywhere else is a real one);
//   - the tests matching REGEXP had at least one manifest PUT refused with
//     400, and every such refusal carries the error code ExpectCode
//     (MANIFEST_BLOB_UNKNOWN) in its response body, as the suite
//     recorded it in the test's system-err;
//   - with ServerLog (skiff's JSON request log): each of those refusals is
//     in the log (matched by X-Request-Id) as a 400 manifest PUT whose error
//     starts with the code, and no other manifest PUT in the log was refused
//     with that code (only the expected tests hit missing content).
//
// The first line then ends with "as expected (...)" or "NOT as expected
// (...)"; the failed tests are listed as XFAIL (expected) or FAIL.
//
// Skipped tests are listed as SKIP with the suite's reason. Expected-skips
// mode (ExpectSkip) makes skips part of the verdict, for a run where
// a skip is the registry's deliberate answer (e.g. the anonymous blob mount
// an authenticated registry refuses, which the suite reports as a skip when
// the registry falls back to an upload): it passes only when at least one
// test was skipped and every skipped test matches REGEXP, which is matched
// against "<test name>: <first line of the suite's reason>", so it can pin
// the reason as well as the test. The first
// line then also says "skips as expected (...)" or "skips NOT as expected
// (...)".
package conformance

import (
	"bufio"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// maxMessage bounds each failure message: the full text stays in junit.xml
// and report.html, and a CI log of 150 untruncated failures is unreadable.
const maxMessage = 1500

type testSuites struct {
	Tests    int         `xml:"tests,attr"`
	Errors   int         `xml:"errors,attr"`
	Failures int         `xml:"failures,attr"`
	Skipped  int         `xml:"skipped,attr"`
	Suites   []testSuite `xml:"testsuite"`
}

type testSuite struct {
	Cases []testCase `xml:"testcase"`
}

type testCase struct {
	Name      string  `xml:"name,attr"`
	Status    string  `xml:"status,attr"`
	Failure   *result `xml:"failure"`
	Error     *result `xml:"error"`
	Skipped   *result `xml:"skipped"`
	SystemOut string  `xml:"system-out"`
	SystemErr string  `xml:"system-err"`
}

type result struct {
	Message string `xml:"message,attr"`
	Data    string `xml:",chardata"`
}

// Options are the command-line settings.
type Options struct {
	MinTests   int
	MaxList    int
	ExpectFail *regexp.Regexp // nil: normal mode
	ExpectCode string
	ServerLog  string
	ExpectSkip *regexp.Regexp // nil: skips are not part of the verdict
}

// Summarize writes the summary of the junit.xml at path to w: the count
// line, then each failed and skipped test. It returns 1 when the run fails
// its checks (o), 0 when it passes.
func Summarize(w io.Writer, path string, o Options) (int, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	var ts testSuites
	if err := xml.Unmarshal(raw, &ts); err != nil {
		return 0, fmt.Errorf("parse %s: %w", path, err)
	}
	failed := ts.Failures + ts.Errors
	counts := fmt.Sprintf("conformance: %d tests, %d failed, %d skipped", ts.Tests, failed, ts.Skipped)

	code := 0
	var verdict *expectation
	skipNote, skipsOK := "", true
	if o.ExpectSkip != nil {
		skipNote, skipsOK = checkSkips(ts, o.ExpectSkip)
		if !skipsOK {
			code = 1
		}
	}
	if o.ExpectFail != nil {
		v, err := checkExpected(ts, o)
		if err != nil {
			return 0, err
		}
		verdict = &v
		if len(v.problems) == 0 {
			fmt.Fprintf(w, "%s: as expected (%s)%s\n", counts, v.summary, prefixed("; ", skipNote))
		} else {
			fmt.Fprintf(w, "%s: NOT as expected (%s)%s\n", counts, strings.Join(v.problems, "; "), prefixed("; ", skipNote))
			code = 1
		}
	} else {
		fmt.Fprintf(w, "%s%s\n", counts, prefixed(": ", skipNote))
		if failed > 0 {
			code = 1
		}
	}

	listed := 0
	for _, s := range ts.Suites {
		for _, c := range s.Cases {
			if !c.failed() {
				continue
			}
			listed++
			if listed > o.MaxList {
				continue
			}
			if verdict != nil && o.ExpectFail.MatchString(c.Name) {
				// Expected: the name and the first line of the message.
				first, _, _ := strings.Cut(c.message(), "\n")
				fmt.Fprintf(w, "XFAIL %s\n    %s\n", c.Name, truncate(first, 200))
				continue
			}
			fmt.Fprintf(w, "FAIL %s\n", c.Name)
			for _, line := range strings.Split(truncate(c.message(), maxMessage), "\n") {
				fmt.Fprintf(w, "    %s\n", line)
			}
		}
	}
	if listed > o.MaxList {
		fmt.Fprintf(w, "... and %d more failed test cases (see junit.xml)\n", listed-o.MaxList)
	}
	if verdict != nil {
		for _, d := range verdict.details {
			fmt.Fprintln(w, d)
		}
	}
	// Skipped tests with the suite's reason: a skip hides a test as well as
	// a failure would, so each one is shown.
	for _, s := range ts.Suites {
		for _, c := range s.Cases {
			if !c.skipped() {
				continue
			}
			first, _, _ := strings.Cut(c.message(), "\n")
			mark := "SKIP"
			if o.ExpectSkip != nil && !o.ExpectSkip.MatchString(c.skipKey()) {
				mark = "SKIP (unexpected)"
			}
			fmt.Fprintf(w, "%s %s\n    %s\n", mark, c.Name, truncate(first, 300))
		}
	}

	if ts.Tests < o.MinTests {
		fmt.Fprintf(w, "conformance: only %d tests ran, expected at least %d: suite misconfigured or stopped early\n", ts.Tests, o.MinTests)
		code = 1
	}
	return code, nil
}

// expectation is the outcome of the expected-failures checks.
type expectation struct {
	summary  string   // what held, for the first line
	problems []string // what did not; empty when as expected
	details  []string // extra lines after the list of failures
}

// exchange is one request and its response as the suite logs them in a
// test case's system-err.
type exchange struct {
	test      string
	method    string
	url       string
	status    int
	requestID string
	body      string // the response part, headers and body
}

var (
	reqMethodRE = regexp.MustCompile(`(?m)^Method: (\S+)`)
	reqURLRE    = regexp.MustCompile(`(?m)^URL: (\S+)`)
	respStatus  = regexp.MustCompile(`(?m)^Status: (\d+)`)
	respReqID   = regexp.MustCompile(`(?m)^\s*X-Request-Id: \[([^\]\s]+)\]`)
)

// exchanges parses the suite's request dumps:
// "~~~ REQUEST ~~~ ... ~~~ RESPONSE ~~~ ... ====".
func exchanges(test, systemErr string) []exchange {
	var out []exchange
	parts := strings.Split(systemErr, "~~~ REQUEST ~~~")
	for _, p := range parts[1:] {
		req, resp, ok := strings.Cut(p, "~~~ RESPONSE ~~~")
		if !ok {
			continue
		}
		if i := strings.Index(resp, "\n===="); i >= 0 {
			resp = resp[:i]
		}
		e := exchange{test: test, body: resp}
		if m := reqMethodRE.FindStringSubmatch(req); m != nil {
			e.method = m[1]
		}
		if m := reqURLRE.FindStringSubmatch(req); m != nil {
			e.url = m[1]
		}
		if m := respStatus.FindStringSubmatch(resp); m != nil {
			e.status, _ = strconv.Atoi(m[1])
		}
		if m := respReqID.FindStringSubmatch(resp); m != nil {
			e.requestID = m[1]
		}
		out = append(out, e)
	}
	return out
}

func checkExpected(ts testSuites, o Options) (expectation, error) {
	var v expectation
	re := o.ExpectFail
	var expected, unexpected []string
	refused := map[string]exchange{} // by request id (or URL when there is none)
	var badCode []string
	for _, s := range ts.Suites {
		for _, c := range s.Cases {
			if c.failed() {
				if re.MatchString(c.Name) {
					expected = append(expected, c.Name)
				} else {
					unexpected = append(unexpected, c.Name)
				}
			}
			if !re.MatchString(c.Name) {
				continue
			}
			for _, e := range exchanges(c.Name, c.SystemErr) {
				if e.method != "PUT" || !strings.Contains(e.url, "/manifests/") || e.status != 400 {
					continue
				}
				key := e.requestID
				if key == "" {
					key = e.url
				}
				if _, seen := refused[key]; seen {
					continue // the suite dumps some exchanges in more than one case
				}
				refused[key] = e
				if !strings.Contains(e.body, `"code":"`+o.ExpectCode+`"`) {
					badCode = append(badCode, fmt.Sprintf("%s %s (request %s)", e.method, e.url, e.requestID))
				}
			}
		}
	}
	failed := ts.Failures + ts.Errors
	if failed == 0 {
		v.problems = append(v.problems, fmt.Sprintf("no test failed, but the tests matching %s were expected to", re))
	}
	if len(unexpected) > 0 {
		v.problems = append(v.problems, fmt.Sprintf("%d failed tests do not match %s", len(unexpected), re))
	}
	if len(refused) == 0 {
		v.problems = append(v.problems, fmt.Sprintf("no manifest PUT of the tests matching %s was refused with 400", re))
	}
	if len(badCode) > 0 {
		v.problems = append(v.problems, fmt.Sprintf("%d of %d refused manifest PUTs lack %s in the response", len(badCode), len(refused), o.ExpectCode))
		for _, b := range badCode {
			v.details = append(v.details, "refused without "+o.ExpectCode+": "+b)
		}
	}

	where := "in the responses"
	if o.ServerLog != "" {
		where = "in the responses and the server log"
		problems, details, err := checkServerLog(o.ServerLog, o.ExpectCode, refused)
		if err != nil {
			return v, err
		}
		v.problems = append(v.problems, problems...)
		v.details = append(v.details, details...)
	}
	v.summary = fmt.Sprintf("%d failures, all matching %s; %d manifest PUTs refused, all 400 %s %s",
		len(expected)+len(unexpected), re, len(refused), o.ExpectCode, where)
	return v, nil
}

// logLine is the part of skiff's JSON request log the check reads.
type logLine struct {
	Msg       string `json:"msg"`
	RequestID string `json:"request_id"`
	Method    string `json:"method"`
	Route     string `json:"route"`
	Repo      string `json:"repo"`
	Ref       string `json:"ref"`
	Status    int    `json:"status"`
	Error     string `json:"error"`
}

// checkServerLog matches the refused PUTs against the server's log.
func checkServerLog(path, code string, refused map[string]exchange) (problems, details []string, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	seen := map[string]logLine{}
	var strays []string
	otherCodes := map[string]int{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		var l logLine
		if json.Unmarshal(sc.Bytes(), &l) != nil || l.Msg != "request" {
			continue
		}
		if l.Method != "PUT" || l.Route != "manifest" || l.Status < 400 || l.Status >= 500 {
			continue
		}
		if _, ok := refused[l.RequestID]; ok {
			seen[l.RequestID] = l
			continue
		}
		if strings.HasPrefix(l.Error, code+":") {
			strays = append(strays, fmt.Sprintf("%s:%s request %s: %s", l.Repo, l.Ref, l.RequestID, l.Error))
			continue
		}
		c, _, _ := strings.Cut(l.Error, ":")
		otherCodes[fmt.Sprintf("%d %s", l.Status, c)]++
	}
	if err := sc.Err(); err != nil {
		return nil, nil, fmt.Errorf("read %s: %w", path, err)
	}
	ids := make([]string, 0, len(refused))
	for id := range refused {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	var missing, wrong int
	for _, id := range ids {
		e := refused[id]
		l, ok := seen[id]
		switch {
		case !ok:
			missing++
			details = append(details, fmt.Sprintf("server log: no manifest PUT with request id %q (%s, test %s)", id, e.url, e.test))
		case l.Status != 400 || !strings.HasPrefix(l.Error, code+":"):
			wrong++
			details = append(details, fmt.Sprintf("server log: %s:%s request %s: status %d, error %q; want 400 %s", l.Repo, l.Ref, id, l.Status, l.Error, code))
		default:
			details = append(details, fmt.Sprintf("server log: refused as expected: %s:%s %d %s", l.Repo, l.Ref, l.Status, truncate(l.Error, 300)))
		}
	}
	if missing > 0 {
		problems = append(problems, fmt.Sprintf("%d refused manifest PUTs not found in the server log", missing))
	}
	if wrong > 0 {
		problems = append(problems, fmt.Sprintf("%d refused manifest PUTs logged without 400 %s", wrong, code))
	}
	if len(strays) > 0 {
		problems = append(problems, fmt.Sprintf("%d other manifest PUTs refused with %s", len(strays), code))
		for _, s := range strays {
			details = append(details, "server log: unexpected "+code+": "+s)
		}
	}
	if len(otherCodes) > 0 {
		keys := make([]string, 0, len(otherCodes))
		for k := range otherCodes {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		parts := make([]string, 0, len(keys))
		for _, k := range keys {
			parts = append(parts, fmt.Sprintf("%d x %s", otherCodes[k], k))
		}
		details = append(details, "server log: other manifest PUTs refused (the suite's own negative tests, passing): "+strings.Join(parts, ", "))
	}
	return problems, details, nil
}

// checkSkips is the expected-skips verdict: a note for the first line and
// whether it holds.
func checkSkips(ts testSuites, re *regexp.Regexp) (string, bool) {
	var matching, other int
	for _, s := range ts.Suites {
		for _, c := range s.Cases {
			if !c.skipped() {
				continue
			}
			if re.MatchString(c.skipKey()) {
				matching++
			} else {
				other++
			}
		}
	}
	switch {
	case matching+other == 0:
		return fmt.Sprintf("skips NOT as expected (no test was skipped; tests matching /%s/ were expected to be)", re), false
	case other > 0:
		return fmt.Sprintf("skips NOT as expected (%d of %d skipped tests do not match /%s/)", other, matching+other, re), false
	}
	return fmt.Sprintf("skips as expected (%d, all matching /%s/)", matching, re), true
}

func prefixed(prefix, s string) string {
	if s == "" {
		return ""
	}
	return prefix + s
}

func (c testCase) skipped() bool { return c.Status == "skipped" || c.Skipped != nil }

// skipKey is what ExpectSkip matches: the name and the reason's first line.
func (c testCase) skipKey() string {
	first, _, _ := strings.Cut(c.message(), "\n")
	return c.Name + ": " + first
}

func (c testCase) failed() bool {
	switch c.Status {
	case "failure", "error":
		return true
	}
	return c.Failure != nil || c.Error != nil
}

// message prefers the suite's own error text (system-out), then a junit
// <failure>/<error> element, so the summary works with other junit writers too.
func (c testCase) message() string {
	parts := []string{}
	if s := strings.TrimSpace(c.SystemOut); s != "" {
		parts = append(parts, s)
	}
	for _, r := range []*result{c.Failure, c.Error} {
		if r == nil {
			continue
		}
		if s := strings.TrimSpace(r.Message + "\n" + r.Data); s != "" {
			parts = append(parts, s)
		}
	}
	if len(parts) == 0 {
		return "(no message)"
	}
	return strings.Join(parts, "\n")
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + fmt.Sprintf("... [%d more bytes]", len(s)-n)
}
