package registry_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/opencontainers/go-digest"

	"github.com/skiff-registry/skiff/internal/registry"
	"github.com/skiff-registry/skiff/internal/storage"
	"github.com/skiff-registry/skiff/pkg/oci"
)

// pushArtifact stores a config blob and a manifest naming it in repo
// under tags.
func pushArtifact(t *testing.T, reg *registry.Registry, repo string, n int, tags ...string) digest.Digest {
	t.Helper()
	ctx := context.Background()
	cfg := []byte(`{"n":` + strings.Repeat("1", n+1) + `}`)
	d := digest.FromBytes(cfg)
	if _, err := reg.PutBlob(ctx, repo, d, int64(len(cfg)), strings.NewReader(string(cfg))); err != nil {
		t.Fatal(err)
	}
	body := artifact(t, d, len(cfg), n)
	ref, err := oci.ParseReference(tags[0])
	if err != nil {
		t.Fatal(err)
	}
	res, err := reg.PutManifest(ctx, repo, ref, oci.MediaTypeImageManifest, body, tags[1:])
	if err != nil {
		t.Fatal(err)
	}
	return res.Digest
}

// onEachBackend runs test on the stores of every backend, in parallel.
func onEachBackend(t *testing.T, test func(t *testing.T, s stores)) {
	t.Helper()
	for name, open := range backends(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			test(t, open(t))
		})
	}
}

// countingLookups counts the batch lookups of manifest references.
type countingLookups struct {
	storage.MetaStore
	n *atomic.Int64
}

func (c countingLookups) GetBlobs(ctx context.Context, repo string, ds []digest.Digest) (map[digest.Digest]storage.Blob, error) {
	c.n.Add(1)
	return c.MetaStore.GetBlobs(ctx, repo, ds)
}

func (c countingLookups) GetManifests(ctx context.Context, repo string, ds []digest.Digest) (map[digest.Digest]storage.Manifest, error) {
	c.n.Add(1)
	return c.MetaStore.GetManifests(ctx, repo, ds)
}

// Listing cursors longer than any name (DynamoDB refuses keys over 1,024
// bytes) are no error on either backend, and list what follows them.
func TestListingCursors(t *testing.T) {
	t.Parallel()
	onEachBackend(t, func(t *testing.T, s stores) {
		reg := newRegistryOn(t, s)
		ctx := context.Background()
		pushArtifact(t, reg, "a/app", 1, "v1", "v2", "zz")
		pushArtifact(t, reg, "z/app", 2, "v1")
		long := func(prefix string, n int) string { return prefix + strings.Repeat("x", n) }
		tagCases := []struct {
			name, last string
			want       []string
		}{
			{"a valid tag", "v1", []string{"v2", "zz"}},
			{"3,000 characters", long("v", 3000), []string{"zz"}},
			{"200 characters sorting first", long("A", 200), []string{"v1", "v2", "zz"}},
			{"not a tag at all", "v1/../\x00\xff", []string{"v2", "zz"}},
			{"past the end", long("zz", 3000), []string{}},
		}
		for _, tc := range tagCases {
			got, _, err := reg.ListTags(ctx, "a/app", storage.Page{After: tc.last})
			if err != nil {
				t.Errorf("tags after %s: %v", tc.name, err)
				continue
			}
			if diff := cmp.Diff(append([]string{}, got...), tc.want); diff != "" {
				t.Errorf("tags after %s (-got +want):\n%s", tc.name, diff)
			}
		}
		catCases := []struct {
			name, last string
			want       []string
		}{
			{"3,000 characters", long("a/", 3000), []string{"z/app"}},
			{"past the end", long("z/", 3000), nil},
			{"not a name", "A\xff\x00", []string{"a/app", "z/app"}},
		}
		for _, tc := range catCases {
			got, _, err := reg.Catalog(ctx, storage.Page{After: tc.last}, nil)
			if err != nil {
				t.Errorf("catalog after %s: %v", tc.name, err)
				continue
			}
			if diff := cmp.Diff(got, tc.want); diff != "" {
				t.Errorf("catalog after %s (-got +want):\n%s", tc.name, diff)
			}
		}
	})
}

// Manifests the registry must refuse, on both backends: MANIFEST_INVALID
// or MANIFEST_BLOB_UNKNOWN, and nothing stored (neither the manifest nor
// its tag). The absent-layer flood is answered with at most 101 errors
// after a bounded number of lookups.
func TestRefusedManifests(t *testing.T) {
	t.Parallel()
	onEachBackend(t, func(t *testing.T, s stores) {
		lookups := &atomic.Int64{}
		s.meta = countingLookups{s.meta, lookups}
		reg := newRegistryOn(t, s)
		ctx := context.Background()
		const repo = "refuse/app"
		child := pushArtifact(t, reg, repo, 1, "child")
		childM, err := reg.ResolveManifest(ctx, repo, oci.Reference{Digest: child})
		if err != nil {
			t.Fatal(err)
		}
		cfg := []byte(`{"n":11}`) // pushArtifact's config for n = 1
		cfgD := digest.FromBytes(cfg)
		absent := func(i int) string {
			return digest.FromString("absent " + strconv.Itoa(i)).String()
		}
		layers := func(n int) string {
			var b strings.Builder
			for i := range n {
				if i > 0 {
					b.WriteString(",")
				}
				b.WriteString(`{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"` + absent(i) + `","size":5}`)
			}
			return b.String()
		}
		image := func(rest string) string {
			return `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"` +
				cfgD.String() + `","size":` + strconv.Itoa(len(cfg)) + `}` + rest + `}`
		}
		index := func(size int64) string {
			return `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"` +
				child.String() + `","size":` + strconv.FormatInt(size, 10) + `,"platform":{"os":"linux","architecture":"amd64"}}]}`
		}
		tests := []struct {
			name      string
			mediaType string
			body      string
			wantCode  oci.ErrorCode
			maxErrs   int
		}{
			{"invalid UTF-8 annotation", oci.MediaTypeImageManifest, image(`,"annotations":{"a":"` + "\xff\xfe" + `"}`), oci.CodeManifestInvalid, 1},
			{"a duplicate key hiding an absent layer", oci.MediaTypeImageManifest, image(`,"layers":[` + layers(1) + `],"layers":[]`), oci.CodeManifestInvalid, 1},
			{"a case variant hiding an absent layer", oci.MediaTypeImageManifest, image(`,"Layers":[` + layers(1) + `]`), oci.CodeManifestInvalid, 1},
			{"an index child of another size", oci.MediaTypeImageIndex, index(childM.Size + 1), oci.CodeManifestInvalid, 1},
			{"an index child of size 0", oci.MediaTypeImageIndex, index(0), oci.CodeManifestInvalid, 1},
			{"a config of another size", oci.MediaTypeImageManifest, strings.Replace(image(""), `"size":8`, `"size":9`, 1), oci.CodeManifestInvalid, 1},
			{"a layer of another size", oci.MediaTypeImageManifest, image(`,"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"` + cfgD.String() + `","size":9}]`), oci.CodeManifestInvalid, 1},
			{"250 absent layers", oci.MediaTypeImageManifest, image(`,"layers":[` + layers(250) + `]`), oci.CodeManifestBlobUnknown, 101},
			{"9,999 absent layers", oci.MediaTypeImageManifest, image(`,"layers":[` + layers(9999) + `]`), oci.CodeManifestBlobUnknown, 101},
			{"a platform field of 1 MiB", oci.MediaTypeImageIndex, strings.Replace(index(childM.Size), `"os":"linux"`, `"os":"`+strings.Repeat("x", 1<<20)+`"`, 1), oci.CodeManifestInvalid, 1},
			{"a subject and 1 MiB of annotations", oci.MediaTypeImageManifest, image(`,"layers":[],"subject":{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"` + child.String() + `","size":10},"annotations":{"a":"` + strings.Repeat("x", 1<<20) + `"}`), oci.CodeManifestInvalid, 1},
			{"28,000 absent layers (4 MiB)", oci.MediaTypeImageManifest, image(`,"layers":[` + layers(28000) + `]`), oci.CodeManifestInvalid, 1},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				body := []byte(tc.body)
				lookups.Store(0)
				_, err := reg.PutManifest(ctx, repo, oci.Reference{Tag: "refused"}, tc.mediaType, body, nil)
				var errs oci.Errors
				var one *oci.Error
				switch {
				case errors.As(err, &errs):
				case errors.As(err, &one):
					errs = oci.Errors{one}
				default:
					t.Fatalf("PutManifest: %v, want a client error", err)
				}
				if len(errs) == 0 || len(errs) > tc.maxErrs {
					t.Errorf("%d errors, want 1 to %d", len(errs), tc.maxErrs)
				}
				for _, e := range errs {
					if e.Code != tc.wantCode {
						t.Errorf("code %s (%s), want %s", e.Code, e.Message, tc.wantCode)
						break
					}
				}
				if tc.maxErrs > 1 && !strings.Contains(errs[len(errs)-1].Message, "more") {
					t.Errorf("the last error does not say how many more: %s", errs[len(errs)-1].Message)
				}
				// Lookups stop once enough errors are found: a batch of 100
				// references, and at most one more to pass 100 errors.
				if n := lookups.Load(); n > 2 {
					t.Errorf("%d reference lookups, want at most 2", n)
				}
				if _, err := reg.ResolveManifest(ctx, repo, oci.Reference{Tag: "refused"}); err == nil {
					t.Error("the tag was stored")
				}
				if _, err := reg.ResolveManifest(ctx, repo, oci.Reference{Digest: digest.FromBytes(body)}); err == nil {
					t.Error("the manifest was stored")
				}
			})
		}
		// The right child size is accepted.
		if _, err := reg.PutManifest(ctx, repo, oci.Reference{Tag: "index"}, oci.MediaTypeImageIndex, []byte(index(childM.Size)), nil); err != nil {
			t.Errorf("an index with the right child size: %v", err)
		}
	})
}

// A session finished by one PUT with the whole body is spent: its status,
// another PUT and a PATCH all answer BLOB_UPLOAD_UNKNOWN, as after PATCH +
// PUT, and of two PUTs racing on one fresh session exactly one stores its
// blob. On both backends.
func TestFinishedSessionIsSpent(t *testing.T) {
	t.Parallel()
	onEachBackend(t, func(t *testing.T, s stores) {
		reg := newRegistryOn(t, s)
		ctx := context.Background()
		const repo = "spent/app"
		blob := func(s string) ([]byte, digest.Digest) { return []byte(s), digest.FromString(s) }
		spent := func(what, id string) {
			t.Helper()
			if _, err := reg.UploadStatus(ctx, repo, id); !isCode(err, oci.CodeBlobUploadUnknown) {
				t.Errorf("%s: status: %v, want BLOB_UPLOAD_UNKNOWN", what, err)
			}
			b, d := blob("another blob " + what)
			if _, err := reg.CommitUpload(ctx, repo, id, d, -1, int64(len(b)), strings.NewReader(string(b))); !isCode(err, oci.CodeBlobUploadUnknown) {
				t.Errorf("%s: a second PUT: %v, want BLOB_UPLOAD_UNKNOWN", what, err)
			}
			if _, err := reg.StatBlob(ctx, repo, d); err == nil {
				t.Errorf("%s: the second PUT's blob was stored", what)
			}
			if _, err := reg.WriteUpload(ctx, repo, id, 0, strings.NewReader("more")); !isCode(err, oci.CodeBlobUploadUnknown) {
				t.Errorf("%s: a PATCH: %v, want BLOB_UPLOAD_UNKNOWN", what, err)
			}
		}
		cases := []struct {
			name   string
			finish func(id string, b []byte, d digest.Digest) error
		}{
			{"POST then PUT with the body", func(id string, b []byte, d digest.Digest) error {
				_, err := reg.CommitUpload(ctx, repo, id, d, -1, int64(len(b)), strings.NewReader(string(b)))
				return err
			}},
			{"POST then PUT with Content-Range 0-", func(id string, b []byte, d digest.Digest) error {
				_, err := reg.CommitUpload(ctx, repo, id, d, 0, int64(len(b)), strings.NewReader(string(b)))
				return err
			}},
			{"PATCH then PUT", func(id string, b []byte, d digest.Digest) error {
				if _, err := reg.WriteUpload(ctx, repo, id, 0, strings.NewReader(string(b))); err != nil {
					return err
				}
				_, err := reg.CommitUpload(ctx, repo, id, d, -1, 0, nil)
				return err
			}},
		}
		for _, tc := range cases {
			u, err := reg.StartUpload(ctx, repo)
			if err != nil {
				t.Fatal(err)
			}
			b, d := blob("the blob of " + tc.name)
			if err := tc.finish(u.ID, b, d); err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
			if got := readBlob(t, reg, repo, d); string(got) != string(b) {
				t.Errorf("%s: the blob reads %q", tc.name, got)
			}
			spent(tc.name, u.ID)
		}

		// Two PUTs race on one fresh session: one wins.
		u, err := reg.StartUpload(ctx, repo)
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		errs := make([]error, 2)
		ds := make([]digest.Digest, 2)
		for i := range 2 {
			b, d := blob("racer " + strconv.Itoa(i))
			ds[i] = d
			wg.Go(func() {
				_, errs[i] = reg.CommitUpload(ctx, repo, u.ID, d, -1, int64(len(b)), strings.NewReader(string(b)))
			})
		}
		wg.Wait()
		won := 0
		for i, err := range errs {
			_, statErr := reg.StatBlob(ctx, repo, ds[i])
			switch {
			case err == nil && statErr == nil:
				won++
			case isCode(err, oci.CodeBlobUploadUnknown) && statErr != nil:
			default:
				t.Errorf("racer %d: %v (stat: %v)", i, err, statErr)
			}
		}
		if won != 1 {
			t.Errorf("%d of two PUTs on one session stored a blob, want 1", won)
		}
	})
}

// cutReader yields the first n bytes of data, then cancels the request's
// context and fails, as a client's dropped connection does mid-PATCH.
type cutReader struct {
	data   []byte
	n      int
	cancel context.CancelFunc
}

func (c *cutReader) Read(p []byte) (int, error) {
	if c.n == 0 {
		c.cancel()
		return 0, io.ErrUnexpectedEOF
	}
	k := copy(p, c.data[:min(c.n, len(p))])
	c.data, c.n = c.data[k:], c.n-k
	return k, nil
}

// A PATCH cut off mid-body (its context cancelled) still releases the
// session: the client's status request right after reports an offset, and
// a PATCH from there succeeds at once, on both backends, wherever the cut
// falls (within the first part, past a part, in the tail).
func TestInterruptedPatchResumes(t *testing.T) {
	t.Parallel()
	onEachBackend(t, func(t *testing.T, s stores) {
		reg := newRegistryOn(t, s)
		ctx := context.Background()
		const repo = "cut/app"
		for _, cut := range []int{1, minPart / 2, part + 3, 2*part + minPart/2} {
			data := randomBytes(t, 3*part)
			u, err := reg.StartUpload(ctx, repo)
			if err != nil {
				t.Fatal(err)
			}
			reqCtx, cancel := context.WithCancel(ctx)
			_, err = reg.WriteUpload(reqCtx, repo, u.ID, 0, &cutReader{data: data, n: cut, cancel: cancel})
			if err == nil {
				t.Fatalf("cut at %d: the PATCH succeeded", cut)
			}
			st, err := reg.UploadStatus(ctx, repo, u.ID)
			if err != nil {
				t.Fatalf("cut at %d: status: %v", cut, err)
			}
			if st.Offset < 0 || st.Offset > int64(cut) {
				t.Fatalf("cut at %d: offset %d", cut, st.Offset)
			}
			if _, err := reg.WriteUpload(ctx, repo, u.ID, st.Offset, bytes.NewReader(data[st.Offset:])); err != nil {
				t.Fatalf("cut at %d: the resume from %d right after: %v", cut, st.Offset, err)
			}
			d := digest.FromBytes(data)
			if _, err := reg.CommitUpload(ctx, repo, u.ID, d, -1, 0, nil); err != nil {
				t.Fatalf("cut at %d: commit: %v", cut, err)
			}
			if got := readBlob(t, reg, repo, d); !bytes.Equal(got, data) {
				t.Errorf("cut at %d: the blob differs", cut)
			}
		}
	})
}

// lostReplies stores every UpdateUpload but reports the first n of them
// as failed, as a write whose reply the request's cancellation cut off:
// the store has it, the request does not know.
type lostReplies struct {
	storage.MetaStore
	n *atomic.Int64
}

func (l lostReplies) UpdateUpload(ctx context.Context, u storage.Upload, prev int64) error {
	if err := l.MetaStore.UpdateUpload(ctx, u, prev); err != nil {
		return err
	}
	if l.n.Add(-1) >= 0 {
		return context.Canceled
	}
	return nil
}

// A session write that was stored though its request saw it fail (the
// client dropped the connection while DynamoDB wrote it) does not leave
// the claim behind, whether it was the claim itself or a checkpoint after
// a part: the request ends its own claim, so the client's resume right
// after is taken, from the bytes stored.
func TestLostSessionWriteReply(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		first   int // bytes a PATCH stored before the one whose write is lost
		lost    int // bytes the PATCH with the lost write sends
		resumed int64
	}{
		// The claim is written; the checkpoint after the first part is lost.
		{"checkpoint", 0, 2*part + minPart/2, part},
		// The second PATCH's claim is the write whose reply is lost.
		{"claim", part, part, part},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			onEachBackend(t, func(t *testing.T, s stores) {
				lost := &atomic.Int64{}
				s.meta = lostReplies{s.meta, lost}
				reg := newRegistryOn(t, s)
				ctx := context.Background()
				const repo = "lost/app"
				data := randomBytes(t, 3*part)
				u, err := reg.StartUpload(ctx, repo)
				if err != nil {
					t.Fatal(err)
				}
				if tc.first > 0 {
					if _, err := reg.WriteUpload(ctx, repo, u.ID, 0, bytes.NewReader(data[:tc.first])); err != nil {
						t.Fatal(err)
					}
				}
				lost.Store(1)
				if _, err := reg.WriteUpload(ctx, repo, u.ID, int64(tc.first), bytes.NewReader(data[tc.first:tc.first+tc.lost])); err == nil {
					t.Fatal("the PATCH whose session write failed succeeded")
				}
				if n := lost.Load(); n >= 1 {
					t.Fatalf("no reply was lost (%d left)", n)
				}
				st, err := reg.UploadStatus(ctx, repo, u.ID)
				if err != nil {
					t.Fatal(err)
				}
				if st.Offset != tc.resumed {
					t.Errorf("offset %d after the lost write, want %d", st.Offset, tc.resumed)
				}
				if _, err := reg.WriteUpload(ctx, repo, u.ID, st.Offset, bytes.NewReader(data[st.Offset:])); err != nil {
					t.Fatalf("the resume from %d right after: %v", st.Offset, err)
				}
				d := digest.FromBytes(data)
				if _, err := reg.CommitUpload(ctx, repo, u.ID, d, -1, 0, nil); err != nil {
					t.Fatalf("commit: %v", err)
				}
				if got := readBlob(t, reg, repo, d); !bytes.Equal(got, data) {
					t.Error("the blob differs")
				}
			})
		})
	}
}

// A monolithic push larger than one object write (S3 takes at most 5 GiB
// in one PUT) is written in parts instead, with the right bytes, on both
// backends (the limit shrunk to 1 KiB here).
func TestLargeMonolithicPushInParts(t *testing.T) {
	t.Parallel()
	onEachBackend(t, func(t *testing.T, s stores) {
		reg := newRegistryOn(t, s, registry.WithMaxSinglePut(1<<10))
		ctx := context.Background()
		data := randomBytes(t, 2*part+minPart/2)
		d := digest.FromBytes(data)
		b, err := reg.PutBlob(ctx, "big/app", d, int64(len(data)), bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		if b.Size != int64(len(data)) {
			t.Errorf("size %d", b.Size)
		}
		if got := readBlob(t, reg, "big/app", d); !bytes.Equal(got, data) {
			t.Error("the blob differs")
		}
	})
}

// countingRepos counts PutRepository calls.
type countingRepos struct {
	storage.MetaStore
	n *atomic.Int64
}

func (c countingRepos) PutRepository(ctx context.Context, repo string) error {
	c.n.Add(1)
	return c.MetaStore.PutRepository(ctx, repo)
}

// TestRepositoryRecordedOnce: a process writes a repository's catalog item
// on its first manifest PUT there, not on every push (the catalog is one
// DynamoDB partition); another process writes it once again; the catalog
// lists each repository either way.
func TestRepositoryRecordedOnce(t *testing.T) {
	t.Parallel()
	onEachBackend(t, func(t *testing.T, s stores) {
		writes := &atomic.Int64{}
		s.meta = countingRepos{s.meta, writes}
		ctx := context.Background()
		one := newRegistryOn(t, s)
		for i := range 5 {
			pushArtifact(t, one, "once/a", i, "v"+strconv.Itoa(i))
		}
		pushArtifact(t, one, "once/b", 9, "v")
		if n := writes.Load(); n != 2 {
			t.Errorf("6 manifest PUTs into 2 repositories wrote the catalog %d times, want 2", n)
		}
		other := newRegistryOn(t, s) // another process on the same stores
		pushArtifact(t, other, "once/a", 7, "w")
		if n := writes.Load(); n != 3 {
			t.Errorf("a second process's first PUT into once/a: %d catalog writes in all, want 3", n)
		}
		repos, _, err := one.Catalog(ctx, storage.Page{Limit: 10}, func(string) bool { return true })
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(repos, []string{"once/a", "once/b"}) {
			t.Errorf("catalog: %v", repos)
		}
	})
}
