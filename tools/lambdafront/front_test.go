package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/google/go-cmp/cmp"

	"github.com/skiff-registry/skiff/internal/lambdaweb"
)

// fakeInvoker records the last event and answers with reply.
type fakeInvoker struct {
	fn     string
	event  events.LambdaFunctionURLRequest
	status int
	reply  []byte
}

func (f *fakeInvoker) invoke(_ context.Context, fn string, payload []byte) (int, []byte, *instance, error) {
	f.fn = fn
	if err := json.Unmarshal(payload, &f.event); err != nil {
		return 0, nil, nil, err
	}
	if f.status == 0 {
		f.status = http.StatusOK
	}
	return f.status, f.reply, &instance{fn: fn}, nil
}

func newFront(inv invoker) *httptest.Server {
	f := &front{inv: inv, originSecret: "the-secret", log: slog.New(slog.DiscardHandler),
		now: func() time.Time { return time.Unix(1795716000, 0) }}
	srv := httptest.NewServer(f)
	return srv
}

func reply(t *testing.T, r events.LambdaFunctionURLResponse) []byte {
	t.Helper()
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestEvent(t *testing.T) {
	t.Parallel()
	inv := &fakeInvoker{reply: reply(t, events.LambdaFunctionURLResponse{StatusCode: 202})}
	srv := newFront(inv)
	defer srv.Close()

	body := []byte{0, 1, 2, 0xff, 'a'}
	req, err := http.NewRequest(http.MethodPatch, srv.URL+"/v2/team%2Fapp/blobs/uploads/abc?x=a+b&y=c%2Fd", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/octet-stream")
	req.Header.Add("Accept", "a/b")
	req.Header.Add("Accept", "c/d")
	req.Header.Set("Cookie", "a=1; b=2")
	req.Header.Set("X-Forwarded-For", "192.0.2.1")
	req.Header.Set("X-Skiff-Viewer-Ip", "192.0.2.66")
	req.Header.Set("X-Skiff-Origin-Secret", "forged")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("status %d", resp.StatusCode)
	}
	ev := inv.event
	if inv.fn != "blob" {
		t.Errorf("routed to %s, want blob", inv.fn)
	}
	host := strings.TrimPrefix(srv.URL, "http://")
	want := map[string]string{
		"host":                       "blob-function.lambda-url.us-east-1.on.aws",
		"accept":                     "a/b,c/d",
		"content-type":               "application/octet-stream",
		"content-length":             "5",
		"accept-encoding":            "gzip",
		"user-agent":                 "Go-http-client/1.1",
		"x-forwarded-for":            "192.0.2.1, 127.0.0.1",
		"x-forwarded-host":           host,
		"x-skiff-viewer-ip":          "127.0.0.1",
		"x-forwarded-proto":          "http",
		"x-forwarded-port":           host[strings.LastIndex(host, ":")+1:],
		"via":                        "2.0 lambdafront.cloudfront.net (CloudFront)",
		"cloudfront-forwarded-proto": "http",
		"x-skiff-origin-secret":      "the-secret",
	}
	for k, v := range want {
		if ev.Headers[k] != v {
			t.Errorf("header %s = %q, want %q", k, ev.Headers[k], v)
		}
	}
	for _, k := range []string{"cookie", "x-amz-cf-id", "x-amzn-trace-id", "cloudfront-viewer-address"} {
		if _, ok := ev.Headers[k]; ok == (k == "cookie") {
			t.Errorf("header %s present: %v", k, ok)
		}
	}
	for k := range ev.Headers {
		if k != strings.ToLower(k) {
			t.Errorf("header %q is not lower-case", k)
		}
	}
	if diff := cmp.Diff(ev.Cookies, []string{"a=1", "b=2"}); diff != "" {
		t.Errorf("cookies (-got +want):\n%s", diff)
	}
	if ev.RawPath != "/v2/team%2Fapp/blobs/uploads/abc" || ev.RawQueryString != "x=a+b&y=c%2Fd" {
		t.Errorf("rawPath %q rawQueryString %q", ev.RawPath, ev.RawQueryString)
	}
	if diff := cmp.Diff(ev.QueryStringParameters, map[string]string{"x": "a b", "y": "c/d"}); diff != "" {
		t.Errorf("queryStringParameters (-got +want):\n%s", diff)
	}
	if !ev.IsBase64Encoded || ev.Body != base64.StdEncoding.EncodeToString(body) {
		t.Errorf("body %q (base64 %v)", ev.Body, ev.IsBase64Encoded)
	}
	c := ev.RequestContext
	if c.HTTP.Method != "PATCH" || c.HTTP.Path != ev.RawPath || c.HTTP.SourceIP != "127.0.0.1" || c.DomainName != ev.Headers["host"] || c.TimeEpoch != 1795716000000 {
		t.Errorf("requestContext %+v", c)
	}
}

func TestTextBody(t *testing.T) {
	t.Parallel()
	inv := &fakeInvoker{reply: reply(t, events.LambdaFunctionURLResponse{StatusCode: 201})}
	srv := newFront(inv)
	defer srv.Close()
	manifest := `{"schemaVersion":2,"note":"café"}`
	req, _ := http.NewRequest(http.MethodPut, srv.URL+"/v2/a/manifests/v1", strings.NewReader(manifest))
	req.Header.Set("Content-Type", "application/vnd.oci.image.manifest.v1+json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if inv.fn != "manifest" || inv.event.IsBase64Encoded || inv.event.Body != manifest {
		t.Errorf("fn %s, body %q (base64 %v)", inv.fn, inv.event.Body, inv.event.IsBase64Encoded)
	}
}

func TestResponse(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		method     string
		status     int
		reply      string
		wantStatus int
		wantHeader map[string]string
		wantBody   string
	}{
		{
			name:       "redirect passes through",
			reply:      `{"statusCode":307,"headers":{"Location":"http://s3.local/bucket/blob?X-Amz-Signature=x","Content-Type":"application/json"}}`,
			wantStatus: 307, wantHeader: map[string]string{"Location": "http://s3.local/bucket/blob?X-Amz-Signature=x"},
		},
		{
			name:       "base64 body and cookies",
			reply:      `{"statusCode":200,"headers":{"Content-Type":"application/octet-stream"},"body":"AAEC/w==","isBase64Encoded":true,"cookies":["a=1","b=2"]}`,
			wantStatus: 200, wantHeader: map[string]string{"Content-Type": "application/octet-stream", "Content-Length": "4"},
			wantBody: "\x00\x01\x02\xff",
		},
		{
			name:       "HEAD keeps the function's Content-Length",
			method:     http.MethodHead,
			reply:      `{"statusCode":200,"headers":{"Content-Type":"application/octet-stream","Content-Length":"1234","Docker-Content-Digest":"sha256:abc"}}`,
			wantStatus: 200, wantHeader: map[string]string{"Content-Length": "1234", "Docker-Content-Digest": "sha256:abc"},
		},
		{
			name:       "no Content-Type is not sniffed",
			reply:      `{"statusCode":200,"headers":{},"body":"<html></html>"}`,
			wantStatus: 200, wantHeader: map[string]string{"Content-Type": ""}, wantBody: "<html></html>",
		},
		{
			name:       "function error",
			reply:      `{"errorMessage":"boom","errorType":"runtime.Error"}`,
			wantStatus: 502, wantBody: `{"Message":"Internal Server Error"}`,
		},
		{
			name:       "emulator failure",
			status:     502,
			reply:      `whatever`,
			wantStatus: 502, wantBody: `{"Message":"Internal Server Error"}`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := newFront(&fakeInvoker{status: tc.status, reply: []byte(tc.reply)})
			defer srv.Close()
			method := tc.method
			if method == "" {
				method = http.MethodGet
			}
			req, _ := http.NewRequest(method, srv.URL+"/v2/a/blobs/sha256:abc", nil)
			client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.wantStatus || string(b) != tc.wantBody {
				t.Errorf("got %d %q, want %d %q", resp.StatusCode, b, tc.wantStatus, tc.wantBody)
			}
			for k, v := range tc.wantHeader {
				if got := resp.Header.Get(k); got != v {
					t.Errorf("header %s = %q, want %q", k, got, v)
				}
			}
			if tc.name == "base64 body and cookies" && len(resp.Header.Values("Set-Cookie")) != 2 {
				t.Errorf("Set-Cookie %v", resp.Header.Values("Set-Cookie"))
			}
		})
	}
}

func TestPayloadLimit(t *testing.T) {
	t.Parallel()
	inv := &fakeInvoker{reply: reply(t, events.LambdaFunctionURLResponse{StatusCode: 202})}
	srv := newFront(inv)
	defer srv.Close()
	for _, tc := range []struct {
		size int
		want int
	}{
		{4 << 20, http.StatusAccepted},                              // 5.33 MiB as base64: fits
		{(4 << 20) + (512 << 10), http.StatusRequestEntityTooLarge}, // 6 MiB as base64: does not
		{7 << 20, http.StatusRequestEntityTooLarge},
	} {
		req, _ := http.NewRequest(http.MethodPatch, srv.URL+"/v2/a/blobs/uploads/x", bytes.NewReader(make([]byte, tc.size)))
		req.Header.Set("Content-Type", "application/octet-stream")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("body of %d bytes: status %d, want %d (%s)", tc.size, resp.StatusCode, tc.want, b)
		}
	}
}

// adapterInvoker runs lambdaweb's adapter in process, through the same
// JSON as the emulator would carry.
type adapterInvoker struct{ h lambdaweb.HandlerFunc }

func (a adapterInvoker) invoke(ctx context.Context, fn string, payload []byte) (int, []byte, *instance, error) {
	var ev events.LambdaFunctionURLRequest
	if err := json.Unmarshal(payload, &ev); err != nil {
		return 0, nil, nil, err
	}
	resp, err := a.h(ctx, &ev)
	if err != nil {
		return 0, nil, nil, err
	}
	b, err := json.Marshal(resp)
	return http.StatusOK, b, &instance{fn: fn}, err
}

// TestThroughAdapter sends requests through the front door and the real
// adapter: what the handler sees is what a plain net/http server would
// have seen, and its answer comes back byte for byte.
func TestThroughAdapter(t *testing.T) {
	t.Parallel()
	var got *http.Request
	var gotBody []byte
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r
		gotBody, _ = io.ReadAll(r.Body)
		w.Header().Set("Content-Type", r.Header.Get("Content-Type"))
		w.Header().Set("Link", `</v2/_catalog?n=1&last=a>; rel="next"`)
		w.Write(gotBody)
	})
	srv := newFront(adapterInvoker{lambdaweb.Handler(h, lambdaweb.WithOriginSecret("the-secret"))})
	defer srv.Close()

	for _, ct := range []string{"application/octet-stream", "application/vnd.oci.image.index.v1+json"} {
		body := []byte(`{"a":"é"}` + "\x00\xff")
		if strings.HasSuffix(ct, "json") {
			body = []byte(`{"a":"é <&>"}`)
		}
		req, _ := http.NewRequest(http.MethodPut, srv.URL+"/v2/a%2Fb/manifests/v1?tag=x+y&tag=z%2F", bytes.NewReader(body))
		req.Header.Set("Content-Type", ct)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !bytes.Equal(b, body) || resp.Header.Get("Content-Type") != ct {
			t.Errorf("%s: got %d %q (%s), want 200 %q", ct, resp.StatusCode, b, resp.Header.Get("Content-Type"), body)
		}
		if got.URL.Path != "/v2/a/b/manifests/v1" || got.URL.RawPath != "/v2/a%2Fb/manifests/v1" || got.URL.RawQuery != "tag=x+y&tag=z%2F" {
			t.Errorf("handler saw path %q raw %q query %q", got.URL.Path, got.URL.RawPath, got.URL.RawQuery)
		}
		if !bytes.Equal(gotBody, body) || got.ContentLength != int64(len(body)) || got.Header.Get("X-Skiff-Origin-Secret") != "" {
			t.Errorf("handler saw body %q (length %d), secret %q", gotBody, got.ContentLength, got.Header.Get("X-Skiff-Origin-Secret"))
		}
	}
}
