package gc_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/skiff-registry/skiff/internal/gc"
	"github.com/skiff-registry/skiff/internal/registry"
	"github.com/skiff-registry/skiff/internal/storage"
	"github.com/skiff-registry/skiff/internal/teststores"
	"github.com/skiff-registry/skiff/pkg/oci"
)

const (
	part    = 64 << 10
	minPart = 40 << 10
	// A window long enough for a loaded stand-in's writes, so tests don't
	// depend on the retry after a closed window.
	grace  = 1500 * time.Millisecond
	window = 300 * time.Millisecond
)

// fixture is a registry and a collector over one backend's stores.
type fixture struct {
	t   *testing.T
	s   teststores.Stores
	reg *registry.Registry
	// images are the tags that must keep resolving, with every blob.
	images []string
}

func newFixture(t *testing.T, s teststores.Stores) *fixture {
	t.Helper()
	reg, err := registry.New(s.Blobs, s.Meta, registry.WithPartSize(part, minPart), registry.WithLinkWindow(window), registry.WithGrace(grace))
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{t: t, s: s, reg: reg}
}

func (f *fixture) collector(o gc.Options) *gc.Collector {
	f.t.Helper()
	o.Grace, o.Window = grace, window
	c, err := gc.New(f.s.Blobs, f.s.Meta, o)
	if err != nil {
		f.t.Fatal(err)
	}
	return c
}

func (f *fixture) collect(o gc.Options) gc.Report {
	f.t.Helper()
	rep, err := f.collector(o).Run(context.Background())
	if err != nil {
		f.t.Fatal(err)
	}
	return rep
}

// blob pushes body into repo; sizes above a part go through a session.
func (f *fixture) blob(repo string, body []byte) digest.Digest {
	f.t.Helper()
	ctx := context.Background()
	d := digest.FromBytes(body)
	if len(body) < part {
		if _, err := f.reg.PutBlob(ctx, repo, d, int64(len(body)), bytes.NewReader(body)); err != nil {
			f.t.Fatal(err)
		}
		return d
	}
	u, _ := f.reg.StartUpload(ctx, repo)
	if _, err := f.reg.WriteUpload(ctx, repo, u.ID, -1, bytes.NewReader(body)); err != nil {
		f.t.Fatal(err)
	}
	if _, err := f.reg.CommitUpload(ctx, repo, u.ID, d, -1, 0, nil); err != nil {
		f.t.Fatal(err)
	}
	return d
}

func body(name string, n int) []byte {
	return bytes.Repeat([]byte(name+" "), n/(len(name)+1)+1)[:n]
}

// manifest is an image manifest over config and layers.
func manifest(config []byte, layers ...[]byte) []byte {
	desc := func(mt string, b []byte) map[string]any {
		return map[string]any{"mediaType": mt, "digest": digest.FromBytes(b), "size": len(b)}
	}
	var ls []any
	for _, l := range layers {
		ls = append(ls, desc("application/vnd.oci.image.layer.v1.tar", l))
	}
	b, _ := json.Marshal(map[string]any{
		"schemaVersion": 2,
		"mediaType":     oci.MediaTypeImageManifest,
		"config":        desc("application/vnd.oci.image.config.v1+json", config),
		"layers":        ls,
	})
	return b
}

// image pushes config and layers, then the manifest tagged tag.
func (f *fixture) image(repo, tag string, config []byte, layers ...[]byte) digest.Digest {
	f.t.Helper()
	f.blob(repo, config)
	for _, l := range layers {
		f.blob(repo, l)
	}
	res, err := f.reg.PutManifest(context.Background(), repo, oci.Reference{Tag: tag}, oci.MediaTypeImageManifest, manifest(config, layers...), nil)
	if err != nil {
		f.t.Fatal(err)
	}
	f.images = append(f.images, repo+":"+tag)
	return res.Digest
}

// check fails unless every image resolves and each of its blobs reads back
// with its digest.
func (f *fixture) check() {
	f.t.Helper()
	for _, img := range f.images {
		if err := verifyImage(f.reg, img); err != nil {
			f.t.Error(err)
		}
	}
}

// verifyImage reads repo:tag and every blob it names.
func verifyImage(reg *registry.Registry, img string) error {
	ctx := context.Background()
	repo, tag, _ := cut(img)
	m, err := reg.ResolveManifest(ctx, repo, oci.Reference{Tag: tag})
	if err != nil {
		return fmt.Errorf("%s: %w", img, err)
	}
	return verifyRefs(reg, img, repo, m)
}

// verifyRefs reads what m names: an index's children and their blobs, an
// image's blobs.
func verifyRefs(reg *registry.Registry, img, repo string, m storage.Manifest) error {
	for _, d := range m.Refs {
		if m.MediaType == oci.MediaTypeImageIndex {
			child, err := reg.ResolveManifest(context.Background(), repo, oci.Reference{Digest: d})
			if err == nil {
				err = verifyRefs(reg, img, repo, child)
			}
			if err != nil {
				return fmt.Errorf("%s: child %s: %w", img, d, err)
			}
			continue
		}
		if err := verifyBlob(reg, repo, d); err != nil {
			return fmt.Errorf("%s: %w", img, err)
		}
	}
	return nil
}

func cut(img string) (string, string, bool) {
	for i := len(img) - 1; i >= 0; i-- {
		if img[i] == ':' {
			return img[:i], img[i+1:], true
		}
	}
	return img, "", false
}

func verifyBlob(reg *registry.Registry, repo string, d digest.Digest) error {
	ctx := context.Background()
	b, err := reg.StatBlob(ctx, repo, d)
	if err != nil {
		return err
	}
	rc, err := reg.OpenBlob(ctx, b, 0, -1)
	if err != nil {
		return err
	}
	defer rc.Close()
	v := d.Verifier()
	if _, err := io.Copy(v, rc); err != nil {
		return fmt.Errorf("read %s: %w", d, err)
	}
	if !v.Verified() {
		return fmt.Errorf("blob %s in %s reads back other bytes", d, repo)
	}
	return nil
}

func (f *fixture) gone(repo string, d digest.Digest) {
	f.t.Helper()
	_, err := f.reg.StatBlob(context.Background(), repo, d)
	var oe *oci.Error
	if !errors.As(err, &oe) || oe.Code != oci.CodeBlobUnknown {
		f.t.Errorf("blob %s in %s: %v, want BLOB_UNKNOWN", d, repo, err)
	}
}

func (f *fixture) stored() int64 {
	f.t.Helper()
	objs, err := f.s.Blobs.List(context.Background(), "blobs/", storage.Page{})
	if err != nil {
		f.t.Fatal(err)
	}
	var n int64
	for _, o := range objs {
		n += o.Size
	}
	return n
}

// garbage builds the common scene: two images sharing a layer, a blob
// never named, an image whose manifest was deleted; all older than the
// grace period, then one blob pushed just now. It returns the blobs that
// must go and the bytes that must stay.
type scene struct {
	junk, cfgC, layerC, young digest.Digest
	garbageBytes              int64
	keptBytes                 int64
}

func (f *fixture) scene() scene {
	f.t.Helper()
	shared := body("shared", 3*part)
	la, lb, lc := body("la", 2*part), body("lb", 1000), body("lc", 2*part)
	ca, cb, cc := body("ca", 300), body("cb", 301), body("cc", 302)
	f.image("a/x", "1", ca, shared, la)
	f.image("b/y", "1", cb, shared, lb)
	junk := body("junk", part+5)
	var sc scene
	sc.junk = f.blob("a/x", junk)
	dc := f.image("c/z", "1", cc, lc)
	f.images = f.images[:len(f.images)-1]
	if err := f.reg.DeleteManifest(context.Background(), "c/z", oci.Reference{Digest: dc}); err != nil {
		f.t.Fatal(err)
	}
	sc.cfgC, sc.layerC = digest.FromBytes(cc), digest.FromBytes(lc)
	sc.garbageBytes = int64(len(junk) + len(cc) + len(lc))
	time.Sleep(grace + 50*time.Millisecond)
	young := body("young", 700)
	sc.young = f.blob("a/x", young)
	sc.keptBytes = int64(len(shared) + len(la) + len(lb) + len(ca) + len(cb) + len(young))
	return sc
}

func TestCollect(t *testing.T) {
	t.Parallel()
	for name, open := range teststores.Backends(t, minPart) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, open(t))
			sc := f.scene()
			if got, want := f.stored(), sc.keptBytes+sc.garbageBytes; got != want {
				t.Fatalf("stored %d bytes before, want %d", got, want)
			}
			rep := f.collect(gc.Options{})
			f.check()
			f.gone("a/x", sc.junk)
			f.gone("c/z", sc.cfgC)
			f.gone("c/z", sc.layerC)
			if err := verifyBlob(f.reg, "a/x", sc.young); err != nil {
				t.Errorf("young blob: %v", err)
			}
			if rep.LinksDeleted != 3 || rep.BlobsDeleted != 3 || rep.BytesReclaimed != sc.garbageBytes || rep.OrphansDeleted != 0 {
				t.Errorf("report: %d links, %d blobs, %d orphans, %d bytes; want 3, 3, 0, %d", rep.LinksDeleted, rep.BlobsDeleted, rep.OrphansDeleted, rep.BytesReclaimed, sc.garbageBytes)
			}
			if got := f.stored(); got != sc.keptBytes {
				t.Errorf("stored %d bytes after, want %d", got, sc.keptBytes)
			}
			// A second pass finds nothing more (but the young blob, once it
			// is past grace too).
			rep = f.collect(gc.Options{})
			for _, d := range rep.Deleted {
				if d.Digest != sc.young {
					t.Errorf("second pass deleted %+v", d)
				}
			}
			f.check()
		})
	}
}

func TestCollectDryRun(t *testing.T) {
	t.Parallel()
	f := newFixture(t, teststores.Local(t, minPart))
	sc := f.scene()
	before := f.stored()
	rep := f.collect(gc.Options{DryRun: true})
	for _, d := range rep.Deleted {
		t.Logf("dry: %+v", d)
	}
	if rep.LinksDeleted != 3 || rep.BlobsDeleted != 3 || rep.BytesReclaimed != sc.garbageBytes {
		t.Errorf("dry run reports %d links, %d blobs, %d bytes; want 3, 3, %d", rep.LinksDeleted, rep.BlobsDeleted, rep.BytesReclaimed, sc.garbageBytes)
	}
	if got := f.stored(); got != before {
		t.Errorf("dry run changed the stored bytes: %d, was %d", got, before)
	}
	if err := verifyBlob(f.reg, "a/x", sc.junk); err != nil {
		t.Errorf("dry run deleted: %v", err)
	}
	rep = f.collect(gc.Options{})
	if rep.BytesReclaimed != sc.garbageBytes {
		t.Errorf("then reclaimed %d bytes, want %d", rep.BytesReclaimed, sc.garbageBytes)
	}
}

// TestCollectRaces has a push use an unreferenced, old blob while the pass
// has it marked, while the pass waits or between its second look at the
// manifests and its delete: the push wins, and the blob stays.
func TestCollectRaces(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	races := map[string]func(f *fixture, repo string, layer []byte) error{
		"manifest PUT": func(f *fixture, repo string, layer []byte) error {
			f.blob(repo, body("cfg", 200))
			_, err := f.reg.PutManifest(ctx, repo, oci.Reference{Tag: "late"}, oci.MediaTypeImageManifest, manifest(body("cfg", 200), layer), nil)
			f.images = append(f.images, repo+":late")
			return err
		},
		"HEAD then manifest PUT after the pass": func(f *fixture, repo string, layer []byte) error {
			_, err := f.reg.HeadBlob(ctx, repo, digest.FromBytes(layer))
			return err
		},
		"mount into another repository": func(f *fixture, repo string, layer []byte) error {
			_, ok, err := f.reg.Mount(ctx, "other", repo, digest.FromBytes(layer))
			if err == nil && !ok {
				err = errors.New("mount refused")
			}
			return err
		},
	}
	for name, open := range teststores.Backends(t, minPart) {
		for race, during := range races {
			for _, when := range []string{"while it waits", "after its second look"} {
				t.Run(name+"/"+race+" "+when, func(t *testing.T) {
					t.Parallel()
					f := newFixture(t, open(t))
					layer := body("layer", 2*part)
					f.blob("r", layer)
					time.Sleep(grace + 50*time.Millisecond)
					var raced bool
					doRace := func() {
						if !raced {
							raced = true
							if err := during(f, "r", layer); err != nil {
								t.Errorf("push during the pass: %v", err)
							}
						}
					}
					c := f.collector(gc.Options{
						Sleep: func(ctx context.Context, d time.Duration) error {
							if when == "while it waits" {
								doRace()
							}
							time.Sleep(d)
							return nil
						},
						BeforeWrite: func(step string) error {
							if when == "after its second look" && strings.HasPrefix(step, "delete link") {
								doRace()
							}
							return nil
						},
					})
					rep, err := c.Run(ctx)
					if err != nil {
						t.Fatal(err)
					}
					if !raced {
						t.Fatal("the pass never waited with a link marked")
					}
					if rep.BytesReclaimed != 0 {
						t.Errorf("reclaimed %d bytes: %+v", rep.BytesReclaimed, rep.Deleted)
					}
					// The blob stays where the push put it (a mount leaves the
					// source's unnamed link to the pass).
					where := "r"
					if race == "mount into another repository" {
						where = "other"
					}
					if err := verifyBlob(f.reg, where, digest.FromBytes(layer)); err != nil {
						t.Error(err)
					}
					if race == "HEAD then manifest PUT after the pass" {
						// The client HEADed the layer during the pass: its
						// manifest PUT, after it, must be accepted.
						cfg := body("after", 200)
						f.blob("r", cfg)
						if _, err := f.reg.PutManifest(ctx, "r", oci.Reference{Tag: "after"}, oci.MediaTypeImageManifest, manifest(cfg, layer), nil); err != nil {
							t.Errorf("manifest PUT after the HEAD: %v", err)
						}
						f.images = append(f.images, "r:after")
					}
					f.check()
				})
			}
		}
	}
}

// TestCollectOrphans: copies no record names (a crash between storing
// and recording, a record never linked) are deleted once past grace.
func TestCollectOrphans(t *testing.T) {
	t.Parallel()
	for name, open := range teststores.Backends(t, minPart) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			f := newFixture(t, open(t))
			keep := f.image("k", "1", body("kc", 100), body("kl", 2*part))
			_ = keep
			stray := body("stray", 5000)
			sd := digest.FromBytes(stray)
			if err := f.s.Blobs.Put(ctx, "blobs/sha256/"+sd.Encoded()+"/crashed", int64(len(stray)), sd, bytes.NewReader(stray)); err != nil {
				t.Fatal(err)
			}
			unlinked := body("unlinked", 3000)
			ud := digest.FromBytes(unlinked)
			key := "blobs/sha256/" + ud.Encoded() + "/adopted"
			if err := f.s.Blobs.Put(ctx, key, int64(len(unlinked)), ud, bytes.NewReader(unlinked)); err != nil {
				t.Fatal(err)
			}
			if _, err := f.s.Meta.UpsertContent(ctx, storage.Content{Digest: ud, Size: int64(len(unlinked)), Key: key, Linked: time.Now()}); err != nil {
				t.Fatal(err)
			}
			// Not-blob keys, and keys of the layout from before content
			// records (whose repositories a pass may not know), are left
			// alone.
			legacy := body("legacy", 4000)
			ld := digest.FromBytes(legacy)
			for _, k := range []string{"blobs/notes/readme", "blobs/sha256/" + ld.Encoded(), "blobs/uploaded/0123456789abcdef0123456789abcdef"} {
				if err := f.s.Blobs.Put(ctx, k, int64(len(legacy)), "", bytes.NewReader(legacy)); err != nil {
					t.Fatal(err)
				}
			}
			before := f.stored()
			time.Sleep(grace + 50*time.Millisecond)
			rep := f.collect(gc.Options{})
			if rep.OrphansDeleted != 1 || rep.BlobsDeleted != 1 || rep.BytesReclaimed != int64(len(stray)+len(unlinked)) {
				t.Errorf("report %+v", rep)
			}
			if got, want := f.stored(), before-int64(len(stray)+len(unlinked)); got != want {
				t.Errorf("stored %d, want %d", got, want)
			}
			f.check()
		})
	}
}

// TestCollectCrashPoints stops a pass before each of its writes in turn:
// nothing reachable is lost, and a second pass finishes the job.
func TestCollectCrashPoints(t *testing.T) {
	t.Parallel()
	for name, open := range teststores.Backends(t, minPart) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, open(t))
			f.scene()
			var steps []string
			f.collect(gc.Options{BeforeWrite: func(s string) error { steps = append(steps, s); return nil }})
			if len(steps) < 12 {
				t.Fatalf("a pass over the scene made %d writes: %q", len(steps), steps)
			}
			for k, step := range steps {
				t.Run(fmt.Sprintf("%02d %s", k, strings.Fields(step)[0]+" "+strings.Fields(step)[1]), func(t *testing.T) {
					t.Parallel()
					f := newFixture(t, open(t))
					sc := f.scene()
					n := 0
					stop := errors.New("crash")
					_, err := f.collector(gc.Options{BeforeWrite: func(string) error {
						if n == k {
							return stop
						}
						n++
						return nil
					}}).Run(context.Background())
					if !errors.Is(err, stop) {
						t.Fatalf("pass stopped with %v, want the crash", err)
					}
					f.check()
					f.collect(gc.Options{})
					f.check()
					for _, g := range []struct {
						repo string
						d    digest.Digest
					}{{"a/x", sc.junk}, {"c/z", sc.cfgC}, {"c/z", sc.layerC}} {
						f.gone(g.repo, g.d)
					}
					// The young blob may be past grace by now and gone too.
					if got := f.stored(); got > sc.keptBytes || got < sc.keptBytes-700 {
						t.Errorf("stored %d bytes after the second pass, want %d (less the young blob's 700 at most)", got, sc.keptBytes)
					}
				})
			}
		})
	}
}
