package main

import (
	"bytes"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/skiff-registry/skiff/internal/copier"
)

// syncBuf is a bytes.Buffer safe for mpb's goroutine and the test.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestBarsReporter: on a terminal every blob's bar ends, whether its
// upload finished, was retried or its image failed, so the summary is
// printed and nothing waits for ever.
func TestBarsReporter(t *testing.T) {
	t.Parallel()
	var term syncBuf
	r := newBarsReporter(&term)
	ev := func(k copier.Kind, img, d string, size, done int64) {
		r.event(copier.Event{Kind: k, Image: img, Digest: d, Size: size, Done: done, Note: "n", Error: "boom"})
	}
	ev(copier.KindImage, "up/a:v1", "", 0, 0)
	ev(copier.KindBlobStart, "up/a:v1", "sha256:1", 100, 0)
	ev(copier.KindBlobProgress, "up/a:v1", "sha256:1", 100, 60)
	ev(copier.KindBlobStart, "up/a:v1", "sha256:1", 100, 0) // a retry
	ev(copier.KindBlobProgress, "up/a:v1", "sha256:1", 100, 100)
	ev(copier.KindBlobCopied, "up/a:v1", "sha256:1", 100, 0)
	ev(copier.KindBlobStart, "up/a:v1", "sha256:0", 0, 0) // an empty blob
	ev(copier.KindBlobCopied, "up/a:v1", "sha256:0", 0, 0)
	ev(copier.KindImageDone, "up/a:v1", "", 0, 0)
	ev(copier.KindImage, "up/b:v1", "", 0, 0)
	ev(copier.KindBlobStart, "up/b:v1", "sha256:2", 100, 0)
	ev(copier.KindBlobProgress, "up/b:v1", "sha256:2", 100, 30)
	ev(copier.KindImageFailed, "up/b:v1", "", 0, 0)
	ev(copier.KindBlobStart, "up/c:v1", "sha256:3", 100, 0) // never ends
	done := make(chan struct{})
	go func() {
		r.summary(copier.Summary{Images: 1, BlobsCopied: 1, Bytes: 100, Duration: time.Second})
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the summary waits for bars that never end")
	}
	out := term.String()
	for _, want := range []string{"copy up/a:v1", "done up/a:v1", "FAILED up/b:v1: boom", "1 image(s): 0 manifests and 1 blobs copied (100 B)"} {
		if !strings.Contains(out, want) {
			t.Errorf("the terminal does not show %q:\n%s", want, out)
		}
	}
}
