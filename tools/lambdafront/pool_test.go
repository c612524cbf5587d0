package main

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// TestInvokeOutlivesViewer checks that an invocation whose viewer gave up
// keeps its instance busy until it ends, as a Lambda execution
// environment stays busy: the emulator serves one invocation at a time.
func TestInvokeOutlivesViewer(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	calls := make(chan string, 4)
	emu := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls <- r.URL.Path
		<-release
		w.Write([]byte(`{"statusCode":200}`))
	}))
	defer emu.Close()
	in := &instance{fn: "blob", invoke: emu.URL + invokePath, exited: make(chan struct{})}
	p := &pool{free: map[string]chan *instance{"blob": make(chan *instance, 1)}, client: emu.Client()}
	p.free["blob"] <- in

	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, _, _, err := p.invoke(ctx, "blob", []byte(`{}`)); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("first invoke: %v, want the viewer's deadline", err)
	}
	if got := <-calls; got != invokePath {
		t.Errorf("emulator called on %s", got)
	}
	// The instance is still busy: a second request waits.
	ctx2, cancel2 := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel2()
	if _, _, _, err := p.invoke(ctx2, "blob", []byte(`{}`)); !errors.Is(err, errNoInstance) {
		t.Fatalf("second invoke while busy: %v, want errNoInstance", err)
	}
	close(release)
	st, body, _, err := p.invoke(context.Background(), "blob", []byte(`{}`))
	if err != nil || st != http.StatusOK || string(body) != `{"statusCode":200}` {
		t.Fatalf("third invoke: %d %s %v", st, body, err)
	}
	if _, _, _, err := p.invoke(context.Background(), "nope", nil); err == nil {
		t.Error("invoke of an unknown function succeeded")
	}
}
