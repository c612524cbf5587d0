package httpapi

import (
	"fmt"
	"strconv"
	"strings"
)

// parseContentRange reads an upload chunk's Content-Range: the spec's
// "<start>-<end>" (inclusive), also accepting the RFC 9110 shape
// "bytes <start>-<end>/<size|*>" some clients send.
func parseContentRange(s string) (start, end int64, err error) {
	v := strings.TrimSpace(s)
	if rest, ok := strings.CutPrefix(v, "bytes "); ok {
		v, _, _ = strings.Cut(rest, "/")
	} else if rest, ok := strings.CutPrefix(v, "bytes="); ok {
		v = rest
	}
	a, b, ok := strings.Cut(v, "-")
	if !ok {
		return 0, 0, fmt.Errorf("content-range %q is not <start>-<end>", s)
	}
	start, err1 := strconv.ParseInt(a, 10, 64)
	end, err2 := strconv.ParseInt(b, 10, 64)
	if err1 != nil || err2 != nil || start < 0 || end < start {
		return 0, 0, fmt.Errorf("content-range %q is not <start>-<end> with 0 <= start <= end", s)
	}
	return start, end, nil
}

// parseByteRange reads a GET Range header "bytes=<first>-[<last>]" or
// "bytes=-<suffix>" against a blob of size bytes, returning offset and
// length. ok is false for a range that cannot be satisfied.
func parseByteRange(s string, size int64) (offset, length int64, ok bool) {
	v, found := strings.CutPrefix(s, "bytes=")
	if !found || strings.Contains(v, ",") {
		return 0, 0, false
	}
	a, b, found := strings.Cut(v, "-")
	if !found {
		return 0, 0, false
	}
	if a == "" {
		n, err := strconv.ParseInt(b, 10, 64)
		if err != nil || n <= 0 {
			return 0, 0, false
		}
		n = min(n, size)
		return size - n, n, size > 0
	}
	first, err := strconv.ParseInt(a, 10, 64)
	if err != nil || first < 0 || first >= size {
		return 0, 0, false
	}
	last := size - 1
	if b != "" {
		l, err := strconv.ParseInt(b, 10, 64)
		if err != nil || l < first {
			return 0, 0, false
		}
		last = min(l, size-1)
	}
	return first, last - first + 1, true
}
