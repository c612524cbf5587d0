package oci_test

import (
	"os/exec"
	"strings"
	"testing"
)

// allowedDeps are the module paths of the only non-standard-library packages pkg/oci may depend
// on, directly or not. pkg/oci is Skiff's public API and is imported by the
// CLI and every Lambda: an AWS SDK or storage import here would drag into
// all of them, and would mean domain rules had leaked into the wrong layer.
var allowedDeps = []string{
	"github.com/skiff-registry/skiff/pkg/oci",
	"github.com/opencontainers/go-digest",
	"github.com/opencontainers/image-spec",
}

// forbiddenStd are standard packages that signal HTTP-server code. net/http
// itself is allowed for its status constants.
var forbiddenStd = []string{"net/http/httptest", "net/http/httputil", "net/http/pprof", "net/http/cgi", "net/http/fcgi"}

func TestDependencies(t *testing.T) {
	t.Parallel()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("DEPCHECK SKIPPED: the go command is not on PATH: %v", err)
	}
	// -deps lists the transitive closure of the non-test build.
	out, err := exec.Command(goBin, "list", "-deps", "-f", "{{if .Standard}}std {{end}}{{.ImportPath}}", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if path, ok := strings.CutPrefix(line, "std "); ok {
			for _, bad := range forbiddenStd {
				if path == bad {
					t.Errorf("pkg/oci depends on %s: keep HTTP-server code out of the domain package", path)
				}
			}
			continue
		}
		if !allowed(line) {
			t.Errorf("pkg/oci depends on %s: only the standard library, go-digest and image-spec are allowed", line)
		}
	}
}

// allowed reports whether path is an allowed module path or a package in it.
func allowed(path string) bool {
	for _, a := range allowedDeps {
		if path == a || strings.HasPrefix(path, a+"/") {
			return true
		}
	}
	return false
}
