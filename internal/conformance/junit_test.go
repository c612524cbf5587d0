package conformance

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// exchangeDump is a request and response as the conformance suite writes
// them into a test case's system-err.
func exchangeDump(method, url string, status int, reqID, body string) string {
	return `================================================================================
~~~ REQUEST ~~~
Method: ` + method + `
URL: ` + url + `
Headers:
               Content-Type: [application/vnd.oci.image.manifest.v1+json]
--------------------------------------------------------------------------------
~~~ RESPONSE ~~~
Status: ` + itoa(status) + `
Headers:
               X-Request-Id: [` + reqID + `]
` + body + `
================================================================================
`
}

func itoa(n int) string { return strconv.Itoa(n) }

const blobUnknown = `{"errors":[{"code":"MANIFEST_BLOB_UNKNOWN","message":"blob missing"}]}`

// junit builds a junit.xml with the given cases: name, status, system-err.
func junit(t *testing.T, cases ...[3]string) string {
	t.Helper()
	var b strings.Builder
	failures := 0
	for _, c := range cases {
		if c[1] == "failure" {
			failures++
		}
	}
	b.WriteString(`<?xml version="1.0"?><testsuites tests="` + itoa(len(cases)) + `" failures="` + itoa(failures) + `" errors="0" skipped="0"><testsuite>`)
	for _, c := range cases {
		b.WriteString(`<testcase name="` + c[0] + `" status="` + c[1] + `"><system-out>msg</system-out><system-err><![CDATA[` + c[2] + `]]></system-err></testcase>`)
	}
	b.WriteString(`</testsuite></testsuites>`)
	path := filepath.Join(t.TempDir(), "junit.xml")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func serverLog(t *testing.T, lines ...string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "server.log")
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func logPut(id, ref string, status int, errText string) string {
	return `{"level":"INFO","msg":"request","request_id":"` + id + `","method":"PUT","route":"manifest","repo":"c/one","ref":"` + ref + `","status":` + itoa(status) + `,"error":"` + errText + `"}`
}

func runSum(t *testing.T, path string, o Options) (int, string) {
	t.Helper()
	var out strings.Builder
	code, err := Summarize(&out, path, o)
	if err != nil {
		t.Fatal(err)
	}
	return code, out.String()
}

func TestNormalMode(t *testing.T) {
	pass := junit(t, [3]string{"T/a", "passed", ""})
	if code, out := runSum(t, pass, Options{MinTests: 1, MaxList: 10}); code != 0 || !strings.HasPrefix(out, "conformance: 1 tests, 0 failed, 0 skipped\n") {
		t.Errorf("all passing: code %d, output:\n%s", code, out)
	}
	if code, _ := runSum(t, pass, Options{MinTests: 2, MaxList: 10}); code != 1 {
		t.Errorf("below MinTests: code %d, want 1", code)
	}
	fail := junit(t, [3]string{"T/a", "failure", ""})
	if code, out := runSum(t, fail, Options{MinTests: 1, MaxList: 10}); code != 1 || !strings.Contains(out, "FAIL T/a") {
		t.Errorf("a failure: code %d, output:\n%s", code, out)
	}
}

func TestExpectedFailures(t *testing.T) {
	refused := exchangeDump("PUT", "http://r/v2/c/one/manifests/sparse-index", 400, "id1", blobUnknown)
	accepted := exchangeDump("PUT", "http://r/v2/c/one/manifests/child", 201, "id2", "")
	invalid := exchangeDump("PUT", "http://r/v2/c/one/manifests/sparse-index", 400, "id3", `{"errors":[{"code":"MANIFEST_INVALID"}]}`)
	goodLog := []string{
		logPut("id1", "sparse-index", 400, "MANIFEST_BLOB_UNKNOWN: manifest x for platform linux/arm64 is not in repository c/one"),
		logPut("id2", "child", 201, ""),
		logPut("id9", "sha256:bad", 400, "DIGEST_INVALID: bad"), // a negative test elsewhere: fine
	}
	re := regexp.MustCompile("/sparse/")
	for _, tc := range []struct {
		name  string
		cases [][3]string
		log   []string
		want  int
		text  string
	}{
		{"as expected", [][3]string{{"T/sparse/push", "failure", refused + accepted}, {"T/sparse/pull", "failure", ""}, {"T/other", "passed", ""}},
			goodLog, 0, "as expected (2 failures, all matching /sparse/; 1 manifest PUTs refused, all 400 MANIFEST_BLOB_UNKNOWN in the responses and the server log)"},
		{"nothing failed", [][3]string{{"T/sparse/push", "passed", accepted}}, goodLog, 1, "no test failed"},
		{"failure elsewhere", [][3]string{{"T/sparse/push", "failure", refused}, {"T/other", "failure", ""}},
			goodLog, 1, "1 failed tests do not match /sparse/"},
		{"wrong code in the response", [][3]string{{"T/sparse/push", "failure", invalid}},
			[]string{logPut("id3", "sparse-index", 400, "MANIFEST_INVALID: x")}, 1, "lack MANIFEST_BLOB_UNKNOWN in the response"},
		{"failed without a refused PUT", [][3]string{{"T/sparse/pull", "failure", accepted}}, goodLog, 1, "no manifest PUT of the tests matching /sparse/ was refused"},
		{"not in the server log", [][3]string{{"T/sparse/push", "failure", refused}}, goodLog[1:], 1, "not found in the server log"},
		{"logged with another code", [][3]string{{"T/sparse/push", "failure", refused}},
			[]string{logPut("id1", "sparse-index", 400, "MANIFEST_INVALID: x")}, 1, "logged without 400 MANIFEST_BLOB_UNKNOWN"},
		{"a stray MANIFEST_BLOB_UNKNOWN", [][3]string{{"T/sparse/push", "failure", refused}},
			append(goodLog, logPut("id7", "latest", 400, "MANIFEST_BLOB_UNKNOWN: y")), 1, "1 other manifest PUTs refused with MANIFEST_BLOB_UNKNOWN"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := junit(t, tc.cases...)
			code, out := runSum(t, path, Options{MinTests: 1, MaxList: 10, ExpectFail: re,
				ExpectCode: "MANIFEST_BLOB_UNKNOWN", ServerLog: serverLog(t, tc.log...)})
			first, _, _ := strings.Cut(out, "\n")
			if code != tc.want || !strings.Contains(first, tc.text) {
				t.Errorf("code %d (want %d), first line lacks %q; output:\n%s", code, tc.want, tc.text, out)
			}
			if tc.want == 1 && !strings.Contains(first, "NOT as expected") {
				t.Errorf("first line lacks NOT as expected: %s", first)
			}
		})
	}
}

func TestExpectedSkips(t *testing.T) {
	// The helper's cases all have the reason "msg".
	re := regexp.MustCompile("mount anonymous/.*: msg$")
	for _, tc := range []struct {
		name  string
		cases [][3]string
		o     Options
		want  int
		text  string
	}{
		{"as expected", [][3]string{{"T/mount anonymous/m", "skipped", ""}, {"T/other", "passed", ""}},
			Options{}, 0, "skips as expected (1, all matching /mount anonymous/.*: msg$/)"},
		{"nothing skipped", [][3]string{{"T/mount anonymous/m", "passed", ""}},
			Options{}, 1, "skips NOT as expected (no test was skipped"},
		{"another skip", [][3]string{{"T/mount anonymous/m", "skipped", ""}, {"T/other", "skipped", ""}},
			Options{}, 1, "skips NOT as expected (1 of 2 skipped tests do not match"},
		{"a failure still fails", [][3]string{{"T/mount anonymous/m", "skipped", ""}, {"T/other", "failure", ""}},
			Options{}, 1, "1 failed, 0 skipped: skips as expected"}, // the helper always writes skipped="0"
		{"with expected failures", [][3]string{{"T/mount anonymous/m", "skipped", ""}, {"T/sparse/pull", "failure", exchangeDump("PUT", "http://r/v2/c/one/manifests/x", 400, "id1", blobUnknown)}},
			Options{ExpectFail: regexp.MustCompile("/sparse/"), ExpectCode: "MANIFEST_BLOB_UNKNOWN"}, 0, "as expected (1 failures, all matching /sparse/; 1 manifest PUTs refused, all 400 MANIFEST_BLOB_UNKNOWN in the responses); skips as expected (1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := tc.o
			o.MinTests, o.MaxList, o.ExpectSkip = 1, 10, re
			code, out := runSum(t, junit(t, tc.cases...), o)
			first, _, _ := strings.Cut(out, "\n")
			if code != tc.want || !strings.Contains(first, tc.text) {
				t.Errorf("code %d (want %d), first line lacks %q; output:\n%s", code, tc.want, tc.text, out)
			}
			for _, c := range tc.cases {
				if c[1] == "skipped" && !strings.Contains(out, "SKIP") {
					t.Errorf("skipped test %s not listed:\n%s", c[0], out)
				}
			}
		})
	}
}
