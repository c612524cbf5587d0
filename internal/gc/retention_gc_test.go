package gc_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/skiff-registry/skiff/internal/gc"
	"github.com/skiff-registry/skiff/internal/storage"
	"github.com/skiff-registry/skiff/internal/teststores"
	"github.com/skiff-registry/skiff/pkg/oci"
)

const retRepo = "ret/app"

// keepTwoV keeps the last two v<N> tags of retRepo.
var keepTwoV = oci.Retention{Prefix: "ret", KeepTags: []oci.TagKeep{{Pattern: `v\d+`, Last: 2}}}

func rules(rs ...oci.Retention) func(context.Context) ([]oci.Retention, error) {
	return func(context.Context) ([]oci.Retention, error) { return rs, nil }
}

// retScene is a repository under a retention rule: images one (v1), two
// (v2), three (v3, latest), all sharing a layer; a referrer of one and a
// cosign signature of one (its digest tag); an index tagged bundle naming
// an untagged image; an untagged image loose. Everything is past grace.
type retScene struct {
	one, two, three, referrer, sig, child, bundle, loose digest.Digest
	layerOne, sigLayer, looseLayer, shared               digest.Digest
	sigTag                                               string
}

func (f *fixture) retScene() retScene {
	f.t.Helper()
	ctx := context.Background()
	var sc retScene
	shared := body("shared", 2*part)
	sc.shared = digest.FromBytes(shared)
	l1 := body("layer one", part+3)
	sc.layerOne = digest.FromBytes(l1)
	sc.one = f.image(retRepo, "v1", body("cfg one", 200), shared, l1)
	sc.two = f.image(retRepo, "v2", body("cfg two", 201), shared, body("layer two", 1000))
	sc.three = f.image(retRepo, "v3", body("cfg three", 202), shared, body("layer three", 1001))
	if _, err := f.reg.PutManifest(ctx, retRepo, oci.Reference{Tag: "latest"}, oci.MediaTypeImageManifest, manifest(body("cfg three", 202), shared, body("layer three", 1001)), nil); err != nil {
		f.t.Fatal(err)
	}
	f.images = append(f.images, retRepo+":latest")
	f.images = f.images[1:] // v1 goes

	// A referrer of one (an SBOM), pushed by digest.
	sbom := body("sbom", 300)
	f.blob(retRepo, body("cfg sbom", 203))
	f.blob(retRepo, sbom)
	sc.referrer = f.putDigest(retRepo, withSubject(manifest(body("cfg sbom", 203), sbom), sc.one))
	// cosign's classic signature: a manifest under sha256-<hex>.sig.
	sigLayer := body("signature", 400)
	sc.sigLayer = digest.FromBytes(sigLayer)
	f.blob(retRepo, body("cfg sig", 204))
	f.blob(retRepo, sigLayer)
	sc.sigTag = strings.Replace(sc.one.String(), ":", "-", 1) + ".sig"
	res, err := f.reg.PutManifest(ctx, retRepo, oci.Reference{Tag: sc.sigTag}, oci.MediaTypeImageManifest, manifest(body("cfg sig", 204), sigLayer), nil)
	if err != nil {
		f.t.Fatal(err)
	}
	sc.sig = res.Digest
	// An index tagged bundle over an untagged image.
	childCfg, childLayer := body("cfg child", 205), body("layer child", 1002)
	f.blob(retRepo, childCfg)
	f.blob(retRepo, childLayer)
	childBody := manifest(childCfg, childLayer)
	sc.child = f.putDigest(retRepo, childBody)
	sc.bundle = f.putTag(retRepo, "bundle", oci.MediaTypeImageIndex, index(childBody))
	// An untagged image.
	ll := body("loose layer", 1003)
	sc.looseLayer = digest.FromBytes(ll)
	f.blob(retRepo, body("cfg loose", 206))
	f.blob(retRepo, ll)
	sc.loose = f.putDigest(retRepo, manifest(body("cfg loose", 206), ll))
	time.Sleep(grace + 50*time.Millisecond)
	return sc
}

func withSubject(m []byte, subject digest.Digest) []byte {
	var v map[string]any
	_ = json.Unmarshal(m, &v)
	v["subject"] = map[string]any{"mediaType": oci.MediaTypeImageManifest, "digest": subject, "size": 1}
	v["artifactType"] = "application/spdx+json"
	b, _ := json.Marshal(v)
	return b
}

func index(children ...[]byte) []byte {
	var ms []any
	for _, c := range children {
		ms = append(ms, map[string]any{"mediaType": oci.MediaTypeImageManifest, "digest": digest.FromBytes(c), "size": len(c),
			"platform": map[string]any{"os": "linux", "architecture": "amd64"}})
	}
	b, _ := json.Marshal(map[string]any{"schemaVersion": 2, "mediaType": oci.MediaTypeImageIndex, "manifests": ms})
	return b
}

func (f *fixture) putDigest(repo string, b []byte) digest.Digest {
	f.t.Helper()
	res, err := f.reg.PutManifest(context.Background(), repo, oci.Reference{Digest: digest.FromBytes(b)}, oci.MediaTypeImageManifest, b, nil)
	if err != nil {
		f.t.Fatal(err)
	}
	return res.Digest
}

func (f *fixture) putTag(repo, tag, mt string, b []byte) digest.Digest {
	f.t.Helper()
	res, err := f.reg.PutManifest(context.Background(), repo, oci.Reference{Tag: tag}, mt, b, nil)
	if err != nil {
		f.t.Fatal(err)
	}
	f.images = append(f.images, repo+":"+tag)
	return res.Digest
}

// present fails unless the manifests ds are (want) or are not in repo.
func (f *fixture) present(want bool, ds ...digest.Digest) {
	f.t.Helper()
	for _, d := range ds {
		_, err := f.s.Meta.GetManifest(context.Background(), retRepo, d)
		switch {
		case want && err != nil:
			f.t.Errorf("manifest %s: %v, want it kept", d, err)
		case !want && !errors.Is(err, storage.ErrNotFound):
			f.t.Errorf("manifest %s: %v, want it deleted", d, err)
		}
	}
}

func (f *fixture) hasTag(tag string) bool {
	_, err := f.s.Meta.GetTag(context.Background(), retRepo, tag)
	return err == nil
}

func (f *fixture) referrers(subject digest.Digest) []storage.Referrer {
	f.t.Helper()
	rs, err := f.s.Meta.ListReferrers(context.Background(), retRepo, subject, storage.Page{})
	if err != nil {
		f.t.Fatal(err)
	}
	return rs
}

// wantExpired checks the state after keepTwoV has run to the end.
func (f *fixture) wantExpired(sc retScene) {
	f.t.Helper()
	f.check() // v2, v3, latest, bundle: whole
	f.present(true, sc.two, sc.three, sc.child, sc.bundle, sc.loose)
	f.present(false, sc.one, sc.referrer, sc.sig)
	if f.hasTag("v1") || f.hasTag(sc.sigTag) {
		f.t.Error("tag v1 or the signature's digest tag is still there")
	}
	if rs := f.referrers(sc.one); len(rs) != 0 {
		f.t.Errorf("the referrers API still lists %+v for deleted %s", rs, sc.one)
	}
	f.gone(retRepo, sc.layerOne)
	f.gone(retRepo, sc.sigLayer)
	if err := verifyBlob(f.reg, retRepo, sc.shared); err != nil {
		f.t.Error(err)
	}
}

// TestRetention runs a pass with each rule over the scene on both
// backends: keep-tags deletes v1 with its image, signature and referrer,
// and what only they named; untagged-after then deletes the loose image
// but not the child a kept index names. Repositories no rule covers lose
// nothing.
func TestRetention(t *testing.T) {
	t.Parallel()
	for name, open := range teststores.Backends(t, minPart) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, open(t))
			sc := f.retScene()
			other := f.image("elsewhere/app", "v1", body("cfg elsewhere", 207), body("layer elsewhere", 1004))
			f.image("elsewhere/app", "v2", body("cfg elsewhere 2", 208), body("layer elsewhere 2", 1005))
			f.image("elsewhere/app", "v3", body("cfg elsewhere 3", 209), body("layer elsewhere 3", 1006))
			time.Sleep(grace)

			dry := f.collect(gc.Options{DryRun: true, Retention: rules(keepTwoV)})
			if dry.TagsDeleted != 1 || dry.ManifestsDeleted != 3 {
				t.Errorf("dry run: %d tags, %d manifests, want 1 and 3: %+v", dry.TagsDeleted, dry.ManifestsDeleted, dry.Deleted)
			}
			f.present(true, sc.one, sc.referrer, sc.sig)

			rep := f.collect(gc.Options{Retention: rules(keepTwoV)})
			// v1 and the digest tag; one, its referrer and signature.
			if rep.Retained != 1 || rep.TagsDeleted != 2 || rep.ManifestsDeleted != 3 {
				t.Errorf("pass: %d repositories retained, %d tags and %d manifests deleted, want 1, 2 and 3: %+v",
					rep.Retained, rep.TagsDeleted, rep.ManifestsDeleted, rep.Deleted)
			}
			if rep.BytesReclaimed < int64(part+3+400) {
				t.Errorf("reclaimed %d bytes, want at least layer one's and the signature's", rep.BytesReclaimed)
			}
			f.wantExpired(sc)
			if _, err := f.s.Meta.GetManifest(context.Background(), "elsewhere/app", other); err != nil {
				t.Errorf("a repository no rule covers lost a manifest: %v", err)
			}

			withUntagged := keepTwoV
			withUntagged.UntaggedAfter = oci.Duration(time.Second)
			rep = f.collect(gc.Options{Retention: rules(withUntagged)})
			if rep.ManifestsDeleted != 1 || rep.TagsDeleted != 0 {
				t.Errorf("untagged pass: %+v", rep.Deleted)
			}
			f.present(false, sc.loose)
			f.present(true, sc.child, sc.bundle, sc.two, sc.three)
			f.gone(retRepo, sc.looseLayer)
			f.check()
			if rep := f.collect(gc.Options{Retention: rules(withUntagged)}); len(rep.Deleted) != 0 {
				t.Errorf("a third pass deleted %+v", rep.Deleted)
			}
		})
	}
}

// TestRetentionRaces: while a pass has the expiring image marked, a
// client uses it by digest (a HEAD before naming it in an index) or
// pushes an index naming it: the client wins, the image and its referrer
// and signature stay whole. A later pass, once the use is past grace,
// deletes it anyway: the rule's mark outlives the use.
func TestRetentionRaces(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	races := map[string]func(f *fixture, sc retScene) error{
		"HEAD by digest": func(f *fixture, sc retScene) error {
			m, err := f.reg.ResolveManifest(ctx, retRepo, oci.Reference{Digest: sc.one})
			if err == nil {
				_, err = f.reg.UseManifest(ctx, retRepo, m)
			}
			return err
		},
		"HEAD just before its delete": nil, // see below
		"index PUT naming it": func(f *fixture, sc retScene) error {
			m, err := f.s.Meta.GetManifest(ctx, retRepo, sc.one)
			if err != nil {
				return err
			}
			_, err = f.reg.PutManifest(ctx, retRepo, oci.Reference{Digest: digest.FromBytes(index(m.Body))}, oci.MediaTypeImageIndex, index(m.Body), nil)
			return err
		},
	}
	for name, open := range teststores.Backends(t, minPart) {
		for race, during := range races {
			t.Run(name+"/"+race, func(t *testing.T) {
				t.Parallel()
				f := newFixture(t, open(t))
				sc := f.retScene()
				var raced bool
				o := gc.Options{Retention: rules(keepTwoV), Sleep: func(ctx context.Context, d time.Duration) error {
					if !raced && during != nil {
						raced = true
						if err := during(f, sc); err != nil {
							t.Errorf("%s during the pass: %v", race, err)
						}
					}
					time.Sleep(d)
					return nil
				}}
				if during == nil {
					// After the second look has read the repository, just
					// before the subject's delete: the subject stays, and
					// with it what it names (its referrer and signature),
					// though they are still marked.
					o.BeforeWrite = func(step string) error {
						if !raced && step == "delete manifest "+retRepo+"@"+sc.one.String() {
							raced = true
							return races["HEAD by digest"](f, sc)
						}
						return nil
					}
				}
				rep, err := f.collector(o).Run(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if !raced {
					t.Fatal("the pass never waited with manifests marked")
				}
				if rep.ManifestsDeleted != 0 {
					t.Errorf("deleted %+v", rep.Deleted)
				}
				f.present(true, sc.one, sc.referrer, sc.sig)
				if len(f.referrers(sc.one)) != 1 {
					t.Error("the referrer's entry is gone")
				}
				if err := verifyBlob(f.reg, retRepo, sc.layerOne); err != nil {
					t.Error(err)
				}
				if race != "index PUT naming it" {
					// Named by nothing but the rule's mark: it goes once the
					// use is past grace.
					time.Sleep(grace)
					f.collect(gc.Options{Retention: rules(keepTwoV)})
					f.wantExpired(sc)
				}
			})
		}
	}
}

// TestRetentionCrashPoints stops a pass with a rule before each of its
// writes in turn: every kept image stays whole, and a second pass
// finishes the job.
func TestRetentionCrashPoints(t *testing.T) {
	t.Parallel()
	for name, open := range teststores.Backends(t, minPart) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, open(t))
			f.retScene()
			var steps []string
			f.collect(gc.Options{Retention: rules(keepTwoV), BeforeWrite: func(s string) error {
				if !strings.Contains(s, " link ") && !strings.HasPrefix(s, "delete object") && !strings.HasPrefix(s, "delete content") {
					steps = append(steps, s)
				}
				return nil
			}})
			if len(steps) < 9 {
				t.Fatalf("retention made %d writes: %q", len(steps), steps)
			}
			for k, step := range steps {
				t.Run(fmt.Sprintf("%02d %s", k, strings.Join(strings.Fields(step)[:2], " ")), func(t *testing.T) {
					t.Parallel()
					f := newFixture(t, open(t))
					sc := f.retScene()
					stop := errors.New("crash")
					_, err := f.collector(gc.Options{Retention: rules(keepTwoV), BeforeWrite: func(s string) error {
						if s == step { // digests are the same in every run of the scene
							return stop
						}
						return nil
					}}).Run(context.Background())
					if !errors.Is(err, stop) {
						t.Fatalf("pass stopped with %v, want the crash before %q", err, step)
					}
					f.check()
					f.present(true, sc.two, sc.three, sc.child, sc.bundle, sc.loose)
					f.collect(gc.Options{Retention: rules(keepTwoV)})
					f.wantExpired(sc)
				})
			}
		})
	}
}
