package server_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/opencontainers/go-digest"

	"github.com/skiff-registry/skiff/internal/backend"
	"github.com/skiff-registry/skiff/internal/config"
	"github.com/skiff-registry/skiff/internal/server"
	"github.com/skiff-registry/skiff/internal/storage"
	"github.com/skiff-registry/skiff/internal/testenv"
	"github.com/skiff-registry/skiff/pkg/oci"
)

// soakDuration is how long TestSoak pushes: SKIFF_SOAK_DURATION (make
// test sets 2m), else 15s.
func soakDuration(t *testing.T) time.Duration {
	if s := os.Getenv("SKIFF_SOAK_DURATION"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil {
			t.Fatalf("SKIFF_SOAK_DURATION: %v", err)
		}
		return d
	}
	return 15 * time.Second
}

// TestSoak pushes, pulls, moves tags, deletes and copies images with
// go-containerregistry (crane's library) while the collector runs pass
// after pass with a grace period of seconds, on both backends, with a
// retention policy in force on one repository (the last copy tag kept,
// untagged manifests deleted once past grace). No client may see a
// failure; at the end every tag reads back whole, and once the grace
// period is over a last pass leaves exactly the blobs manifests name, one
// copy each.
func TestSoak(t *testing.T) {
	kinds := []config.Backend{config.BackendLocal}
	if testenv.HaveAWS(t) {
		kinds = append(kinds, config.BackendAWS)
	}
	for _, kind := range kinds {
		t.Run(string(kind), func(t *testing.T) {
			t.Parallel()
			soak(t, kind, soakDuration(t))
		})
	}
}

const (
	soakGrace  = 4 * time.Second
	soakWindow = time.Second
)

// soakRetention is in force on soak/c: its stable tags move, leaving
// untagged manifests, and copies land on copy-0..2.
var soakRetention = oci.Retention{Prefix: "soak/c", UntaggedAfter: oci.Duration(soakGrace),
	KeepTags: []oci.TagKeep{{Pattern: `copy-\d+`, Last: 1}}}

func soak(t *testing.T, kind config.Backend, dur time.Duration) {
	var cfg config.Config
	host, stores := ggcrServerWith(t, kind, func(c *config.Config) {
		c.GCGrace, c.LinkWindow = soakGrace, soakWindow
		c.DefaultRetention = []oci.Retention{soakRetention}
		cfg = *c
	})
	collector, err := server.Collector(cfg, stores, slog.New(slog.DiscardHandler), false)
	if err != nil {
		t.Fatal(err)
	}

	ref := func(s string) name.Reference {
		r, err := name.ParseReference(host+"/"+s, name.Insecure)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	// Base layers every image shares: two above the registry's part size
	// (multipart uploads), two small.
	var bases []v1.Layer
	for i, size := range []int{9 << 20, 6 << 20, 300 << 10, 40 << 10} {
		b := make([]byte, size)
		_, _ = rand.NewChaCha8([32]byte{byte(i), 7}).Read(b)
		bases = append(bases, static.NewLayer(b, types.OCILayer))
	}
	repos := []string{"soak/a", "soak/b", "soak/c", "soak/d", "soak/revive-0", "soak/revive-1"}
	var (
		stats    struct{ pushes, pulls, deletes, copies, passes, revivals, tagsExpired, manifestsExpired atomic.Int64 }
		reclaim  atomic.Int64
		failures atomic.Int64
	)
	fail := func(format string, args ...any) {
		failures.Add(1)
		t.Errorf(format, args...)
	}
	ctx, stop := context.WithTimeout(context.Background(), dur)
	defer stop()
	opts := []remote.Option{remote.WithContext(context.Background())}
	image := func(rng *rand.Rand) v1.Image {
		own := make([]byte, 100<<10+rng.IntN(400<<10))
		for i := range own {
			own[i] = byte(rng.Uint32())
		}
		img, err := mutate.AppendLayers(empty.Image, bases[rng.IntN(2)], bases[2+rng.IntN(2)], static.NewLayer(own, types.OCILayer))
		if err != nil {
			t.Fatal(err)
		}
		img, err = mutate.Config(img, v1.Config{Labels: map[string]string{"n": fmt.Sprint(rng.Uint64())}})
		if err != nil {
			t.Fatal(err)
		}
		return img
	}
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 99))
			for i := 0; ctx.Err() == nil; i++ {
				repo := repos[rng.IntN(len(repos))]
				switch op := rng.IntN(10); {
				case op < 5: // move a stable tag (the old manifest stays, untagged)
					if err := remote.Write(ref(fmt.Sprintf("%s:stable-%d", repo, rng.IntN(3))), image(rng), opts...); err != nil {
						fail("push to %s: %v", repo, err)
					}
					stats.pushes.Add(1)
				case op < 8: // push a scratch image, then delete it by digest or by tag
					img := image(rng)
					tag := ref(fmt.Sprintf("%s:scratch-%d-%d", repo, w, i))
					if err := remote.Write(tag, img, opts...); err != nil {
						fail("push to %s: %v", repo, err)
						continue
					}
					stats.pushes.Add(1)
					target := tag
					if rng.IntN(2) == 0 {
						d, _ := img.Digest()
						target = ref(repo + "@" + d.String())
					}
					if err := remote.Delete(target, opts...); err != nil {
						fail("delete %s: %v", target, err)
					}
					stats.deletes.Add(1)
				default: // copy a stable image to another repository (mounts)
					from := ref(fmt.Sprintf("%s:stable-%d", repo, rng.IntN(3)))
					img, err := remote.Image(from, opts...)
					if isUnknown(err) {
						continue // not pushed yet
					}
					if err != nil {
						fail("pull %s: %v", from, err)
						continue
					}
					to := ref(fmt.Sprintf("%s:copy-%d", repos[rng.IntN(len(repos))], rng.IntN(3)))
					if err := remote.Write(to, img, opts...); err != nil {
						fail("copy %s to %s: %v", from, to, err)
					}
					stats.copies.Add(1)
				}
			}
		})
	}
	// The gap Quay's collector lost pushes in: a layer that nothing has
	// named for longer than the grace period (its image was deleted) is
	// pushed again into the same repository. The client finds it present
	// (HEAD) and only PUTs the manifest, while passes run every 0.3 s.
	wg.Go(func() {
		rng := rand.New(rand.NewPCG(42, 42))
		for i := 0; ctx.Err() == nil; i++ {
			repo := fmt.Sprintf("soak/revive-%d", i%2)
			first := image(rng)
			layers, _ := first.Layers()
			if err := remote.Write(ref(fmt.Sprintf("%s:first-%d", repo, i)), first, opts...); err != nil {
				fail("push to %s: %v", repo, err)
				continue
			}
			d, _ := first.Digest()
			if err := remote.Delete(ref(repo+"@"+d.String()), opts...); err != nil {
				fail("delete %s@%s: %v", repo, d, err)
				continue
			}
			// Past grace, and some passes later: the layer is a candidate.
			select {
			case <-ctx.Done():
				return
			case <-time.After(soakGrace + time.Duration(rng.IntN(int(2*soakWindow)))):
			}
			again, err := mutate.AppendLayers(empty.Image, layers[len(layers)-1])
			if err != nil {
				t.Fatal(err)
			}
			if err := remote.Write(ref(fmt.Sprintf("%s:again-%d", repo, i)), again, opts...); err != nil {
				fail("push of an unnamed old layer again to %s: %v", repo, err)
				continue
			}
			if err := pullWhole(ref(fmt.Sprintf("%s:again-%d", repo, i)), opts); err != nil {
				fail("pull of %s:again-%d: %v", repo, i, err)
			}
			stats.revivals.Add(1)
		}
	})
	for p := range 2 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(p), 5))
			for ctx.Err() == nil {
				r := ref(fmt.Sprintf("%s:stable-%d", repos[rng.IntN(len(repos))], rng.IntN(3)))
				err := pullWhole(r, opts)
				if isUnknown(err) {
					time.Sleep(50 * time.Millisecond)
					continue
				}
				if err != nil {
					fail("pull %s: %v", r, err)
				}
				stats.pulls.Add(1)
			}
		})
	}
	wg.Go(func() {
		for ctx.Err() == nil {
			rep, err := collector.Run(context.Background())
			if err != nil {
				fail("collection: %v", err)
			}
			reclaim.Add(rep.BytesReclaimed)
			stats.passes.Add(1)
			stats.tagsExpired.Add(int64(rep.TagsDeleted))
			stats.manifestsExpired.Add(int64(rep.ManifestsDeleted))
			time.Sleep(300 * time.Millisecond)
		}
	})
	wg.Wait()

	// Every tag of every repository reads back whole.
	tags := 0
	for _, repo := range repos {
		ts, err := remote.List(ref(repo+":x").Context(), opts...)
		if err != nil {
			t.Fatalf("list tags of %s: %v", repo, err)
		}
		for _, tag := range ts {
			tags++
			if err := pullWhole(ref(repo+":"+tag), opts); err != nil {
				fail("after the soak, %s:%s: %v", repo, tag, err)
			}
		}
	}
	// Past grace, a last pass leaves only what manifests name.
	time.Sleep(soakGrace + 2*soakWindow)
	for range 2 {
		rep, err := collector.Run(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		reclaim.Add(rep.BytesReclaimed)
	}
	want := namedBytes(t, stores)
	got := storedObjects(t, stores.Blobs)
	t.Logf("%s, %s: %d pushes, %d pulls, %d deletes, %d copies, %d pushes of an old unnamed layer again, %d collections (%d bytes reclaimed; the retention policy deleted %d tags and %d manifests); %d tags read back; %d bytes stored, %d named by manifests; %d failures",
		kind, dur, stats.pushes.Load(), stats.pulls.Load(), stats.deletes.Load(), stats.copies.Load(), stats.revivals.Load(), stats.passes.Load(), reclaim.Load(),
		stats.tagsExpired.Load(), stats.manifestsExpired.Load(), tags, got, want, failures.Load())
	if got != want {
		t.Errorf("%d bytes stored after the last pass, but manifests name %d (amplification %.3f)", got, want, float64(got)/float64(want))
	}
	// The unit step's short run under -race does little; the soak step's
	// two minutes must do something worth counting.
	if dur >= time.Minute && (stats.passes.Load() < 5 || stats.pushes.Load() < 20 || reclaim.Load() == 0 || stats.manifestsExpired.Load() == 0) {
		t.Errorf("too little happened to count: %d passes, %d pushes, %d bytes reclaimed, %d manifests a retention policy deleted",
			stats.passes.Load(), stats.pushes.Load(), reclaim.Load(), stats.manifestsExpired.Load())
	}
}

// isUnknown reports a 404 for a manifest or tag not there (yet).
func isUnknown(err error) bool {
	var te *transport.Error
	return errors.As(err, &te) && te.StatusCode == 404
}

// pullWhole reads an image's manifest, config and every layer, checking
// digests.
func pullWhole(r name.Reference, opts []remote.Option) error {
	img, err := remote.Image(r, opts...)
	if err != nil {
		return err
	}
	if _, err := img.RawConfigFile(); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	layers, err := img.Layers()
	if err != nil {
		return err
	}
	for _, l := range layers {
		rc, err := l.Compressed() // verifies the digest as it reads
		if err != nil {
			return err
		}
		_, err = io.Copy(io.Discard, rc)
		rc.Close()
		if err != nil {
			return fmt.Errorf("layer: %w", err)
		}
	}
	return nil
}

// namedBytes sums the sizes of the distinct blobs the stored manifests
// name, over every repository.
func namedBytes(t *testing.T, st backend.Stores) int64 {
	t.Helper()
	ctx := context.Background()
	named := map[digest.Digest]bool{}
	repos, err := st.Meta.ListRepositories(ctx, storage.Page{})
	if err != nil {
		t.Fatal(err)
	}
	for _, repo := range repos {
		ms, err := st.Meta.ListManifests(ctx, repo, storage.Page{})
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range ms {
			for _, d := range m.Refs {
				named[d] = true
			}
		}
	}
	var n int64
	for d := range named {
		c, err := st.Meta.GetContent(ctx, d)
		if err != nil {
			t.Fatalf("content of %s: %v", d, err)
		}
		n += c.Size
	}
	return n
}

func storedObjects(t *testing.T, bs storage.BlobStore) int64 {
	t.Helper()
	objs, err := bs.List(context.Background(), "blobs/", storage.Page{})
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	for _, o := range objs {
		n += o.Size
	}
	return n
}
