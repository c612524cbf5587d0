package main

import (
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// TestHelp: every command's --help (and -h, and skiff help ...) prints its
// help to stdout and succeeds.
func TestHelp(t *testing.T) {
	t.Parallel()
	var paths [][]string
	var walk func(*cobra.Command, []string)
	walk = func(c *cobra.Command, path []string) {
		paths = append(paths, path)
		for _, sub := range c.Commands() {
			walk(sub, append(slices.Clone(path), sub.Name()))
		}
	}
	walk(newRootCommand(env()), nil)
	// cobra's own, added when the command line runs.
	paths = append(paths, []string{"completion"}, []string{"completion", "bash"}, []string{"help"})
	if len(paths) < 16 {
		t.Fatalf("only %d commands: %q", len(paths), paths)
	}
	for _, path := range paths {
		name := strings.Join(append([]string{"skiff"}, path...), " ")
		for _, args := range [][]string{append(slices.Clone(path), "--help"), append(slices.Clone(path), "-h"), append([]string{"help"}, path...)} {
			t.Run(strings.Join(args, " "), func(t *testing.T) {
				t.Parallel()
				out, errOut, err := cli(t, env(), args...)
				if err != nil || errOut != "" || !strings.Contains(out, "Usage:\n  "+name) {
					t.Errorf("stdout %q, stderr %q, err %v; want the help of %s on stdout", out, errOut, err, name)
				}
			})
		}
	}
	// The groups' own spelling, from before cobra.
	for _, group := range []string{"policy", "index", "user"} {
		if out, _, err := cli(t, env(), group, "help"); err != nil || !strings.Contains(out, "Usage:\n  skiff "+group) {
			t.Errorf("skiff %s help: %q %v", group, out, err)
		}
	}
}

// TestCommandLineMistakes: a bad flag, an unknown command or a wrong
// number of arguments is one line that says what is wrong, and no usage.
func TestCommandLineMistakes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"serve", "--redirect-min=abc"}, `invalid argument "abc" for "--redirect-min" flag`},
		{[]string{"serve", "--body-timeout", "soon"}, `invalid argument "soon" for "--body-timeout" flag`},
		{[]string{"serve", "--log-level=loud"}, `invalid argument "loud" for "--log-level" flag`},
		{[]string{"serve", "--auth=maybe"}, `invalid argument "maybe" for "--auth" flag`},
		{[]string{"serve", "--bogus"}, "unknown flag: --bogus"},
		{[]string{"serve", "-addr=127.0.0.1:0"}, "unknown shorthand flag: 'a' in -addr=127.0.0.1:0"},
		{[]string{"serve", "--addr"}, "flag needs an argument: --addr"},
		{[]string{"serve", "now"}, `skiff serve takes no arguments, only flags, got 1: ["now"]`},
		{[]string{"policy", "set"}, "skiff policy set takes one PREFIX (a repository or a namespace such as mirror/), got none"},
		{[]string{"policy", "list", "a", "b"}, `skiff policy list takes no arguments, got 2: ["a" "b"]`},
		{[]string{"policy", "list", "--bogus"}, "unknown flag: --bogus"},
		{[]string{"user", "grant", "alice", "--actions=pull"}, "skiff user grant takes NAME PREFIX, got 1"},
		{[]string{"user", "add", "alice", "--password=hunter2hunter2"}, "unknown flag: --password"},
		{[]string{"index", "status"}, "skiff index status takes one REPO@DIGEST or REPO:TAG, got none"},
		{[]string{"version", "now"}, "skiff version takes no arguments"},
		{[]string{"nosuch"}, `unknown skiff command "nosuch" (want completion, copy, gc, index, mirror, policy, retention, serve, user, version)`},
		{[]string{"policy", "nosuch"}, `unknown policy command "nosuch" (want delete, get, history, list, set)`},
		{nil, "skiff needs a command: completion, copy, gc, index, mirror, policy, retention, serve, user, version (see skiff --help)"},
		{[]string{"user"}, "skiff user needs a command: add, delete, grant, list, passwd, revoke"},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			t.Parallel()
			out, errOut, err := cli(t, env(), tc.args...)
			if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
				t.Errorf("err %q, want one line with %q", err, tc.want)
			}
			if out != "" || errOut != "" {
				t.Errorf("stdout %q, stderr %q: want nothing (main prints the error alone)", out, errOut)
			}
		})
	}
}

func TestVersionText(t *testing.T) {
	t.Parallel()
	settings := func(kv ...string) []debug.BuildSetting {
		var s []debug.BuildSetting
		for i := 0; i+1 < len(kv); i += 2 {
			s = append(s, debug.BuildSetting{Key: kv[i], Value: kv[i+1]})
		}
		return s
	}
	const rev = "17a9c30e0a3c4bd6e1f5d3e4b2a1908f7c6d5e4f"
	tests := []struct {
		name string
		bi   *debug.BuildInfo
		want string
	}{
		{"a clean tree", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v1.2.3"},
			Settings: settings("-trimpath", "true", "vcs", "git", "vcs.revision", rev, "vcs.time", "2026-01-02T03:04:05Z", "vcs.modified", "false")},
			"skiff v1.2.3\nrevision: " + rev + "\ncommitted: 2026-01-02T03:04:05Z\ngo: go1.26.8\n"},
		{"a modified tree", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"},
			Settings: settings("vcs.revision", rev, "vcs.modified", "true")},
			"skiff (devel)\nrevision: " + rev + " (modified)\ngo: go1.26.8\n"},
		{"no VCS information (-buildvcs=false, go test)", &debug.BuildInfo{GoVersion: "go1.26.8"},
			"skiff (devel)\nrevision: unknown (built without VCS information)\ngo: go1.26.8\n"},
		{"no build information", nil, "skiff (unknown version)\nrevision: unknown\ngo: " + runtime.Version() + "\n"},
	}
	for _, tc := range tests {
		if got := versionText(tc.bi); got != tc.want {
			t.Errorf("%s: got\n%s\nwant\n%s", tc.name, got, tc.want)
		}
	}
}

// TestVersion: skiff version prints this binary's build information.
func TestVersion(t *testing.T) {
	t.Parallel()
	out, _, err := cli(t, env(), "version")
	if err != nil || !strings.HasPrefix(out, "skiff ") || !strings.HasSuffix(out, "\ngo: "+runtime.Version()+"\n") {
		t.Fatalf("skiff version: %q %v", out, err)
	}
	bi, _ := debug.ReadBuildInfo()
	for _, s := range bi.Settings {
		if s.Key == "vcs.revision" && !strings.Contains(out, "revision: "+s.Value) {
			t.Errorf("skiff version %q lacks the revision %s", out, s.Value)
		}
	}
}

func TestCompletion(t *testing.T) {
	t.Parallel()
	for _, shell := range []string{"bash", "zsh", "fish", "powershell"} {
		out, _, err := cli(t, env(), "completion", shell)
		if err != nil || !strings.Contains(out, "skiff") || len(out) < 1000 {
			t.Errorf("completion %s: %d bytes, %v", shell, len(out), err)
		}
	}
}
