package oci

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"
)

// A manifest is stored as the bytes pushed, and every client parses them
// again with a parser of its own. JSON that two parsers can read
// differently would let a manifest pass the registry's reference checks
// as one thing and be pulled as another, so ParseManifest refuses it:
//
//   - bytes that are not UTF-8 (encoding/json would read them as U+FFFD;
//     RFC 8259 requires UTF-8);
//   - \u escapes of lone UTF-16 surrogates (parsers replace them, drop
//     them or fail);
//   - a key that appears twice in one object (some parsers keep the first
//     value, others the last: {"layers":[absent],"layers":[]});
//   - a key that differs only in case from a field of the manifest, a
//     descriptor or a platform ("Layers", "Digest"): parsers that match
//     struct fields without regard to case, encoding/json among them, read
//     it as that field.

// knownFields are the fields of each object kind whose case variants are
// refused, by kind.
var knownFields = map[objectKind][]string{
	kindManifest:   {"schemaVersion", "mediaType", "artifactType", "config", "layers", "manifests", "subject", "annotations"},
	kindDescriptor: {"mediaType", "digest", "size", "urls", "annotations", "data", "platform", "artifactType"},
	kindPlatform:   {"architecture", "os", "os.version", "os.features", "variant", "features"},
}

type objectKind int

const (
	kindOther objectKind = iota
	kindManifest
	kindDescriptor
	kindDescriptors // an array of descriptors
	kindPlatform
)

// childKind is the kind of the value under key in an object of kind k.
func childKind(k objectKind, key string) objectKind {
	switch {
	case k == kindManifest && (key == "config" || key == "subject"):
		return kindDescriptor
	case k == kindManifest && (key == "layers" || key == "manifests"):
		return kindDescriptors
	case k == kindDescriptor && key == "platform":
		return kindPlatform
	}
	return kindOther
}

// checkUTF8 refuses a body that is not UTF-8.
func checkUTF8(body []byte) error {
	if utf8.Valid(body) {
		return nil
	}
	at := 0
	for at < len(body) {
		r, n := utf8.DecodeRune(body[at:])
		if r == utf8.RuneError && n <= 1 {
			break
		}
		at += n
	}
	return Errorf(CodeManifestInvalid, "the manifest is not valid UTF-8 (byte %d is 0x%02x): JSON text must be UTF-8 (RFC 8259)", at, body[at])
}

// checkSurrogates refuses \u escapes of lone surrogates. It runs on a body
// that is valid JSON, where a backslash only occurs inside strings.
func checkSurrogates(body []byte) error {
	hex4 := func(at int) (rune, bool) {
		if at+4 > len(body) {
			return 0, false
		}
		v, err := strconv.ParseUint(string(body[at:at+4]), 16, 32)
		return rune(v), err == nil
	}
	for i := 0; i < len(body); i++ {
		if body[i] != '\\' {
			continue
		}
		i++
		if i >= len(body) || body[i] != 'u' {
			continue // \" \\ \/ \b ... : the next byte is taken
		}
		r, ok := hex4(i + 1)
		if !ok {
			continue
		}
		start := i - 1
		i += 4
		switch {
		case r >= 0xD800 && r < 0xDC00:
			if i+2 < len(body) && body[i+1] == '\\' && body[i+2] == 'u' {
				if lo, ok := hex4(i + 3); ok && lo >= 0xDC00 && lo < 0xE000 {
					i += 6
					continue
				}
			}
			return Errorf(CodeManifestInvalid, "the manifest has a lone UTF-16 surrogate escape %s at byte %d: parsers read it differently", body[start:start+6], start)
		case r >= 0xDC00 && r < 0xE000:
			return Errorf(CodeManifestInvalid, "the manifest has a lone UTF-16 surrogate escape %s at byte %d: parsers read it differently", body[start:start+6], start)
		}
	}
	return nil
}

// frame is an object or array being walked by checkKeys.
type frame struct {
	object    bool
	kind      objectKind
	keys      map[string]bool
	expectKey bool   // objects: the next token is a key (or the end)
	key       string // objects: the key whose value comes next
	index     int    // arrays: the position of the next element
	path      string
}

func (f *frame) childPath() string {
	if f.object {
		if f.path == "" {
			return f.key
		}
		return f.path + "." + f.key
	}
	return f.path + "[" + strconv.Itoa(f.index) + "]"
}

// checkKeys walks a body that is valid JSON and refuses duplicate keys and
// case variants of known fields, naming where they are.
func checkKeys(body []byte) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	var stack []*frame
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return jsonError("manifest", err)
		}
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		if top != nil && top.object && top.expectKey {
			if d, ok := tok.(json.Delim); ok && d == '}' {
				stack = stack[:len(stack)-1]
				valueDone(stack)
				continue
			}
			key, _ := tok.(string)
			where := "the manifest"
			if top.path != "" {
				where = top.path
			}
			if top.keys[key] {
				return Errorf(CodeManifestInvalid, "%s has the key %q twice: parsers disagree on which one counts", where, key)
			}
			top.keys[key] = true
			for _, f := range knownFields[top.kind] {
				if key != f && strings.EqualFold(key, f) {
					return Errorf(CodeManifestInvalid, "%s has the key %q, which differs from %q only in case: parsers that match keys without regard to case read it as %q", where, key, f, f)
				}
			}
			top.key, top.expectKey = key, false
			continue
		}
		// A value.
		kind, path := kindManifest, ""
		if top != nil {
			path = top.childPath()
			switch {
			case top.object:
				kind = childKind(top.kind, top.key)
			case top.kind == kindDescriptors:
				kind = kindDescriptor
			default:
				kind = kindOther
			}
		}
		switch d, _ := tok.(json.Delim); d {
		case '{':
			stack = append(stack, &frame{object: true, kind: kind, keys: map[string]bool{}, expectKey: true, path: path})
		case '[':
			stack = append(stack, &frame{kind: kind, path: path})
		case ']':
			stack = stack[:len(stack)-1]
			valueDone(stack)
		default:
			valueDone(stack)
		}
	}
}

// valueDone moves the innermost open object or array past a value.
func valueDone(stack []*frame) {
	if len(stack) == 0 {
		return
	}
	top := stack[len(stack)-1]
	if top.object {
		top.expectKey = true
	} else {
		top.index++
	}
}
