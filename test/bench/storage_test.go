package bench

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	v1 "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/skiff-registry/skiff/internal/gc"
	"github.com/skiff-registry/skiff/internal/storage"
)

// storedBytes sums the objects under blobs/ (uncounted).
func (e *env) storedBytes(b *testing.B) int64 {
	b.Helper()
	objs, err := e.blobs.List(context.Background(), "blobs/", storage.Page{})
	if err != nil {
		b.Fatal(err)
	}
	var n int64
	for _, o := range objs {
		n += o.Size
	}
	return n
}

// BenchmarkStorageAmplification: one 64 MiB layer pushed to 20
// repositories by each upload style in turn (a new layer per style):
// object bytes stored per distinct byte pushed, after the pushes. 1.0 is
// one copy per digest.
func BenchmarkStorageAmplification(b *testing.B) {
	forEachBackend(b, func(b *testing.B, e *env) {
		const size, repos = 64 * mib, 20
		amp := map[string]float64{}
		for b.Loop() {
			for _, style := range []string{"streaming", "chunked", "monolithic"} {
				b.StopTimer()
				p, d := newBlob(size)
				before := e.storedBytes(b)
				b.StartTimer()
				for i := range repos {
					repo := fmt.Sprintf("bench/amp-%s-%d", style, i)
					var err error
					switch style {
					case "streaming":
						_, err = e.pushStream(repo, bytes.NewReader(p), size)
					case "chunked":
						_, err = e.pushChunked(repo, bytes.NewReader(p), size, chunkSize)
					case "monolithic":
						err = e.pushMonolithic(repo, p, d)
					}
					if err != nil {
						b.Fatalf("%s push %d: %v", style, i, err)
					}
				}
				b.StopTimer()
				amp[style] += float64(e.storedBytes(b)-before) / size
				b.StartTimer()
			}
		}
		for style, a := range amp {
			b.ReportMetric(a/float64(b.N), "amp-"+style)
		}
	})
}

// BenchmarkGCPass: one collection pass over 8 repositories of 50 images
// each (a config of their own, two layers shared in the repository), 40
// blobs no manifest names and 40 links that go (their repositories' only
// copies): requests per manifest and per link the pass scans, and the
// pass's wall time.
func BenchmarkGCPass(b *testing.B) {
	forEachBackend(b, func(b *testing.B, e *env) {
		const repos, images, junk = 8, 50, 5
		manifests, links := 0, 0
		setup := func() {
			for r := range repos {
				repo := fmt.Sprintf("bench/gc-%d", r)
				shared, err := e.pushImageBlobs(repo, 2, 2048)
				if err != nil {
					b.Fatal(err)
				}
				links += 2
				for i := range images {
					img, err := e.pushImageBlobs(repo, 0, 0)
					if err != nil {
						b.Fatal(err)
					}
					img.layers = shared.layers
					if err := e.putManifest(repo, fmt.Sprintf("v%d", i), v1.MediaTypeImageManifest, img.manifest(fmt.Sprint(i))); err != nil {
						b.Fatal(err)
					}
					manifests++
					links++
				}
				for range junk {
					p, d := newBlob(1024)
					if err := e.postBlob(repo, p, d); err != nil {
						b.Fatal(err)
					}
					links++
				}
			}
		}
		// The collector's calls go through the counted stores.
		c, err := gc.New(wrapBlobs(e.blobs, e.ports), countingMeta{MetaStore: e.meta, c: e.ports}, gc.Options{Grace: time.Nanosecond, Window: time.Millisecond})
		if err != nil {
			b.Fatal(err)
		}
		t := newTally()
		var perManifest, perLink, deleted float64
		for b.Loop() {
			b.StopTimer()
			setup() // adds to what earlier iterations left
			time.Sleep(5 * time.Millisecond)
			e.reset()
			b.StartTimer()
			rep, err := c.Run(context.Background())
			if err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			before := t.total()
			t.add(e, 0)
			req := float64(t.total() - before)
			perManifest += req / float64(manifests)
			perLink += req / float64(rep.Links)
			deleted += float64(rep.LinksDeleted)
			links -= rep.LinksDeleted
			b.StartTimer()
		}
		n := float64(b.N)
		b.ReportMetric(float64(manifests), "manifests")
		b.ReportMetric(float64(links), "links-kept")
		b.ReportMetric(deleted/n, "links-deleted/op")
		b.ReportMetric(perManifest/n, "req/manifest")
		b.ReportMetric(perLink/n, "req/link")
		t.report(b, e.kind, "")
	})
}
