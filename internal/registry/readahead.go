package registry

import (
	"context"
	"io"
	"time"
)

// One GET of an S3 object streams at about 90 MB/s; a few ranges of it
// fetched at once keep up with SHA-256. hashRange reads that way, in order,
// at most aheadChunks+1 chunks in memory (of a part, if parts are smaller).
const (
	aheadChunk  = 8 << 20
	aheadChunks = 4
)

// hashRange writes bytes [off, end) of the object at key to h, in order,
// until they end or until passes (at least one chunk), and returns how many
// it wrote. On an error the count says how far h got.
func (r *Registry) hashRange(ctx context.Context, key string, off, end int64, h io.Writer, until time.Time) (int64, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type chunk struct {
		buf  []byte
		err  error
		done chan struct{}
	}
	size := min(int64(aheadChunk), r.opts.directPart) // tests shrink parts
	free := make(chan []byte, aheadChunks+1)
	for range aheadChunks + 1 {
		free <- make([]byte, size)
	}
	queue := make(chan *chunk, aheadChunks)
	go func() {
		defer close(queue)
		for o := off; o < end; o += size {
			var buf []byte
			select {
			case buf = <-free:
			case <-ctx.Done():
				return
			}
			c := &chunk{buf: buf[:min(size, end-o)], done: make(chan struct{})}
			go func(o int64) {
				defer close(c.done)
				rc, err := r.blobs.Open(ctx, key, o, int64(len(c.buf)))
				if err == nil {
					_, err = io.ReadFull(rc, c.buf)
					rc.Close()
				}
				c.err = err
			}(o)
			select {
			case queue <- c:
			case <-ctx.Done():
				<-c.done
				return
			}
		}
	}()
	stop := func() {
		cancel()
		for c := range queue {
			<-c.done
		}
	}
	var n int64
	for c := range queue {
		<-c.done
		if c.err != nil {
			stop()
			return n, c.err
		}
		if n > 0 && !r.opts.now().Before(until) {
			stop()
			return n, nil
		}
		h.Write(c.buf) // a hash never fails
		n += int64(len(c.buf))
		free <- c.buf[:cap(c.buf)]
	}
	return n, nil
}
