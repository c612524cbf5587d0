package integration

import (
	"path/filepath"
	"testing"
)

// regClient drives one registry client through the operations the
// round-trip and login tests need. Refs are HOST/repo:tag; layouts are OCI
// layout dirs. Each operation is its command's arguments, so a test can run
// it expecting success (push, copy, pull, login) or a refusal (tryPush, ...).
type regClient struct {
	name  string
	tool  string
	setup func(tb *toolbox, host string)
	// login logs in to host as user, the password on stdin.
	loginArgs func(host, user string) []string
	pushArgs  func(layoutDir, tag, dst string) []string
	copyArgs  func(src, dst string) []string
	pullArgs  func(src, layoutDir, tag string) []string
}

var regClients = []regClient{
	{
		name: "skopeo",
		tool: "skopeo",
		loginArgs: func(host, user string) []string {
			return []string{"login", "--tls-verify=false", "-u", user, "--password-stdin", host}
		},
		// --multi-arch all copies every child of an index (the default picks
		// one platform); --preserve-digests fails rather than rewrite anything.
		pushArgs: func(dir, tag, dst string) []string {
			return []string{"copy", "--multi-arch", "all", "--preserve-digests", "--dest-tls-verify=false",
				"oci:" + dir + ":" + tag, "docker://" + dst}
		},
		copyArgs: func(src, dst string) []string {
			return []string{"copy", "--multi-arch", "all", "--preserve-digests", "--src-tls-verify=false",
				"--dest-tls-verify=false", "docker://" + src, "docker://" + dst}
		},
		pullArgs: func(src, dir, tag string) []string {
			return []string{"copy", "--multi-arch", "all", "--preserve-digests", "--src-tls-verify=false",
				"docker://" + src, "oci:" + dir + ":" + tag}
		},
	},
	{
		name:  "regctl",
		tool:  "regctl",
		setup: func(tb *toolbox, host string) { tb.regctlPlainHTTP(host) },
		loginArgs: func(host, user string) []string {
			return []string{"registry", "login", host, "-u", user, "--pass-stdin"}
		},
		pushArgs: func(dir, tag, dst string) []string {
			return []string{"image", "copy", "ocidir://" + dir + ":" + tag, dst}
		},
		copyArgs: func(src, dst string) []string { return []string{"image", "copy", src, dst} },
		pullArgs: func(src, dir, tag string) []string {
			return []string{"image", "copy", src, "ocidir://" + dir + ":" + tag}
		},
	},
	{
		name: "crane",
		tool: "crane",
		loginArgs: func(host, user string) []string {
			return []string{"auth", "login", host, "-u", user, "--password-stdin"}
		},
		// crane push reads a directory as an OCI layout and pushes its single
		// entry (an image, or an index with all its children).
		pushArgs: func(dir, _, dst string) []string { return []string{"push", "--insecure", dir, dst} },
		copyArgs: func(src, dst string) []string { return []string{"copy", "--insecure", src, dst} },
		pullArgs: func(src, dir, _ string) []string {
			return []string{"pull", "--insecure", "--format=oci", src, dir}
		},
	},
	{
		name: "oras",
		tool: "oras",
		loginArgs: func(host, user string) []string {
			return []string{"login", "--plain-http", "-u", user, "--password-stdin", host}
		},
		pushArgs: func(dir, tag, dst string) []string {
			return []string{"cp", "--no-tty", "--to-plain-http", "--from-oci-layout", dir + ":" + tag, dst}
		},
		copyArgs: func(src, dst string) []string {
			return []string{"cp", "--no-tty", "--from-plain-http", "--to-plain-http", src, dst}
		},
		pullArgs: func(src, dir, tag string) []string {
			return []string{"cp", "--no-tty", "--from-plain-http", "--to-oci-layout", src, dir + ":" + tag}
		},
	},
}

func (c regClient) push(tb *toolbox, dir, tag, dst string) {
	tb.t.Helper()
	tb.run(c.tool, c.pushArgs(dir, tag, dst)...)
}

func (c regClient) copy(tb *toolbox, src, dst string) {
	tb.t.Helper()
	tb.run(c.tool, c.copyArgs(src, dst)...)
}

func (c regClient) pull(tb *toolbox, src, dir, tag string) {
	tb.t.Helper()
	tb.run(c.tool, c.pullArgs(src, dir, tag)...)
}

// TestClientRoundTrip pushes a three-layer image and a three-platform index
// from an OCI layout with each client, copies them to another repository
// inside the registry with the same client, pulls the copies back into a
// layout, and checks that no digest changed anywhere along the way.
func TestClientRoundTrip(t *testing.T) {
	t.Parallel()
	reg := startRegistry(t)
	for _, client := range regClients {
		t.Run(client.name, func(t *testing.T) {
			const kib = 1024
			items := []struct {
				kind    string
				content *content
			}{
				{"image", newImage(t, "roundtrip/"+client.name+"/image", threePlatforms[0], 300*kib, 200*kib, 400*kib)},
				{"index", newIndex(t, "roundtrip/"+client.name+"/index", 150*kib, threePlatforms...)},
			}
			for _, item := range items {
				t.Run(item.kind, func(t *testing.T) {
					tb := newToolbox(t, client.tool)
					reg.clientCredentials(tb, reg.host)
					if client.setup != nil {
						client.setup(tb, reg.host)
					}
					c := item.content
					src := reg.repo("it/" + client.name + "/" + item.kind)
					dst := src + "-copy"
					layout := filepath.Join(t.TempDir(), "push")
					c.writeLayout(t, layout, "v1")

					client.push(tb, layout, "v1", reg.host+"/"+src+":v1")
					c.verifyRemote(t, reg, src, "v1")
					if t.Failed() {
						return
					}

					client.copy(tb, reg.host+"/"+src+":v1", reg.host+"/"+dst+":v1")
					c.verifyRemote(t, reg, dst, "v1")
					if t.Failed() {
						return
					}

					pulled := filepath.Join(t.TempDir(), "pull")
					client.pull(tb, reg.host+"/"+dst+":v1", pulled, "v1")
					c.verifyLayout(t, pulled)
				})
			}
		})
	}
}

// TestPodmanRoundTrip: podman can't push from an OCI layout, and what it
// pushes from its storage may have other digests (podman_test.go), so it
// is not one of regClients. podman gets a three-layer image into its
// storage, pushes it to a repository and pulls that back into a fresh
// storage. The image must keep its content on the way: the same config
// (podman's image ID) and the same uncompressed layers (diffIDs), in a
// valid manifest whose blobs are all there. Two sources, for podman's two
// ways of pushing a layer:
//
//   - registry: crane pushes the image to another repository of the same
//     registry and podman pulls it from there. Its blob info cache then
//     knows the compressed layers in that repository, so its push mounts
//     them (POST ?mount=&from=) rather than upload them;
//   - layout: podman pulls the image from an OCI layout (oci:DIR:tag), no
//     registry knows its layers, so podman compresses them again and
//     uploads them.
func TestPodmanRoundTrip(t *testing.T) {
	t.Parallel()
	const kib = 1024
	reg := startRegistry(t)
	for _, source := range []string{"registry", "layout"} {
		t.Run(source, func(t *testing.T) {
			t.Parallel()
			// Layers well under the 4 MiB request limit of the Lambda
			// functions: podman sends each one in a single PATCH.
			img := newImage(t, "roundtrip/podman/"+source, threePlatforms[0], 300*kib, 200*kib, 400*kib)
			layout := podmanLayoutDir(t)
			img.writeLayout(t, layout, "v1")
			dstRepo := reg.repo("it/podman/" + source + "/dst")
			dst := reg.host + "/" + dstRepo + ":v1"

			podman := newToolbox(t, "podman")
			reg.clientCredentials(podman, reg.host)
			var local string // podman's name for the image in its storage
			switch source {
			case "registry":
				srcRepo := reg.repo("it/podman/" + source + "/src")
				local = reg.host + "/" + srcRepo + ":v1"
				crane := newToolbox(t, "crane")
				reg.clientCredentials(crane, reg.host)
				crane.run("crane", "push", "--insecure", layout, local)
				img.verifyRemote(t, reg, srcRepo, "v1")
				if t.Failed() {
					return
				}
				podman.run("podman", podman.podmanTransfer("pull", local)...)
			case "layout":
				podman.run("podman", podman.podmanTransfer("pull", "oci:"+layout+":v1")...)
				local = img.imageID(t)
			}
			checkPodmanImage(t, podman, local, img)
			podman.run("podman", podman.podmanTransfer("push", local, dst)...)
			verifyPodmanPush(t, reg, dstRepo, "v1", img)
			if t.Failed() {
				return
			}

			fresh := newToolbox(t, "podman")
			reg.clientCredentials(fresh, reg.host)
			fresh.run("podman", fresh.podmanTransfer("pull", dst)...)
			checkPodmanImage(t, fresh, dst, img)
		})
	}
}
