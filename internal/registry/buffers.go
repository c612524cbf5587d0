package registry

// Part buffers are pooled: a request holds at most one, so memory is
// bounded by partSize times the concurrent writing requests, whatever the
// blob size.

func (r *Registry) getBuffer() []byte {
	if b, ok := r.bufs.Get().(*[]byte); ok && int64(len(*b)) == r.opts.partSize {
		return *b
	}
	return make([]byte, r.opts.partSize)
}

func (r *Registry) putBuffer(b []byte) { r.bufs.Put(&b) }
