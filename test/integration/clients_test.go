package integration

import (
	"path/filepath"
	"testing"
)

// regClient drives one registry client through the three operations the
// round-trip test needs. Refs are HOST/repo:tag; layouts are OCI layout dirs.
type regClient struct {
	name  string
	tools []string
	setup func(tb *toolbox, host string)
	push  func(tb *toolbox, layoutDir, tag, dst string)
	copy  func(tb *toolbox, src, dst string)
	pull  func(tb *toolbox, src, layoutDir, tag string)
}

var regClients = []regClient{
	{
		name:  "skopeo",
		tools: []string{"skopeo"},
		// --multi-arch all copies every child of an index (the default picks
		// one platform); --preserve-digests fails rather than rewrite anything.
		push: func(tb *toolbox, dir, tag, dst string) {
			tb.skopeo("copy", "--multi-arch", "all", "--preserve-digests", "--dest-tls-verify=false",
				"oci:"+dir+":"+tag, "docker://"+dst)
		},
		copy: func(tb *toolbox, src, dst string) {
			tb.skopeo("copy", "--multi-arch", "all", "--preserve-digests", "--src-tls-verify=false",
				"--dest-tls-verify=false", "docker://"+src, "docker://"+dst)
		},
		pull: func(tb *toolbox, src, dir, tag string) {
			tb.skopeo("copy", "--multi-arch", "all", "--preserve-digests", "--src-tls-verify=false",
				"docker://"+src, "oci:"+dir+":"+tag)
		},
	},
	{
		name:  "regctl",
		tools: []string{"regctl"},
		setup: func(tb *toolbox, host string) { tb.regctlPlainHTTP(host) },
		push: func(tb *toolbox, dir, tag, dst string) {
			tb.run("regctl", "image", "copy", "ocidir://"+dir+":"+tag, dst)
		},
		copy: func(tb *toolbox, src, dst string) {
			tb.run("regctl", "image", "copy", src, dst)
		},
		pull: func(tb *toolbox, src, dir, tag string) {
			tb.run("regctl", "image", "copy", src, "ocidir://"+dir+":"+tag)
		},
	},
	{
		name:  "crane",
		tools: []string{"crane"},
		// crane push reads a directory as an OCI layout and pushes its single
		// entry (an image, or an index with all its children).
		push: func(tb *toolbox, dir, _, dst string) {
			tb.run("crane", "push", "--insecure", dir, dst)
		},
		copy: func(tb *toolbox, src, dst string) {
			tb.run("crane", "copy", "--insecure", src, dst)
		},
		pull: func(tb *toolbox, src, dir, _ string) {
			tb.run("crane", "pull", "--insecure", "--format=oci", src, dir)
		},
	},
	{
		name:  "oras",
		tools: []string{"oras"},
		push: func(tb *toolbox, dir, tag, dst string) {
			tb.run("oras", "cp", "--no-tty", "--to-plain-http", "--from-oci-layout", dir+":"+tag, dst)
		},
		copy: func(tb *toolbox, src, dst string) {
			tb.run("oras", "cp", "--no-tty", "--from-plain-http", "--to-plain-http", src, dst)
		},
		pull: func(tb *toolbox, src, dir, tag string) {
			tb.run("oras", "cp", "--no-tty", "--from-plain-http", "--to-oci-layout", src, dir+":"+tag)
		},
	},
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
					tb := newToolbox(t, client.tools...)
					if client.setup != nil {
						client.setup(tb, reg.host)
					}
					c := item.content
					src := "it/" + client.name + "/" + item.kind
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
