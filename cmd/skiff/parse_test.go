package main

import (
	"io"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

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
