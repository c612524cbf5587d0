package main

import (
	"io"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/spf13/cobra"
)

// parseWith returns a parser of the command line after `skiff NAME`: it
// runs the command that newCommand builds under a bare root, capturing the
// arguments handed to do instead of running the command.
func parseWith[T any](name string, newCommand func(func(string) string, func(*cobra.Command, T) error) *cobra.Command) func([]string, func(string) string, io.Writer) (T, error) {
	return func(args []string, getenv func(string) string, stderr io.Writer) (T, error) {
		var got T
		root := &cobra.Command{Use: "skiff", SilenceErrors: true, SilenceUsage: true}
		root.AddCommand(newCommand(getenv, func(_ *cobra.Command, v T) error { got = v; return nil }))
		root.SetArgs(append([]string{name}, args...))
		root.SetOut(io.Discard)
		root.SetErr(stderr)
		return got, root.Execute()
	}
}

// parseCase is one row of a command's argument-parsing table.
type parseCase[T any] struct {
	name    string
	args    []string
	env     func(string) string // nil: env()
	want    T
	wantErr string // substring; "" means success
}

// runParseCases checks parse against each case: the error it names, or
// the arguments it parses to (unexported fields compared).
func runParseCases[T any](t *testing.T, tests []parseCase[T], parse func([]string, func(string) string, io.Writer) (T, error)) {
	t.Helper()
	var zero T
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			getenv := tc.env
			if getenv == nil {
				getenv = env()
			}
			got, err := parse(tc.args, getenv, io.Discard)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one saying %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(got, tc.want, cmp.AllowUnexported(zero)); diff != "" {
				t.Errorf("parse (-got +want):\n%s", diff)
			}
		})
	}
}
