// Command junitsum summarises the junit.xml written by the OCI conformance
// suite (opencontainers/distribution-spec/conformance): one line with the
// suite's own counts, then the name and message of every failed test case.
// It exits 1 when a test failed or errored, or when fewer than -min tests ran
// (a suite that stopped early or was misconfigured must not look green).
//
// Counts come from the <testsuites> attributes, which the suite computes over
// its whole result tree, so they match the numbers it prints itself.
package main

import (
	"encoding/xml"
	"flag"
	"fmt"
	"io"
	"os"
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
	SystemOut string  `xml:"system-out"`
}

type result struct {
	Message string `xml:"message,attr"`
	Data    string `xml:",chardata"`
}

func main() {
	minTests := flag.Int("min", 1, "fail when the suite reports fewer tests than this")
	maxList := flag.Int("list", 400, "list at most this many failed tests")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: junitsum [-min N] [-list N] junit.xml\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() != 1 {
		flag.Usage()
		os.Exit(2)
	}
	code, err := run(os.Stdout, flag.Arg(0), *minTests, *maxList)
	if err != nil {
		fmt.Fprintf(os.Stderr, "junitsum: %v\n", err)
		os.Exit(2)
	}
	os.Exit(code)
}

func run(w io.Writer, path string, minTests, maxList int) (int, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	var ts testSuites
	if err := xml.Unmarshal(raw, &ts); err != nil {
		return 0, fmt.Errorf("parse %s: %w", path, err)
	}
	failed := ts.Failures + ts.Errors
	fmt.Fprintf(w, "conformance: %d tests, %d failed, %d skipped\n", ts.Tests, failed, ts.Skipped)

	listed := 0
	for _, s := range ts.Suites {
		for _, c := range s.Cases {
			if !c.failed() {
				continue
			}
			listed++
			if listed > maxList {
				continue
			}
			fmt.Fprintf(w, "FAIL %s\n", c.Name)
			for _, line := range strings.Split(truncate(c.message(), maxMessage), "\n") {
				fmt.Fprintf(w, "    %s\n", line)
			}
		}
	}
	if listed > maxList {
		fmt.Fprintf(w, "... and %d more failed test cases (see junit.xml)\n", listed-maxList)
	}

	code := 0
	if failed > 0 {
		code = 1
	}
	if ts.Tests < minTests {
		fmt.Fprintf(w, "conformance: only %d tests ran, expected at least %d: suite misconfigured or stopped early\n", ts.Tests, minTests)
		code = 1
	}
	return code, nil
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
