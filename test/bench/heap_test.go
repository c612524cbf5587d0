package bench

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
)

// Heap metrics sampled while a blob is pushed. The client runs in the same
// process, so the figures include it; it holds no blob bytes (bodies are
// generated as the transport reads them), only its transport buffers.
const (
	// metricHeapObjects is the heap memory occupied by objects, live or
	// not yet swept: what the heap really holds between collections.
	metricHeapObjects = "/memory/classes/heap/objects:bytes"
	// metricHeapLive is the heap marked live by the last collection.
	metricHeapLive = "/gc/heap/live:bytes"
	// metricHeapGoal is the heap size the collector aims to finish its
	// cycle below: it changes once per cycle, so sampling cannot miss it,
	// while a short spike of heap objects between two samples can be.
	metricHeapGoal = "/gc/heap/goal:bytes"
	sampleEvery    = 2 * time.Millisecond
)

// heapSampler records the peaks of the heap metrics until stop.
type heapSampler struct {
	stopc   chan struct{}
	wg      sync.WaitGroup
	peak    heapStats
	samples int
}

// heapStats are heap metrics in bytes: one sample, or the peaks of each.
type heapStats struct{ objects, live, goal uint64 }

func (h heapStats) max(o heapStats) heapStats {
	return heapStats{max(h.objects, o.objects), max(h.live, o.live), max(h.goal, o.goal)}
}

func readHeap(s []metrics.Sample) heapStats {
	metrics.Read(s)
	return heapStats{s[0].Value.Uint64(), s[1].Value.Uint64(), s[2].Value.Uint64()}
}

func heapSamples() []metrics.Sample {
	return []metrics.Sample{{Name: metricHeapObjects}, {Name: metricHeapLive}, {Name: metricHeapGoal}}
}

func startHeapSampler() *heapSampler {
	h := &heapSampler{stopc: make(chan struct{})}
	h.wg.Go(func() {
		s := heapSamples()
		tick := time.NewTicker(sampleEvery)
		defer tick.Stop()
		for {
			h.peak = h.peak.max(readHeap(s))
			h.samples++
			select {
			case <-h.stopc:
				return
			case <-tick.C:
			}
		}
	})
	return h
}

// stop ends sampling and returns the peaks and the number of samples.
func (h *heapSampler) stop() (heapStats, int) {
	close(h.stopc)
	h.wg.Wait()
	return h.peak, h.samples
}

// benchPeakHeap pushes a 1 GiB blob through the API, generated on the fly,
// either in 4 MiB chunks with Content-Range or as one streaming PATCH, and
// reports the peak heap during the push.
func benchPeakHeap(b *testing.B, stream bool) {
	forEachBackend(b, func(b *testing.B, e *env) {
		const size, repo = 1 * gib, "bench/heap"
		t := newTally()
		var peak, base heapStats
		var samples int
		for b.Loop() {
			b.StopTimer()
			runtime.GC()
			base = base.max(readHeap(heapSamples()))
			b.StartTimer()

			e.reset()
			h := startHeapSampler()
			var d digest.Digest
			var err error
			if stream {
				d, err = e.pushStream(repo, newSource(), size)
			} else {
				d, err = e.pushChunked(repo, newSource(), size, chunkSize)
			}
			p, n := h.stop()
			if err != nil {
				b.Fatal(err)
			}
			t.add(e, size)
			peak, samples = peak.max(p), samples+n

			b.StopTimer()
			if err := e.dropBlob(b.Context(), repo, d); err != nil {
				b.Fatalf("delete the pushed blob: %v", err)
			}
			b.StartTimer()
		}
		b.ReportMetric(float64(peak.objects)/mib, "peak-heap-MiB")
		b.ReportMetric(float64(peak.live)/mib, "peak-live-heap-MiB")
		b.ReportMetric(float64(peak.goal)/mib, "peak-heap-goal-MiB")
		b.ReportMetric(float64(base.objects)/mib, "base-heap-MiB")
		b.ReportMetric(float64(samples), "heap-samples")
		gogc := debug.SetGCPercent(100) // read the setting (GOGC) back
		debug.SetGCPercent(gogc)
		b.ReportMetric(float64(gogc), "gogc")
		t.report(b, e.kind, "")
	})
}

// BenchmarkPeakHeapChunked1GiB: peak heap while a 1 GiB blob is pushed in
// 4 MiB chunks (POST, 256 PATCH with Content-Range, PUT ?digest=).
func BenchmarkPeakHeapChunked1GiB(b *testing.B) { benchPeakHeap(b, false) }

// BenchmarkPeakHeapStream1GiB: peak heap while a 1 GiB blob is pushed as
// one streaming PATCH without Content-Range (how crane and skopeo push).
func BenchmarkPeakHeapStream1GiB(b *testing.B) { benchPeakHeap(b, true) }
