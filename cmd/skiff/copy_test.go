package main

import (
	"bufio"
	"encoding/json"
	"io"
	"log"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// ggcrUpstream is go-containerregistry's registry on an httptest server
// with one image, app:v1 (three layers).
func ggcrUpstream(t *testing.T) string {
	t.Helper()
	ts := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(ts.Close)
	host := strings.TrimPrefix(ts.URL, "http://")
	img, err := random.Image(2048, 3)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := name.ParseReference(host+"/app:v1", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img); err != nil {
		t.Fatal(err)
	}
	return host
}

// jsonLines decodes the JSON lines skiff copy prints off a terminal.
func jsonLines(t *testing.T, out string) []map[string]any {
	t.Helper()
	var lines []map[string]any
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("not a JSON line: %q: %v", sc.Text(), err)
		}
		lines = append(lines, m)
	}
	return lines
}

// TestCopyCLI: skiff copy prints one JSON line per event and a summary
// off a terminal; run again it copies nothing and says so.
func TestCopyCLI(t *testing.T) {
	t.Parallel()
	up := ggcrUpstream(t)
	dst := strings.TrimPrefix(newTestServer(t, false).URL, "http://")
	out, errOut, err := cli(t, env(), "copy", "--insecure", up+"/app:v1", dst+"/mirror/app")
	if err != nil {
		t.Fatalf("skiff copy: %v\n%s", err, errOut)
	}
	lines := jsonLines(t, out)
	kinds := map[string]int{}
	for _, l := range lines {
		kinds[l["event"].(string)]++
	}
	if kinds["image"] != 1 || kinds["blob-copied"] != 4 || kinds["manifest-copied"] != 1 || kinds["tag"] != 1 || kinds["image-done"] != 1 || kinds["summary"] != 1 {
		t.Errorf("events %v, want an image, 4 blobs, a manifest, a tag, done and the summary:\n%s", kinds, out)
	}
	if kinds["blob-progress"] != 0 {
		t.Errorf("%d progress lines off a terminal, want none", kinds["blob-progress"])
	}
	sum := lines[len(lines)-1]
	if sum["event"] != "summary" || sum["blobsCopied"] != float64(4) || sum["images"] != float64(1) {
		t.Errorf("last line %v, want the summary of 4 blobs", sum)
	}

	out, _, err = cli(t, env(), "copy", "--insecure", up+"/app:v1", dst+"/mirror/app")
	if err != nil {
		t.Fatal(err)
	}
	lines = jsonLines(t, out)
	sum = lines[len(lines)-1]
	if sum["blobsCopied"] != float64(0) || sum["manifestsCopied"] != float64(0) || sum["manifestsSkipped"] != float64(1) {
		t.Errorf("second run's summary %v, want nothing copied", sum)
	}
	if done := lines[len(lines)-2]; done["event"] != "image-done" || !strings.Contains(done["note"].(string), "nothing to copy") {
		t.Errorf("second run: %v, want image-done saying nothing to copy", done)
	}
}

// TestCopyCLIMistakes: bad flags and failed images give an error naming
// what was wrong; a failed image is named with its reason.
func TestCopyCLIMistakes(t *testing.T) {
	t.Parallel()
	up := ggcrUpstream(t)
	dst := strings.TrimPrefix(newTestServer(t, false).URL, "http://")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"copy", "--platforms", "linux/amd46", up + "/app:v1", dst + "/m/a"}, `--platforms: platform "linux/amd46": unknown architecture "amd46"`},
		{[]string{"copy", "--platforms", "linux", up + "/app:v1", dst + "/m/a"}, `--platforms: platform "linux" is not os/arch`},
		{[]string{"copy", "--tags", "v[", up + "/app", dst + "/m/a"}, `--tags: "v[" is not a regular expression`},
		{[]string{"copy", "--jobs", "0", up + "/app:v1", dst + "/m/a"}, "--jobs 0: want 1 to 64"},
		{[]string{"copy", up + "/app:v1"}, "skiff copy takes SRC and DST, got 1"},
		{[]string{"copy", "--insecure", up + "/app:v2", dst + "/m/a"}, "1 image(s) failed:\n  " + up + "/app:v2: read the source: "},
		{[]string{"copy", "--insecure", "127.0.0.1:1/app:v1", dst + "/m/a"}, "127.0.0.1:1/app:v1: read the source: "},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			t.Parallel()
			_, _, err := cli(t, env(), tc.args...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one saying %q", err, tc.want)
			}
		})
	}
}
