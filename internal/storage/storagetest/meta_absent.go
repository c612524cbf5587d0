package storagetest

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/opencontainers/go-digest"

	"github.com/skiff-registry/skiff/internal/storage"
)

// testMetaAbsent: absent-child records are idempotent, listed by index
// digest, and isolated per child and per repository.
func testMetaAbsent(t *testing.T, ms storage.MetaStore) {
	ctx := context.Background()
	child := digest.FromString("arm64 child")
	other := digest.FromString("s390x child")
	i1, i2 := digest.FromString("index one"), digest.FromString("index two")
	for _, w := range []struct {
		repo  string
		child digest.Digest
		a     storage.Absent
	}{
		{"mirror/app", child, storage.Absent{Index: i2, Platform: "linux/arm64/v8"}},
		{"mirror/app", child, storage.Absent{Index: i1, Platform: "linux/arm64/v8"}},
		{"mirror/app", child, storage.Absent{Index: i1, Platform: "linux/arm64/v8"}}, // idempotent
		{"mirror/app", other, storage.Absent{Index: i1, Platform: "linux/s390x"}},
		{"mirror/appx", child, storage.Absent{Index: i1}},
	} {
		if err := ms.PutAbsent(ctx, w.repo, w.child, w.a); err != nil {
			t.Fatal(err)
		}
	}
	got, err := ms.ListAbsent(ctx, "mirror/app", child, storage.Page{})
	if err != nil {
		t.Fatal(err)
	}
	want := []storage.Absent{{Index: i1, Platform: "linux/arm64/v8"}, {Index: i2, Platform: "linux/arm64/v8"}}
	if i2 < i1 {
		want[0], want[1] = want[1], want[0]
	}
	if diff := cmp.Diff(got, want); diff != "" {
		t.Errorf("ListAbsent (-got +want):\n%s", diff)
	}
	page, err := ms.ListAbsent(ctx, "mirror/app", child, storage.Page{After: string(want[0].Index), Limit: 5})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(page, want[1:]); diff != "" {
		t.Errorf("ListAbsent after %s (-got +want):\n%s", want[0].Index, diff)
	}
	none, err := ms.ListAbsent(ctx, "mirror/ap", child, storage.Page{})
	if err != nil || len(none) != 0 {
		t.Errorf("ListAbsent of another repository: %v, %v", none, err)
	}
}
