package syncer

import (
	"context"
	"net/http"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"

	"github.com/skiff-registry/skiff/internal/mirror"
)

// TestKeychain: a rule's secret goes to its source registry by the name
// go-containerregistry asks with (docker.io is index.docker.io), and to no
// other registry.
func TestKeychain(t *testing.T) {
	t.Parallel()
	s := &Syncer{Secret: func(context.Context, string) (string, string, error) { return "u", "p", nil }}
	for _, tc := range []struct{ source, tags, asked, other string }{
		{"docker.io/library/alpine:3.20", "", "docker.io/library/alpine", "quay.io/x/y"},
		{"docker.io/library/alpine", "3.*", "index.docker.io/library/alpine", "127.0.0.1:5000/m/a"},
		{"quay.io/org/app:v1", "", "quay.io/org/app", "docker.io/library/alpine"},
	} {
		kc, err := s.keychain(context.Background(), mirror.Rule{Source: tc.source, Tags: tc.tags, Target: "m/a", Credentials: "skiff/mirror/x"})
		if err != nil {
			t.Fatal(err)
		}
		auth := func(repo string) authn.Authenticator {
			r, err := name.NewRepository(repo)
			if err != nil {
				t.Fatal(err)
			}
			a, err := kc.Resolve(r)
			if err != nil {
				t.Fatal(err)
			}
			return a
		}
		if a, ok := auth(tc.asked).(*authn.Basic); !ok || a.Username != "u" {
			t.Errorf("%s: %s gets %v, want the secret's credentials", tc.source, tc.asked, auth(tc.asked))
		}
		if auth(tc.other) != authn.Anonymous {
			t.Errorf("%s: %s gets credentials", tc.source, tc.other)
		}
	}
}

// TestLoopbackToken: the registry's loopback server answers the copier's
// requests, which carry the token, and nothing else; the transport adds the
// token to requests for that server only, never to one that follows a
// redirect.
func TestLoopbackToken(t *testing.T) {
	t.Parallel()
	addr, stop, err := serve(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusTeapot) }), "tok")
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	plain, err := http.Get("http://" + addr + "/v2/")
	if err != nil {
		t.Fatal(err)
	}
	plain.Body.Close()
	if plain.StatusCode != http.StatusForbidden {
		t.Errorf("without the token: %d, want 403", plain.StatusCode)
	}
	c := &http.Client{Transport: tokenTransport{http.DefaultTransport, addr, "tok"}}
	resp, err := c.Get("http://" + addr + "/v2/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusTeapot {
		t.Errorf("with the token: %d, want the handler's 418", resp.StatusCode)
	}
	redirected, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/v2/", nil)
	redirected.Response = &http.Response{StatusCode: http.StatusTemporaryRedirect}
	resp, err = tokenTransport{http.DefaultTransport, addr, "tok"}.RoundTrip(redirected)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("a request following a redirect: %d, want 403 (no token)", resp.StatusCode)
	}
}
