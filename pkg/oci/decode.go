package oci

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strconv"

	v1 "github.com/opencontainers/image-spec/specs-go/v1"
)

// decodeObject splits a manifest body into its top-level members. Members
// are looked up by exact key afterwards, unlike encoding/json's
// case-insensitive struct matching, so "MediaType" is an unknown field and
// not a second spelling of "mediaType".
func decodeObject(body []byte) (map[string]json.RawMessage, error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(body, &fields); err != nil {
		return nil, jsonError("manifest", err)
	}
	if fields == nil {
		// "null" decodes into a nil map without error.
		return nil, Errorf(CodeManifestInvalid, "manifest must be a JSON object, got null")
	}
	return fields, nil
}

// isSet reports whether key is present with a value other than null.
func isSet(fields map[string]json.RawMessage, key string) bool {
	raw, ok := fields[key]
	return ok && !isNull(raw)
}

// isNull reports whether a raw JSON value is the literal null.
func isNull(raw json.RawMessage) bool {
	return bytes.Equal(bytes.TrimSpace(raw), []byte("null"))
}

// decodeField decodes the member key into v. A missing member or null is not
// an error and leaves v untouched; present reports which case applied.
func decodeField(fields map[string]json.RawMessage, key string, v any) (present bool, err error) {
	if !isSet(fields, key) {
		return false, nil
	}
	if err := json.Unmarshal(fields[key], v); err != nil {
		return true, jsonError(key, err)
	}
	return true, nil
}

// decodeDescriptor decodes and validates the single descriptor under key.
func decodeDescriptor(fields map[string]json.RawMessage, key string, d *v1.Descriptor) (present bool, err error) {
	present, err = decodeField(fields, key, d)
	if err != nil || !present {
		return present, err
	}
	return true, validateDescriptor(key, d)
}

// decodeDescriptors decodes and validates the array of descriptors under
// key, element by element so that errors name the position.
func decodeDescriptors(fields map[string]json.RawMessage, key string) ([]v1.Descriptor, bool, error) {
	var raws []json.RawMessage
	present, err := decodeField(fields, key, &raws)
	if err != nil || !present {
		return nil, present, err
	}
	out := make([]v1.Descriptor, len(raws))
	for i, raw := range raws {
		pos := key + "[" + strconv.Itoa(i) + "]"
		if isNull(raw) {
			return nil, true, Errorf(CodeManifestInvalid, "%s: a descriptor must be an object, got null", pos)
		}
		if err := json.Unmarshal(raw, &out[i]); err != nil {
			return nil, true, jsonError(pos, err)
		}
		if err := validateDescriptor(pos, &out[i]); err != nil {
			return nil, true, err
		}
	}
	return out, true, nil
}

// jsonError turns an encoding/json error about the value at pos into a
// MANIFEST_INVALID that speaks JSON rather than Go types.
func jsonError(pos string, err error) *Error {
	var (
		syntax *json.SyntaxError
		typ    *json.UnmarshalTypeError
		e      *Error
	)
	switch {
	case errors.As(err, &syntax):
		e = Errorf(CodeManifestInvalid, "%s is not valid JSON: %s (at byte %d)", pos, syntax.Error(), syntax.Offset)
	case errors.As(err, &typ):
		at := pos
		if typ.Field != "" {
			at += "." + typ.Field
		}
		e = Errorf(CodeManifestInvalid, "%s: want %s, got a JSON %s", at, jsonKind(typ.Type), typ.Value)
	default:
		// For example base64 errors in a descriptor's "data".
		e = Errorf(CodeManifestInvalid, "%s: %s", pos, err.Error())
	}
	e.Err = err
	return e
}

// jsonKind names the JSON shape that decodes into t.
func jsonKind(t reflect.Type) string {
	if t == nil {
		return "a different value"
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Bool:
		return "a boolean"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Map, reflect.Struct:
		return "an object"
	default:
		return fmt.Sprintf("a JSON value for %s", t)
	}
}
