package copier

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync/atomic"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// blob copies blob d of the image into the destination repository, unless
// it is there: the upload starts with the existence check (HEAD), which is
// what makes a rerun after an interruption send no finished blob again.
func (t *task) blob(ctx context.Context, d v1.Descriptor) error {
	return t.once("blob "+d.Digest.String(), func() error {
		select {
		case t.c.jobs <- struct{}{}:
		case <-ctx.Done():
			return ctx.Err()
		}
		defer func() { <-t.c.jobs }()
		if t.c.opts.DirectMin > 0 && d.Size >= t.c.opts.DirectMin && t.c.takesDirect(ctx, t.dst) {
			copied, err := t.direct(ctx, d)
			switch {
			case err == nil && copied:
				t.blobsC.Add(1)
				t.bytes.Add(d.Size)
				t.emit(Event{Kind: KindBlobCopied, Digest: d.Digest.String(), MediaType: string(d.MediaType), Size: d.Size, Note: "direct upload"})
				return nil
			case err == nil:
				t.blobsS.Add(1)
				t.emit(Event{Kind: KindBlobSkipped, Digest: d.Digest.String(), MediaType: string(d.MediaType), Size: d.Size})
				return nil
			case !errors.Is(err, errNoDirect):
				return fmt.Errorf("copy blob %s (%d bytes) by direct upload: %w", d.Digest, d.Size, err)
			}
		}
		src, err := t.c.puller.Layer(ctx, t.src.Digest(d.Digest.String()))
		if err != nil {
			return fmt.Errorf("blob %s: %w", d.Digest, err)
		}
		l := &layer{t: t, desc: d, src: src}
		if err := t.c.pusher.Upload(ctx, t.dst, l); err != nil {
			return fmt.Errorf("copy blob %s (%d bytes): %w", d.Digest, d.Size, err)
		}
		if l.opened.Load() {
			t.blobsC.Add(1)
			t.bytes.Add(d.Size)
			t.emit(Event{Kind: KindBlobCopied, Digest: d.Digest.String(), MediaType: string(d.MediaType), Size: d.Size})
			return nil
		}
		t.blobsS.Add(1)
		t.emit(Event{Kind: KindBlobSkipped, Digest: d.Digest.String(), MediaType: string(d.MediaType), Size: d.Size})
		return nil
	})
}

// layer is a source blob as the pusher uploads it: described by the
// manifest's descriptor (no request to learn its size), read from the
// source only if the destination lacks it, and counted as it is sent.
type layer struct {
	t      *task
	desc   v1.Descriptor
	src    v1.Layer
	opened atomic.Bool
}

var errNoDiffID = errors.New("a copied blob is never decompressed")

func (l *layer) Digest() (v1.Hash, error)            { return l.desc.Digest, nil }
func (l *layer) Size() (int64, error)                { return l.desc.Size, nil }
func (l *layer) MediaType() (types.MediaType, error) { return l.desc.MediaType, nil }
func (l *layer) DiffID() (v1.Hash, error)            { return v1.Hash{}, errNoDiffID }
func (l *layer) Uncompressed() (io.ReadCloser, error) {
	return nil, errNoDiffID
}

// Compressed opens the source blob; the pusher calls it once the
// destination said it lacks the blob (again on a retry).
func (l *layer) Compressed() (io.ReadCloser, error) {
	rc, err := l.src.Compressed()
	if err != nil {
		return nil, err
	}
	l.opened.Store(true)
	l.t.emit(Event{Kind: KindBlobStart, Digest: l.desc.Digest.String(), MediaType: string(l.desc.MediaType), Size: l.desc.Size})
	return &counted{ReadCloser: rc, l: l}, nil
}

// counted reports the bytes read from a source blob as they are sent.
type counted struct {
	io.ReadCloser
	l    *layer
	done int64
}

func (c *counted) Read(p []byte) (int, error) {
	n, err := c.ReadCloser.Read(p)
	if n > 0 {
		c.done += int64(n)
		c.l.t.emit(Event{Kind: KindBlobProgress, Digest: c.l.desc.Digest.String(), Size: c.l.desc.Size, Done: c.done})
	}
	return n, err
}
