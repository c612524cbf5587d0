package awsstore

import (
	"context"
	"io"
	"maps"
	"sync"
	"sync/atomic"

	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// Counter counts the AWS requests of every client it is added to, by
// service and operation ("S3.PutObject", "DynamoDB.GetItem"), plus the body
// bytes sent and received. Each HTTP attempt counts, retries included;
// presigning sends nothing and counts nothing. It is safe for concurrent use.
//
// Add it to a client through its API options, or to every client built from
// one aws.Config:
//
//	c := awsstore.NewCounter()
//	cfg.APIOptions = append(cfg.APIOptions, c.Middleware)
//	// or s3.NewFromConfig(cfg, s3.WithAPIOptions(c.Middleware))
type Counter struct {
	mu       sync.Mutex
	ops      map[string]int
	sent     atomic.Int64
	received atomic.Int64
}

// NewCounter returns a Counter at zero.
func NewCounter() *Counter {
	return &Counter{ops: map[string]int{}}
}

// counterID names the middleware in the stack.
const counterID = "SkiffRequestCounter"

// Middleware adds the counter to an operation's middleware stack. It sits
// last in the Deserialize step, next to the HTTP transport, so it sees every
// attempt and the raw bodies (a GetObject body is counted as the caller
// reads it).
func (c *Counter) Middleware(stack *middleware.Stack) error {
	return stack.Deserialize.Add(counterMiddleware{c}, middleware.After)
}

// Snapshot returns the requests counted so far by "Service.Operation".
func (c *Counter) Snapshot() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return maps.Clone(c.ops)
}

// Bytes returns the request body bytes sent and the response body bytes
// received so far (bodies only: no headers, no TLS framing).
func (c *Counter) Bytes() (sent, received int64) {
	return c.sent.Load(), c.received.Load()
}

// Reset sets every count back to zero.
func (c *Counter) Reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	clear(c.ops)
	c.sent.Store(0)
	c.received.Store(0)
}

type counterMiddleware struct{ c *Counter }

func (counterMiddleware) ID() string { return counterID }

func (m counterMiddleware) HandleDeserialize(ctx context.Context, in middleware.DeserializeInput, next middleware.DeserializeHandler) (
	middleware.DeserializeOutput, middleware.Metadata, error,
) {
	op := awsmiddleware.GetServiceID(ctx) + "." + awsmiddleware.GetOperationName(ctx)
	m.c.mu.Lock()
	m.c.ops[op]++
	m.c.mu.Unlock()

	if req, ok := in.Request.(*smithyhttp.Request); ok {
		// A *io.PipeReader gets special treatment in Request.Build; leave it.
		if s := req.GetStream(); s != nil {
			if _, pipe := s.(*io.PipeReader); !pipe {
				if counted, err := req.SetStream(&countingReader{r: s, n: &m.c.sent}); err == nil {
					in.Request = counted
				}
			}
		}
	}
	out, md, err := next.HandleDeserialize(ctx, in)
	if resp, ok := out.RawResponse.(*smithyhttp.Response); ok && resp.Body != nil {
		resp.Body = &countingReadCloser{countingReader{r: resp.Body, n: &m.c.received}, resp.Body}
	}
	return out, md, err
}

// countingReader adds the bytes read through it to n.
type countingReader struct {
	r io.Reader
	n *atomic.Int64
}

func (r *countingReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	r.n.Add(int64(n))
	return n, err
}

type countingReadCloser struct {
	countingReader
	io.Closer
}
