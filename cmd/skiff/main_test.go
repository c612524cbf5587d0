package main

import (
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
		{[]string{"nosuch"}, `unknown skiff command "nosuch" (want completion, index, policy, serve, user, version)`},
		{[]string{"policy", "nosuch"}, `unknown policy command "nosuch" (want delete, get, history, list, set)`},
		{nil, "skiff needs a command: completion, index, policy, serve, user, version (see skiff --help)"},
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

func TestCompletion(t *testing.T) {
	t.Parallel()
	for _, shell := range []string{"bash", "zsh", "fish", "powershell"} {
		out, _, err := cli(t, env(), "completion", shell)
		if err != nil || !strings.Contains(out, "skiff") || len(out) < 1000 {
			t.Errorf("completion %s: %d bytes, %v", shell, len(out), err)
		}
	}
}
