package oci_test

import (
	"bufio"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/skiff-registry/skiff/pkg/oci"
)

// seeds reads testdata/<file>: one seed per line, "#" lines are comments.
func seeds(tb testing.TB, file string) []string {
	tb.Helper()
	f, err := os.Open(filepath.Join("testdata", file))
	if err != nil {
		tb.Fatalf("open seeds: %v", err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if line := sc.Text(); !strings.HasPrefix(line, "#") {
			out = append(out, line)
		}
	}
	if err := sc.Err(); err != nil {
		tb.Fatalf("read seeds: %v", err)
	}
	return out
}

// checkCode fails unless err is an *oci.Error with code want (or err is nil
// and want is ""), and returns the *oci.Error for further checks.
func checkCode(tb testing.TB, err error, want oci.ErrorCode) *oci.Error {
	tb.Helper()
	if want == "" {
		if err != nil {
			tb.Fatalf("unexpected error: %v", err)
		}
		return nil
	}
	var oe *oci.Error
	if !errors.As(err, &oe) {
		tb.Fatalf("error = %v (%T), want *oci.Error with code %s", err, err, want)
	}
	if oe.Code != want {
		tb.Fatalf("code = %s, want %s (error: %v)", oe.Code, want, err)
	}
	if oe.Message == "" {
		tb.Fatalf("error with code %s has an empty message", oe.Code)
	}
	return oe
}
