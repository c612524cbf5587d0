package integration

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/skiff-registry/skiff/internal/auth"
)

// authErrorRE matches how the clients report a refusal by the registry's
// access control (401 with a challenge, 401 insufficient_scope, 403 DENIED).
var authErrorRE = regexp.MustCompile(`(?i)unauthori[sz]ed|authentication required|denied|insufficient_scope|\b40[13]\b`)

// TestClientLogin: each real client (skopeo, regctl, crane, oras; podman in
// a subtest of its own, podmanLogin) logs in to `skiff serve --auth` with a
// user's password on stdin, its configuration isolated in a temp HOME, and
// then works through the token flow:
//
//   - without logging in, the client's push is refused with an auth error
//     and nothing lands; after the push below, its pull is refused too;
//   - logged in as pusher (pull,push on login/), it pushes an image from an
//     OCI layout, copies it to another repository and pulls the copy back,
//     with every digest and byte unchanged (oras also pushes and pulls a
//     file artifact with oras push / oras pull);
//   - logged in as puller (pull on login/), it pulls the image, and its push
//     into login/ is refused with an auth error and writes nothing.
//
// Every refusal is also checked in the server log: the refused repository
// got 401/403 answers and no write request there succeeded. On an external
// registry, whose log the harness can't read, by asking the registry
// instead (expectRefused).
func TestClientLogin(t *testing.T) {
	t.Parallel()
	const kib = 1024
	pusher := &authUser{name: "pusher", password: newPassword(), grants: []authGrant{{"login/", "pull,push"}}}
	puller := &authUser{name: "puller", password: newPassword(), grants: []authGrant{{"login/", "pull"}}}
	reg := startAuthRegistry(t, []*authUser{pusher, puller})

	for _, client := range regClients {
		t.Run(client.name, func(t *testing.T) {
			t.Parallel() // separate repositories and HOMEs
			img := newImage(t, "login/"+client.name+"/image", threePlatforms[0], 200*kib, 100*kib)
			layout := filepath.Join(t.TempDir(), "push")
			img.writeLayout(t, layout, "v1")
			repo := reg.repo("login/" + client.name + "/image")
			copyRepo := repo + "-copy"
			ref := reg.host + "/" + repo + ":v1"
			copyRef := reg.host + "/" + copyRepo + ":v1"

			// newClient is the client in a fresh isolated HOME, set up for
			// plain HTTP, and logged in as user when user is not nil.
			newClient := func(t *testing.T, user *authUser) *toolbox {
				tb := newToolbox(t, client.tool)
				if client.setup != nil {
					client.setup(tb, reg.host)
				}
				if user != nil {
					out := tb.runStdin(user.password+"\n", client.tool, client.loginArgs(reg.host, user.name)...)
					if strings.Contains(out, user.password) {
						t.Errorf("%s login printed the password", client.name)
					}
				}
				return tb
			}

			ok := t.Run("anonymous-push-refused", func(t *testing.T) {
				tb := newClient(t, nil)
				anonRepo := reg.repo("login/" + client.name + "/anonymous")
				stdout, stderr, err := tb.exec(client.tool, client.pushArgs(layout, "v1", reg.host+"/"+anonRepo+":v1")...)
				expectAuthRefusal(t, client.name+" push without login", stdout+stderr, err)
				expectAbsent(t, reg, anonRepo, "v1", img)
				expectRefused(t, reg, anonRepo, nil)
			})
			ok = ok && t.Run("pusher-push-copy-pull", func(t *testing.T) {
				tb := newClient(t, pusher)
				client.push(tb, layout, "v1", ref)
				img.verifyRemote(t, reg, repo, "v1")
				if t.Failed() {
					return
				}
				client.copy(tb, ref, copyRef)
				img.verifyRemote(t, reg, copyRepo, "v1")
				if t.Failed() {
					return
				}
				pulled := filepath.Join(t.TempDir(), "pull")
				client.pull(tb, copyRef, pulled, "v1")
				img.verifyLayout(t, pulled)
				if client.name == "oras" {
					orasArtifact(t, reg, tb)
				}
			})
			if !ok {
				return // the rest needs the pushed image
			}
			t.Run("anonymous-pull-refused", func(t *testing.T) {
				tb := newClient(t, nil)
				stdout, stderr, err := tb.exec(client.tool, client.pullArgs(ref, filepath.Join(t.TempDir(), "pull"), "v1")...)
				expectAuthRefusal(t, client.name+" pull without login", stdout+stderr, err)
			})
			t.Run("puller-pull-ok-push-refused", func(t *testing.T) {
				tb := newClient(t, puller)
				pulled := filepath.Join(t.TempDir(), "pull")
				client.pull(tb, ref, pulled, "v1")
				img.verifyLayout(t, pulled)

				denied := reg.repo("login/" + client.name + "/denied")
				stdout, stderr, err := tb.exec(client.tool, client.pushArgs(layout, "v1", reg.host+"/"+denied+":v1")...)
				expectAuthRefusal(t, client.name+" push as the pull-only user", stdout+stderr, err)
				expectAbsent(t, reg, denied, "v1", img)
				expectRefused(t, reg, denied, puller)
			})
		})
	}
	// podman pushes from its own storage, with digests of its own
	// (podman_test.go), so it has a subtest of its own with the same
	// steps and checks.
	t.Run("podman", func(t *testing.T) {
		t.Parallel()
		podmanLogin(t, reg, pusher, puller)
	})
}

// podmanLogin is TestClientLogin for podman: `podman login --tls-verify=false
// -u USER --password-stdin HOST` into its isolated $REGISTRY_AUTH_FILE, and
// pushes of an image podman first pulls from an OCI layout into its
// storage. The pusher goes first here: the digests of what podman pushes
// (the layers compressed again) are known only after a push, and the
// refused pushes are then checked to have left none of them either.
func podmanLogin(t *testing.T, reg *registry, pusher, puller *authUser) {
	const kib = 1024
	img := newImage(t, "login/podman/image", threePlatforms[0], 200*kib, 100*kib)
	layout := podmanLayoutDir(t)
	img.writeLayout(t, layout, "v1")
	repo := reg.repo("login/podman/image")
	ref := reg.host + "/" + repo + ":v1"

	// newClient is podman in a fresh isolated storage and HOME, logged in
	// as user when user is not nil, with img in its storage when local.
	newClient := func(t *testing.T, user *authUser, local bool) *toolbox {
		tb := newToolbox(t, "podman")
		if user != nil {
			out := tb.runStdin(user.password+"\n", "podman", "login", "--tls-verify=false", "-u", user.name, "--password-stdin", reg.host)
			if strings.Contains(out, user.password) {
				t.Errorf("podman login printed the password")
			}
			// The login must land in the toolbox's auth file, nowhere else.
			raw, err := os.ReadFile(tb.getenv("REGISTRY_AUTH_FILE"))
			var conf struct {
				Auths map[string]json.RawMessage `json:"auths"`
			}
			if err != nil || json.Unmarshal(raw, &conf) != nil || conf.Auths[reg.host] == nil {
				t.Errorf("podman login: $REGISTRY_AUTH_FILE has no entry for %s (err %v):\n%s", reg.host, err, raw)
			}
		}
		if local {
			tb.run("podman", tb.podmanTransfer("pull", "oci:"+layout+":v1")...)
		}
		return tb
	}
	// refusedPush pushes img as user (anonymous when nil) to repo and checks
	// the auth error and that nothing landed: neither img nor what podman
	// pushed for the pusher.
	var pushed *content
	refusedPush := func(t *testing.T, user *authUser, repo string) {
		tb := newClient(t, user, true)
		stdout, stderr, err := tb.exec("podman", tb.podmanTransfer("push", img.imageID(t), reg.host+"/"+repo+":v1")...)
		what := "podman push without login"
		if user != nil {
			what = "podman push as " + user.name
		}
		expectAuthRefusal(t, what, stdout+stderr, err)
		expectAbsent(t, reg, repo, "v1", img)
		expectAbsent(t, reg, repo, "v1", pushed)
		expectRefused(t, reg, repo, user)
	}

	ok := t.Run("pusher-push-pull", func(t *testing.T) {
		tb := newClient(t, pusher, true)
		tb.run("podman", tb.podmanTransfer("push", img.imageID(t), ref)...)
		pushed = verifyPodmanPush(t, reg, repo, "v1", img)
		if t.Failed() {
			return
		}
		fresh := newClient(t, pusher, false)
		fresh.run("podman", fresh.podmanTransfer("pull", ref)...)
		checkPodmanImage(t, fresh, ref, img)
	})
	if !ok {
		return // the rest needs the pushed image
	}
	t.Run("anonymous-push-refused", func(t *testing.T) {
		refusedPush(t, nil, reg.repo("login/podman/anonymous"))
	})
	t.Run("anonymous-pull-refused", func(t *testing.T) {
		tb := newClient(t, nil, false)
		stdout, stderr, err := tb.exec("podman", tb.podmanTransfer("pull", ref)...)
		expectAuthRefusal(t, "podman pull without login", stdout+stderr, err)
	})
	t.Run("puller-pull-ok-push-refused", func(t *testing.T) {
		tb := newClient(t, puller, false)
		tb.run("podman", tb.podmanTransfer("pull", ref)...)
		checkPodmanImage(t, tb, ref, img)
		refusedPush(t, puller, reg.repo("login/podman/denied"))
	})
}

// expectAuthRefusal checks that a client command failed with an auth error
// (authErrorRE) and logs the line that says so.
func expectAuthRefusal(t *testing.T, what, output string, err error) {
	t.Helper()
	expectFailureRE(t, what, output, err, authErrorRE)
	for _, line := range strings.Split(output, "\n") {
		if err != nil && authErrorRE.MatchString(line) {
			t.Logf("%s refused as expected: %s", what, truncate(strings.TrimSpace(line), 300))
			return
		}
	}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// orasArtifact pushes a file as an artifact with `oras push` (tb is logged
// in as a user who may push under login/), pulls it back with `oras pull`,
// and checks the file, its digest in the manifest and the manifest digest
// oras reported.
func orasArtifact(t *testing.T, reg *registry, tb *toolbox) {
	t.Helper()
	data := randomBytes(newRand("login/oras/artifact"), 64*1024)
	if err := os.WriteFile(filepath.Join(tb.dir, "payload.bin"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	repo := reg.repo("login/oras/artifact")
	ref := reg.host + "/" + repo + ":v1"
	out := tb.run("oras", "push", "--no-tty", "--plain-http", "--artifact-type", "application/vnd.skiff.test.artifact",
		ref, "payload.bin:application/octet-stream")
	m := regexp.MustCompile(`Digest: (sha256:[0-9a-f]{64})`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("oras push printed no manifest digest:\n%s", indent(out))
	}
	man, resp := readManifest(t, reg, repo, "v1")
	if got := digest.FromBytes(resp.body); got.String() != m[1] {
		t.Errorf("oras push reported manifest %s, the registry serves %s", m[1], got)
	}
	if len(man.Layers) != 1 || man.Layers[0].Digest != digest.FromBytes(data) || man.Layers[0].Size != int64(len(data)) {
		raw, _ := json.Marshal(man.Layers)
		t.Errorf("artifact layers %s, want one of %d bytes with digest %s", raw, len(data), digest.FromBytes(data))
	}
	outDir := filepath.Join(t.TempDir(), "oras-pull")
	tb.run("oras", "pull", "--no-tty", "--plain-http", "-o", outDir, ref)
	got, err := os.ReadFile(filepath.Join(outDir, "payload.bin"))
	if err != nil {
		t.Fatalf("oras pull: %v", err)
	}
	if !bytes.Equal(got, data) {
		t.Errorf("oras pull: payload.bin differs: %d bytes with digest %s, want %d bytes with digest %s",
			len(got), digest.FromBytes(got), len(data), digest.FromBytes(data))
	}
}

// expectAbsent checks, as the harness admin, that nothing of c landed in
// repo: no tag, no manifest, no blob.
func expectAbsent(t *testing.T, reg *registry, repo, tag string, c *content) {
	t.Helper()
	resp := send(t, http.MethodGet, reg.url("/v2/"+repo+"/tags/list"), reg.authed(nil, repo), nil)
	var list struct {
		Tags []string `json:"tags"`
	}
	switch {
	case resp.status == http.StatusNotFound:
	case resp.status == http.StatusOK && json.Unmarshal(resp.body, &list) == nil && len(list.Tags) == 0:
	default:
		t.Errorf("GET %s tags/list after a refused write: want no tags, got %s", repo, resp)
	}
	if resp := send(t, http.MethodHead, reg.url("/v2/"+repo+"/manifests/"+tag), reg.authed(acceptManifests(), repo), nil); resp.status != http.StatusNotFound {
		t.Errorf("HEAD %s:%s after a refused write: want 404, got %s", repo, tag, resp)
	}
	for _, d := range c.digests() {
		kind := "blobs"
		if c.objects[d].isManifest {
			kind = "manifests"
		}
		if resp := send(t, http.MethodHead, reg.url("/v2/"+repo+"/"+kind+"/"+d.String()), reg.authed(acceptManifests(), repo), nil); resp.status != http.StatusNotFound {
			t.Errorf("HEAD %s %s@%s after a refused write: want 404, got %s", kind, repo, d, resp)
		}
	}
}

// expectRefused checks that the registry refused user's writes into repo
// (anonymous when user is nil), after the client's refused push: in the
// server log (expectRefusedInLog) when the server is the test's own. An
// external registry's log is not the harness's: there the registry is
// asked, as that caller, to start an upload in repo, which it must refuse
// (401 for an anonymous caller and for the user's token without push, 403
// for the user's Basic credentials); expectAbsent has checked that the
// refused push left nothing behind.
func expectRefused(t *testing.T, reg *registry, repo string, user *authUser) {
	t.Helper()
	if !reg.external {
		name := ""
		if user != nil {
			name = user.name
		}
		expectRefusedInLog(t, reg, repo, name)
		return
	}
	upload := reg.url("/v2/" + repo + "/blobs/uploads/")
	type probe struct {
		what   string
		header http.Header
		want   int
		reason string // in the challenge of a 401
	}
	probes := []probe{{"anonymous", nil, http.StatusUnauthorized, ""}}
	if user != nil {
		scope := auth.Scope{Type: auth.TypeRepository, Name: repo, Actions: []string{auth.ActionPull, auth.ActionPush}}
		tok, _, err := reg.tokens.fetch(user.name, user.password, scope)
		if err != nil {
			t.Fatalf("%s asks for %s: %v", user.name, scope, err)
		}
		basic := http.Header{}
		(&http.Request{Header: basic}).SetBasicAuth(user.name, user.password)
		probes = []probe{
			{user.name + "'s token for " + scope.String(), http.Header{"Authorization": {"Bearer " + tok}}, http.StatusUnauthorized, `error="insufficient_scope"`},
			{user.name + " with Basic credentials", basic, http.StatusForbidden, ""},
		}
	}
	for _, p := range probes {
		resp := send(t, http.MethodPost, upload, p.header, nil)
		if resp.status != p.want || !strings.Contains(resp.header.Get("WWW-Authenticate"), p.reason) {
			t.Errorf("POST %s as %s: want %d %s, got %s", upload, p.what, p.want, p.reason, resp)
		}
	}
}

// expectRefusedInLog checks the server log for repo: at least one request
// was refused (401 or 403), with user as the caller of some refused request
// when user is not "" (anonymous callers are logged with an empty user, a
// token's bearer with its name), and no write request (POST, PUT, PATCH,
// DELETE) there succeeded.
func expectRefusedInLog(t *testing.T, reg *registry, repo, user string) {
	t.Helper()
	var refused, byUser int
	for _, line := range strings.Split(reg.log.String(), "\n") {
		var l struct {
			Msg    string `json:"msg"`
			Method string `json:"method"`
			Repo   string `json:"repo"`
			User   string `json:"user"`
			Status int    `json:"status"`
		}
		if json.Unmarshal([]byte(line), &l) != nil || l.Msg != "request" || l.Repo != repo {
			continue
		}
		switch {
		case l.Status == http.StatusUnauthorized || l.Status == http.StatusForbidden:
			refused++
			if l.User == user {
				byUser++
			}
		case l.Status < 300 && l.Method != http.MethodGet && l.Method != http.MethodHead:
			t.Errorf("server log: a %s on %s succeeded (%d, user %q) although it should have been refused:\n%s", l.Method, repo, l.Status, l.User, line)
		}
	}
	if refused == 0 {
		t.Errorf("server log: no request on %s was refused with 401 or 403", repo)
	}
	if user != "" && byUser == 0 {
		t.Errorf("server log: no request on %s by %s was refused (%d refused requests by others)", repo, user, refused)
	}
}
