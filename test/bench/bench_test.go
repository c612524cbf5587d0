package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"sync"
	"testing"

	"github.com/opencontainers/go-digest"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/skiff-registry/skiff/internal/storage"
)

// Every benchmark counts only the client requests it measures: counters
// are reset right before them and read right after, per iteration; setup
// (blobs a manifest names, tags to list) goes through the same API or the
// store, uncounted. The server answers only after its last store call, so
// nothing is counted late.

const (
	kib = 1 << 10
	mib = 1 << 20
	gib = 1 << 30

	smallBlobSize = 1 * kib
	chunkSize     = 4 * mib
)

// BenchmarkBlobPushSmall: a 1 KiB blob pushed as clients do it, POST then
// PUT ?digest= with the body, into a repository the process has recorded
// already (the first push into one records it: one more request, once).
func BenchmarkBlobPushSmall(b *testing.B) {
	forEachBackend(b, func(b *testing.B, e *env) {
		if p, d := newBlob(smallBlobSize); e.pushMonolithic("bench/small", p, d) != nil {
			b.Fatal("first push")
		}
		t := newTally()
		for b.Loop() {
			p, d := newBlob(smallBlobSize)
			e.reset()
			if err := e.pushMonolithic("bench/small", p, d); err != nil {
				b.Fatal(err)
			}
			t.add(e, 0)
		}
		t.report(b, e.kind, "")
	})
}

// BenchmarkBlobPushSingleRequest: a 1 KiB blob in one request, POST
// ?digest= with the body, into a repository the process has recorded
// already (as BenchmarkBlobPushSmall).
func BenchmarkBlobPushSingleRequest(b *testing.B) {
	forEachBackend(b, func(b *testing.B, e *env) {
		if p, d := newBlob(smallBlobSize); e.postBlob("bench/single", p, d) != nil {
			b.Fatal("first push")
		}
		t := newTally()
		for b.Loop() {
			p, d := newBlob(smallBlobSize)
			e.reset()
			if err := e.postBlob("bench/single", p, d); err != nil {
				b.Fatal(err)
			}
			t.add(e, 0)
		}
		t.report(b, e.kind, "")
	})
}

// BenchmarkBlobHead: the HEAD a client sends before pushing a blob, for a
// blob the repository does not have yet (404).
func BenchmarkBlobHead(b *testing.B) {
	forEachBackend(b, func(b *testing.B, e *env) {
		t := newTally()
		for b.Loop() {
			_, d := newBlob(smallBlobSize)
			e.reset()
			if err := e.headBlob("bench/head", d, http.StatusNotFound); err != nil {
				b.Fatal(err)
			}
			t.add(e, 0)
		}
		t.report(b, e.kind, "")
	})
}

// BenchmarkBlobPushChunked64MiB: a 64 MiB blob in 4 MiB chunks: POST, 16
// PATCH with Content-Range, PUT ?digest=. Requests and write amplification.
func BenchmarkBlobPushChunked64MiB(b *testing.B) {
	forEachBackend(b, func(b *testing.B, e *env) {
		const size = 64 * mib
		t := newTally()
		for b.Loop() {
			e.reset()
			if _, err := e.pushChunked("bench/chunked", newSource(), size, chunkSize); err != nil {
				b.Fatal(err)
			}
			t.add(e, size)
		}
		t.report(b, e.kind, "")
	})
}

// BenchmarkBlobPushMonolithic8MiB: an 8 MiB blob as POST then PUT ?digest=
// with the whole body. Requests and write amplification.
func BenchmarkBlobPushMonolithic8MiB(b *testing.B) {
	forEachBackend(b, func(b *testing.B, e *env) {
		const size = 8 * mib
		t := newTally()
		for b.Loop() {
			b.StopTimer()
			p, d := newBlob(size)
			b.StartTimer()
			e.reset()
			if err := e.pushMonolithic("bench/mono", p, d); err != nil {
				b.Fatal(err)
			}
			t.add(e, size)
		}
		t.report(b, e.kind, "")
	})
}

// measurePut measures one manifest PUT (put sends a new, distinct one on
// every call) in both states of the registry's index-policy cache, which
// the PUT path consults:
//
//   - warm (the cache refreshed just before, uncounted): the steady state
//     while an instance serves a manifest PUT at least every
//     policy.DefaultTTL; reported as the benchmark's figure (…/op, timed).
//   - cold (the cache invalidated): the first manifest PUT an instance
//     serves, and the first after every TTL without one; reported with
//     the "cold-" prefix (not timed).
func measurePut(b *testing.B, e *env, repo string, warm, cold *tally, put func() error) {
	b.StopTimer()
	if _, err := e.policies.PolicyFor(b.Context(), repo); err != nil {
		b.Fatalf("warm the policy cache: %v", err)
	}
	b.StartTimer()
	e.reset()
	if err := put(); err != nil {
		b.Fatal(err)
	}
	warm.add(e, 0)

	b.StopTimer()
	e.policies.Invalidate()
	e.reset()
	if err := put(); err != nil {
		b.Fatal(err)
	}
	cold.add(e, 0)
	b.StartTimer()
}

// benchManifestPut measures PUT by tag of an image manifest naming layers
// layers (plus a config), all pushed beforehand, into a repository that
// has a manifest already: the first one into a repository also records
// the repository (one more request, once; BenchmarkManifestPutFirst100Layers).
func benchManifestPut(b *testing.B, layers int) {
	forEachBackend(b, func(b *testing.B, e *env) {
		repo := fmt.Sprintf("bench/manifest%d", layers)
		img, err := e.pushImageBlobs(repo, layers, 512)
		if err != nil {
			b.Fatalf("push layers: %v", err)
		}
		warm, cold := newTally(), newTally()
		i := 0
		put := func() error {
			i++
			return e.putManifest(repo, fmt.Sprintf("v%d", i), v1.MediaTypeImageManifest, img.manifest(fmt.Sprint(i)))
		}
		if err := put(); err != nil {
			b.Fatalf("first manifest: %v", err)
		}
		for b.Loop() {
			measurePut(b, e, repo, warm, cold, put)
		}
		b.ReportMetric(float64(len(img.manifest("0"))), "manifest-bytes")
		warm.report(b, e.kind, "")
		cold.report(b, e.kind, "cold-")
	})
}

// BenchmarkManifestPut10Layers: PUT of an image manifest with 10 layers.
func BenchmarkManifestPut10Layers(b *testing.B) { benchManifestPut(b, 10) }

// BenchmarkManifestPut100Layers: PUT of an image manifest with 100 layers.
func BenchmarkManifestPut100Layers(b *testing.B) { benchManifestPut(b, 100) }

// BenchmarkManifestPutFirst100Layers: the first manifest PUT into a
// repository (its 100 layers pushed beforehand), which also records the
// repository in the catalog; the policy cache warm.
func BenchmarkManifestPutFirst100Layers(b *testing.B) {
	forEachBackend(b, func(b *testing.B, e *env) {
		t := newTally()
		i, size := 0, 0
		for b.Loop() {
			b.StopTimer()
			i++
			repo := fmt.Sprintf("bench/first%d", i)
			img, err := e.pushImageBlobs(repo, 100, 512)
			if err != nil {
				b.Fatalf("push layers: %v", err)
			}
			if _, err := e.policies.PolicyFor(b.Context(), repo); err != nil {
				b.Fatalf("warm the policy cache: %v", err)
			}
			b.StartTimer()
			e.reset()
			body := img.manifest("0")
			if err := e.putManifest(repo, "v1", v1.MediaTypeImageManifest, body); err != nil {
				b.Fatal(err)
			}
			t.add(e, 0)
			size = len(body)
		}
		b.ReportMetric(float64(size), "manifest-bytes")
		t.report(b, e.kind, "")
	})
}

// BenchmarkIndexPut20Children: PUT by tag of an image index naming 20
// platform manifests, all pushed beforehand.
func BenchmarkIndexPut20Children(b *testing.B) {
	forEachBackend(b, func(b *testing.B, e *env) {
		const repo, n = "bench/index", 20
		img, err := e.pushImageBlobs(repo, 1, 512)
		if err != nil {
			b.Fatalf("push blobs: %v", err)
		}
		var children []v1.Descriptor
		for c := range n {
			body := img.manifest(fmt.Sprintf("child-%d", c))
			d := digest.FromBytes(body)
			if err := e.putManifest(repo, d.String(), v1.MediaTypeImageManifest, body); err != nil {
				b.Fatalf("push child %d: %v", c, err)
			}
			children = append(children, v1.Descriptor{
				MediaType: v1.MediaTypeImageManifest, Digest: d, Size: int64(len(body)),
				Platform: &v1.Platform{OS: "linux", Architecture: "amd64", Variant: fmt.Sprintf("v%d", c+1)},
			})
		}
		warm, cold := newTally(), newTally()
		i := 0
		put := func() error {
			i++
			return e.putManifest(repo, fmt.Sprintf("v%d", i), v1.MediaTypeImageIndex, index(children, fmt.Sprint(i)))
		}
		for b.Loop() {
			measurePut(b, e, repo, warm, cold, put)
		}
		warm.report(b, e.kind, "")
		cold.report(b, e.kind, "cold-")
	})
}

// BenchmarkTagList1000: GET tags/list of a repository with 1,000 tags,
// with the default page size, following Link through every page.
func BenchmarkTagList1000(b *testing.B) {
	forEachBackend(b, func(b *testing.B, e *env) {
		const repo, n = "bench/tags", 1000
		img, err := e.pushImageBlobs(repo, 1, 512)
		if err != nil {
			b.Fatalf("push blobs: %v", err)
		}
		body := img.manifest("tagged")
		d := digest.FromBytes(body)
		if err := e.putManifest(repo, d.String(), v1.MediaTypeImageManifest, body); err != nil {
			b.Fatal(err)
		}
		if err := putTags(b.Context(), e.meta, repo, d, n); err != nil {
			b.Fatalf("tag: %v", err)
		}
		t := newTally()
		pages := 0
		for b.Loop() {
			e.reset()
			got, p, err := e.listTags(repo)
			if err != nil {
				b.Fatal(err)
			}
			if got != n {
				b.Fatalf("listed %d tags, want %d", got, n)
			}
			pages = p
			t.add(e, 0)
		}
		b.ReportMetric(float64(pages), "pages")
		t.report(b, e.kind, "")
	})
}

// putTags writes n tags pointing at d straight into the metadata store
// (setup), a few at a time.
func putTags(ctx context.Context, meta storage.MetaStore, repo string, d digest.Digest, n int) error {
	const workers = 8
	errs := make(chan error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := w; i < n; i += workers {
				if err := meta.PutTag(ctx, repo, storage.Tag{Name: fmt.Sprintf("t%04d", i), Digest: d}); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	return <-errs
}

// BenchmarkManifestPutAbsentFlood: PUT of an image manifest naming 9,999
// layers none of which exist (just under oci.MaxDescriptors), refused with
// 400: the answer lists the first 100 errors and one that says how many
// more, and lookups stop once 100 are found. Reports the error body's
// size (error-bytes) besides the requests.
func BenchmarkManifestPutAbsentFlood(b *testing.B) {
	forEachBackend(b, func(b *testing.B, e *env) {
		const repo, n = "bench/flood", 9999
		img, err := e.pushImageBlobs(repo, 0, 0)
		if err != nil {
			b.Fatalf("push config: %v", err)
		}
		for i := range n {
			img.layers = append(img.layers, v1.Descriptor{MediaType: v1.MediaTypeImageLayerGzip, Digest: digest.FromString(fmt.Sprint("absent ", i)), Size: 10})
		}
		body := img.manifest("flood")
		t := newTally()
		var errBytes int
		for b.Loop() {
			e.reset()
			resp, err := e.client.Do(mustRequest(b, http.MethodPut, e.base+"/v2/"+repo+"/manifests/flood", v1.MediaTypeImageManifest, body))
			if err != nil {
				b.Fatal(err)
			}
			msg, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusBadRequest {
				b.Fatalf("PUT: %d %.300s", resp.StatusCode, msg)
			}
			errBytes = len(msg)
			t.add(e, 0)
		}
		b.ReportMetric(float64(errBytes), "error-bytes")
		b.ReportMetric(float64(len(body)), "manifest-bytes")
		t.report(b, e.kind, "")
	})
}

func mustRequest(b *testing.B, method, url, contentType string, body []byte) *http.Request {
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		b.Fatal(err)
	}
	req.Header.Set("Content-Type", contentType)
	return req
}
