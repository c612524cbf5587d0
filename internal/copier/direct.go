package copier

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"golang.org/x/sync/errgroup"

	"github.com/skiff-registry/skiff/internal/directapi"
)

// Large blobs go to a Skiff registry that advertises direct uploads
// (directapi) straight to its store: the parts are read from the source by
// range, several at once, and PUT to their presigned URLs; the registry
// then hashes what arrived and links the blob only if it is the digest.

// DefaultDirectMin is the smallest blob sent by direct upload: above a
// Lambda function's 4 MiB request body, which the distribution API's one
// PATCH a blob cannot pass.
const DefaultDirectMin = 4 << 20

// partJobs bounds the parts of one blob sent at once.
const partJobs = 4

// errNoDirect means the destination took no direct upload after all: the
// blob goes by the distribution API.
var errNoDirect = errors.New("no direct upload")

// clients holds, per repository and scope, an HTTP client that
// authenticates as go-containerregistry does, and per registry whether it
// takes direct uploads.
type clients struct {
	mu     sync.Mutex
	byRepo map[string]*http.Client
	direct map[string]bool
}

// client returns an authenticated client for repo with scope (pull, or
// push and pull).
func (c *Copier) client(ctx context.Context, repo name.Repository, push bool) (*http.Client, error) {
	scope := repo.Scope(transport.PullScope)
	if push {
		scope = repo.Scope(transport.PushScope)
	}
	key := repo.String() + " " + scope
	c.http.mu.Lock()
	defer c.http.mu.Unlock()
	if hc := c.http.byRepo[key]; hc != nil {
		return hc, nil
	}
	auth, err := authn.Resolve(ctx, c.opts.Keychain, repo)
	if err != nil {
		return nil, fmt.Errorf("credentials for %s: %w", repo, err)
	}
	rt, err := transport.NewWithContext(ctx, repo.Registry, auth, c.opts.Transport, []string{scope})
	if err != nil {
		return nil, err
	}
	if c.opts.UserAgent != "" {
		rt = transport.NewUserAgent(rt, c.opts.UserAgent)
	}
	hc := &http.Client{Transport: rt}
	c.http.byRepo[key] = hc
	return hc, nil
}

// takesDirect reports whether repo's registry advertises direct uploads
// (asked once per registry, on /v2/).
func (c *Copier) takesDirect(ctx context.Context, repo name.Repository) bool {
	reg := repo.RegistryStr()
	c.http.mu.Lock()
	ok, known := c.http.direct[reg]
	c.http.mu.Unlock()
	if known {
		return ok
	}
	hc, err := c.client(ctx, repo, true)
	if err == nil {
		var resp *http.Response
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, repo.Registry.Scheme()+"://"+reg+"/v2/", nil)
		if resp, err = hc.Do(req); err == nil {
			ok = resp.StatusCode == http.StatusOK && resp.Header.Get(directapi.Header) == directapi.Version
			resp.Body.Close()
		}
	}
	c.http.mu.Lock()
	c.http.direct[reg] = ok
	c.http.mu.Unlock()
	return ok
}

// direct sends blob d of the task by direct upload; errNoDirect if the
// destination opened none.
func (t *task) direct(ctx context.Context, d v1.Descriptor) (copied bool, err error) {
	c := t.c
	dst, err := c.client(ctx, t.dst, true)
	if err != nil {
		return false, err
	}
	base := t.dst.Registry.Scheme() + "://" + t.dst.RegistryStr()
	blobURL := base + "/v2/" + t.dst.RepositoryStr() + "/blobs/" + d.Digest.String()
	if resp, err := do(ctx, dst, http.MethodHead, blobURL, nil, -1); err == nil {
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			return false, nil
		}
	}
	src, err := c.client(ctx, t.src, false)
	if err != nil {
		return false, err
	}
	srcURL := t.src.Registry.Scheme() + "://" + t.src.RegistryStr() + "/v2/" + t.src.RepositoryStr() + "/blobs/" + d.Digest.String()
	if !ranges(ctx, src, srcURL) {
		// Parts read whole from a source without ranges would read the
		// blob once per part: the distribution API reads it once.
		return false, errNoDirect
	}
	resp, err := do(ctx, dst, http.MethodPost, base+"/v2/"+t.dst.RepositoryStr()+"/blobs/uploads/?"+directapi.Param+"="+strconv.FormatInt(d.Size, 10), nil, 0)
	if err != nil {
		return false, err
	}
	var start directapi.Start
	err = json.NewDecoder(io.LimitReader(resp.Body, 4<<20)).Decode(&start)
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted || err != nil || len(start.Parts) == 0 {
		if loc := resp.Header.Get("Location"); resp.StatusCode == http.StatusAccepted && loc != "" {
			// A registry that ignored the parameter opened a session of
			// the spec's: drop it.
			if r, err := do(ctx, dst, http.MethodDelete, resolve(base, loc), nil, -1); err == nil {
				r.Body.Close()
			}
		}
		return false, errNoDirect
	}
	t.emit(Event{Kind: KindBlobStart, Digest: d.Digest.String(), MediaType: string(d.MediaType), Size: d.Size, Note: fmt.Sprintf("direct upload, %d parts", len(start.Parts))})
	var sent atomic.Int64
	progress := func(n int) {
		t.emit(Event{Kind: KindBlobProgress, Digest: d.Digest.String(), Size: d.Size, Done: sent.Add(int64(n))})
	}
	etags := make([]directapi.PartETag, len(start.Parts))
	var g errgroup.Group
	g.SetLimit(partJobs)
	off := int64(0)
	for i, p := range start.Parts {
		from := off
		off += p.Size
		g.Go(func() error {
			etag, err := putPart(ctx, src, srcURL, from, p, c.opts.Transport, progress)
			if err != nil {
				return fmt.Errorf("part %d of %d: %w", p.Number, len(start.Parts), err)
			}
			etags[i] = directapi.PartETag{Number: p.Number, ETag: etag}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return false, err
	}
	body, _ := json.Marshal(directapi.CompleteBody{Parts: etags})
	complete := base + start.Location + "?" + directapi.Param + "=" + directapi.Complete + "&digest=" + d.Digest.String()
	verify := base + start.Location + "?" + directapi.Param + "=" + directapi.Verify
	// Until 201. A request that failed on the way (a timeout, a 5xx), or
	// found the session held by one that did (416, until its lease ends), or
	// was throttled (429),
	// is sent again: the registry takes a completion twice, and goes on
	// verifying from where it saved.
	next, payload := complete, body
	backoff := time.Second
	for waited := time.Duration(0); ; {
		resp, err := do(ctx, dst, http.MethodPut, next, payload, int64(len(payload)))
		var status int
		var msg []byte
		if err == nil {
			status = resp.StatusCode
			msg, _ = io.ReadAll(io.LimitReader(resp.Body, 64<<10))
			resp.Body.Close()
		}
		switch {
		case status == http.StatusCreated:
			return true, nil
		case status == http.StatusAccepted:
			// Progress: the budget for failures starts again.
			next, payload, backoff, waited = verify, nil, time.Second, 0
			continue
		case err != nil && ctx.Err() != nil:
			return false, err
		case err == nil && status != http.StatusRequestedRangeNotSatisfiable && status != http.StatusTooManyRequests && status < 500:
			return false, fmt.Errorf("PUT %s: %s", next, registryError(status, msg))
		case waited > 2*time.Minute:
			if err != nil {
				return false, err
			}
			return false, fmt.Errorf("PUT %s: %s (for %s)", next, registryError(status, msg), waited.Round(time.Second))
		}
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return false, ctx.Err()
		}
		waited += backoff
		backoff = min(2*backoff, 10*time.Second)
	}
}

// ranges reports whether the source answers a range of the blob at url.
func ranges(ctx context.Context, hc *http.Client, url string) bool {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return false
	}
	req.Header.Set("Range", "bytes=0-0")
	resp, err := hc.Do(req)
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<10))
	return resp.StatusCode == http.StatusPartialContent
}

// putPart reads bytes [from, from+p.Size) of the source blob and PUTs them
// to the part's URL; it returns the ETag. It tries three times.
func putPart(ctx context.Context, src *http.Client, srcURL string, from int64, p directapi.Part, rt http.RoundTripper, progress func(int)) (string, error) {
	var last error
	for range 3 {
		etag, err := func() (string, error) {
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, srcURL, nil)
			if err != nil {
				return "", err
			}
			req.Header.Set("Range", fmt.Sprintf("bytes=%d-%d", from, from+p.Size-1))
			resp, err := src.Do(req)
			if err != nil {
				return "", err
			}
			defer resp.Body.Close()
			var body io.Reader = resp.Body
			switch resp.StatusCode {
			case http.StatusPartialContent:
			default:
				msg, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
				return "", fmt.Errorf("read the source blob: %s", registryError(resp.StatusCode, msg))
			}
			put, err := http.NewRequestWithContext(ctx, http.MethodPut, p.URL, &progressReader{r: io.LimitReader(body, p.Size), f: progress})
			if err != nil {
				return "", err
			}
			put.ContentLength = p.Size
			presp, err := rt.RoundTrip(put)
			if err != nil {
				return "", err
			}
			defer presp.Body.Close()
			if presp.StatusCode != http.StatusOK {
				msg, _ := io.ReadAll(io.LimitReader(presp.Body, 64<<10))
				return "", fmt.Errorf("PUT the part to the store: %d %s", presp.StatusCode, bytes.TrimSpace(msg))
			}
			etag := presp.Header.Get("ETag")
			if etag == "" {
				return "", errors.New("the store answered the part's PUT without an ETag")
			}
			return etag, nil
		}()
		if err == nil {
			return etag, nil
		}
		last = err
		if ctx.Err() != nil {
			break
		}
	}
	return "", last
}

type progressReader struct {
	r io.Reader
	f func(int)
}

func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	if n > 0 {
		p.f(n)
	}
	return n, err
}

func do(ctx context.Context, hc *http.Client, method, url string, body []byte, size int64) (*http.Response, error) {
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, r)
	if err != nil {
		return nil, err
	}
	if size >= 0 {
		req.ContentLength = size
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	return hc.Do(req)
}

// resolve makes a Location absolute against base.
func resolve(base, loc string) string {
	if len(loc) > 0 && loc[0] == '/' {
		return base + loc
	}
	return loc
}

// registryError says what a registry's error answer says.
func registryError(status int, body []byte) string {
	var env struct {
		Errors []struct{ Code, Message string }
	}
	if json.Unmarshal(body, &env) == nil && len(env.Errors) > 0 {
		var s string
		for i, e := range env.Errors {
			if i > 0 {
				s += "; "
			}
			s += e.Code + ": " + e.Message
		}
		return fmt.Sprintf("%d %s", status, s)
	}
	return fmt.Sprintf("%d %s", status, bytes.TrimSpace(body))
}
