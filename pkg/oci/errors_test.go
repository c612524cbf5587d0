package oci_test

import (
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/skiff-registry/skiff/pkg/oci"
)

func TestCodes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		code   oci.ErrorCode
		status int
	}{
		{oci.CodeBlobUnknown, http.StatusNotFound},
		{oci.CodeBlobUploadInvalid, http.StatusBadRequest},
		{oci.CodeBlobUploadUnknown, http.StatusNotFound},
		{oci.CodeDigestInvalid, http.StatusBadRequest},
		{oci.CodeManifestBlobUnknown, http.StatusBadRequest},
		{oci.CodeManifestInvalid, http.StatusBadRequest},
		{oci.CodeManifestUnknown, http.StatusNotFound},
		{oci.CodeNameInvalid, http.StatusBadRequest},
		{oci.CodeNameUnknown, http.StatusNotFound},
		{oci.CodeSizeInvalid, http.StatusBadRequest},
		{oci.CodeUnauthorized, http.StatusUnauthorized},
		{oci.CodeDenied, http.StatusForbidden},
		{oci.CodeUnsupported, http.StatusMethodNotAllowed},
		{oci.CodeTooManyRequests, http.StatusTooManyRequests},
		{oci.CodeUnknown, http.StatusInternalServerError},
	}
	if len(tests) != len(oci.Codes()) {
		t.Fatalf("table has %d codes, oci.Codes() has %d: keep them in step", len(tests), len(oci.Codes()))
	}
	for i, tc := range tests {
		t.Run(string(tc.code), func(t *testing.T) {
			t.Parallel()
			if got := oci.Codes()[i]; got != tc.code {
				t.Errorf("Codes()[%d] = %s, want %s", i, got, tc.code)
			}
			if got := tc.code.Status(); got != tc.status {
				t.Errorf("Status() = %d, want %d", got, tc.status)
			}
			if got := tc.code.Message(); got == "" || got == oci.ErrorCode("NOT_A_CODE").Message() && tc.code != oci.CodeUnknown {
				t.Errorf("Message() = %q, want the code's own description", got)
			}
			in := oci.Errorf(tc.code, "something about %s", "it").WithDetail(map[string]any{"n": 1.0})
			got, err := oci.ParseEnvelope(oci.Envelope(in))
			if err != nil {
				t.Fatalf("ParseEnvelope: %v", err)
			}
			want := []*oci.Error{{Code: tc.code, Message: "something about it", Detail: map[string]any{"n": 1.0}}}
			if diff := cmp.Diff(got, want); diff != "" {
				t.Errorf("envelope round trip (-got +want):\n%s", diff)
			}
		})
	}
}

func TestUnknownCodeDefaults(t *testing.T) {
	t.Parallel()
	c := oci.ErrorCode("SOMETHING_NEW")
	if got := c.Status(); got != http.StatusInternalServerError {
		t.Errorf("Status() = %d, want 500", got)
	}
	if got, want := c.Message(), oci.CodeUnknown.Message(); got != want {
		t.Errorf("Message() = %q, want %q", got, want)
	}
}

func TestErrorf(t *testing.T) {
	t.Parallel()
	cause := fmt.Errorf("open x: %w", fs.ErrNotExist)
	other := errors.New("other")
	tests := []struct {
		name      string
		err       *oci.Error
		wantMsg   string
		wantText  string
		wantCause []error // each must satisfy errors.Is
		wantNoErr bool
	}{
		{
			name:      "plain",
			err:       oci.Errorf(oci.CodeBlobUnknown, "blob %s not found", "sha256:x"),
			wantMsg:   "blob sha256:x not found",
			wantText:  "BLOB_UNKNOWN: blob sha256:x not found",
			wantNoErr: true,
		},
		{
			name:      "wrap",
			err:       oci.Errorf(oci.CodeBlobUnknown, "stat blob: %w", cause),
			wantMsg:   "stat blob: open x: file does not exist",
			wantText:  "BLOB_UNKNOWN: stat blob: open x: file does not exist",
			wantCause: []error{cause, fs.ErrNotExist},
		},
		{
			name:      "wrap two",
			err:       oci.Errorf(oci.CodeUnknown, "%w and %w", cause, other),
			wantMsg:   "open x: file does not exist and other",
			wantText:  "UNKNOWN: open x: file does not exist and other",
			wantCause: []error{fs.ErrNotExist, other},
		},
		{
			name:     "cause set directly is appended",
			err:      &oci.Error{Code: oci.CodeUnknown, Message: "internal error", Err: cause},
			wantMsg:  "internal error",
			wantText: "UNKNOWN: internal error: open x: file does not exist",
		},
		{
			name:     "empty message uses the code's",
			err:      &oci.Error{Code: oci.CodeDenied},
			wantText: "DENIED: requested access to the resource is denied",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if diff := cmp.Diff(tc.err.Message, tc.wantMsg); diff != "" {
				t.Errorf("Message (-got +want):\n%s", diff)
			}
			if diff := cmp.Diff(tc.err.Error(), tc.wantText); diff != "" {
				t.Errorf("Error() (-got +want):\n%s", diff)
			}
			for _, c := range tc.wantCause {
				if !errors.Is(tc.err, c) {
					t.Errorf("errors.Is(err, %v) = false, want true", c)
				}
			}
			if tc.wantNoErr && tc.err.Unwrap() != nil {
				t.Errorf("Unwrap() = %v, want nil", tc.err.Unwrap())
			}
		})
	}
}

func TestErrorStatusAndCopies(t *testing.T) {
	t.Parallel()
	base := oci.Errorf(oci.CodeBlobUploadInvalid, "bad range")
	ranged := base.WithStatus(http.StatusRequestedRangeNotSatisfiable)
	detailed := base.WithDetail("d")
	tests := []struct {
		name       string
		err        *oci.Error
		wantStatus int
		wantDetail any
	}{
		{"base", base, http.StatusBadRequest, nil},
		{"with status", ranged, http.StatusRequestedRangeNotSatisfiable, nil},
		{"with detail", detailed, http.StatusBadRequest, "d"},
		{"nil", nil, http.StatusInternalServerError, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := tc.err.HTTPStatus(); got != tc.wantStatus {
				t.Errorf("HTTPStatus() = %d, want %d", got, tc.wantStatus)
			}
			if tc.err != nil {
				if diff := cmp.Diff(tc.err.Detail, tc.wantDetail); diff != "" {
					t.Errorf("Detail (-got +want):\n%s", diff)
				}
			}
		})
	}
	if base.Status != 0 || base.Detail != nil {
		t.Errorf("With* modified the original: %+v", base)
	}
}

func TestErrors(t *testing.T) {
	t.Parallel()
	a := oci.Errorf(oci.CodeManifestBlobUnknown, "blob a")
	b := oci.Errorf(oci.CodeManifestBlobUnknown, "blob b").WithStatus(http.StatusNotFound)
	tests := []struct {
		name       string
		errs       oci.Errors
		wantText   string
		wantStatus int
	}{
		{"two", oci.Errors{a, b}, "MANIFEST_BLOB_UNKNOWN: blob a; MANIFEST_BLOB_UNKNOWN: blob b", http.StatusBadRequest},
		{"second first", oci.Errors{b, a}, "MANIFEST_BLOB_UNKNOWN: blob b; MANIFEST_BLOB_UNKNOWN: blob a", http.StatusNotFound},
		{"empty", nil, "no errors", http.StatusInternalServerError},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if diff := cmp.Diff(tc.errs.Error(), tc.wantText); diff != "" {
				t.Errorf("Error() (-got +want):\n%s", diff)
			}
			if got := tc.errs.HTTPStatus(); got != tc.wantStatus {
				t.Errorf("HTTPStatus() = %d, want %d", got, tc.wantStatus)
			}
		})
	}
	var err error = fmt.Errorf("push: %w", oci.Errors{a, b})
	var got *oci.Error
	if !errors.As(err, &got) || got != a {
		t.Errorf("errors.As through Errors found %v, want %v", got, a)
	}
}

func TestEnvelope(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		errs []*oci.Error
		want string
	}{
		{
			name: "detail omitted when nil",
			errs: []*oci.Error{oci.Errorf(oci.CodeNameUnknown, "repository %q not found", "a/b")},
			want: `{"errors":[{"code":"NAME_UNKNOWN","message":"repository \"a/b\" not found"}]}`,
		},
		{
			name: "several with detail",
			errs: []*oci.Error{
				oci.Errorf(oci.CodeManifestBlobUnknown, "blob x").WithDetail(map[string]string{"digest": "sha256:x"}),
				oci.Errorf(oci.CodeManifestBlobUnknown, "blob y"),
			},
			want: `{"errors":[{"code":"MANIFEST_BLOB_UNKNOWN","message":"blob x","detail":{"digest":"sha256:x"}},` +
				`{"code":"MANIFEST_BLOB_UNKNOWN","message":"blob y"}]}`,
		},
		{
			name: "empty message gets the code's description",
			errs: []*oci.Error{{Code: oci.CodeUnauthorized}},
			want: `{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`,
		},
		{
			name: "cause never sent",
			errs: []*oci.Error{{Code: oci.CodeUnknown, Message: "internal server error", Err: errors.New("secret bucket name")}},
			want: `{"errors":[{"code":"UNKNOWN","message":"internal server error"}]}`,
		},
		{
			name: "unmarshalable detail dropped",
			errs: []*oci.Error{oci.Errorf(oci.CodeUnknown, "x").WithDetail(make(chan int))},
			want: `{"errors":[{"code":"UNKNOWN","message":"x"}]}`,
		},
		{
			name: "nil skipped",
			errs: []*oci.Error{nil},
			want: `{"errors":[]}`,
		},
		{
			name: "none",
			want: `{"errors":[]}`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if diff := cmp.Diff(string(oci.Envelope(tc.errs...)), tc.want); diff != "" {
				t.Errorf("Envelope (-got +want):\n%s", diff)
			}
		})
	}
}

func TestParseEnvelopeErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		body string
		want string // substring of the error
	}{
		{"not json", "<html>", "parse error envelope"},
		{"no errors array", `{"message":"nope"}`, `no "errors" array`},
		{"errors not an array", `{"errors":{}}`, "parse error envelope"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := oci.ParseEnvelope([]byte(tc.body))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("ParseEnvelope(%q) error = %v, want it to contain %q", tc.body, err, tc.want)
			}
		})
	}
}
