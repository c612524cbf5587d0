package oci

import (
	"encoding/json"
	"errors"
	"fmt"
)

// envelope is the distribution-spec JSON error body.
type envelope struct {
	Errors []envelopeError `json:"errors"`
}

// envelopeError is one entry of the envelope. Only these three fields are
// sent: Status and Err stay on the server.
type envelopeError struct {
	Code    ErrorCode `json:"code"`
	Message string    `json:"message"`
	Detail  any       `json:"detail,omitempty"`
}

// fallbackEnvelope is sent if the envelope cannot be marshalled at all, so a
// client always gets a body in the spec's shape.
const fallbackEnvelope = `{"errors":[{"code":"UNKNOWN","message":"internal server error"}]}`

// Envelope marshals the spec's JSON error body
// {"errors":[{"code":..,"message":..,"detail":..}]}; detail omitted when nil.
// An empty Message is sent as the code's description, nil errors are skipped,
// and a Detail that cannot be marshalled is dropped rather than failing the
// whole response.
func Envelope(errs ...*Error) []byte {
	env := envelope{Errors: make([]envelopeError, 0, len(errs))}
	for _, e := range errs {
		if e == nil {
			continue
		}
		msg := e.Message
		if msg == "" {
			msg = e.Code.Message()
		}
		entry := envelopeError{Code: e.Code, Message: msg, Detail: e.Detail}
		if entry.Detail != nil {
			if _, err := json.Marshal(entry.Detail); err != nil {
				entry.Detail = nil
			}
		}
		env.Errors = append(env.Errors, entry)
	}
	b, err := json.Marshal(env)
	if err != nil {
		return []byte(fallbackEnvelope)
	}
	return b
}

// ParseEnvelope is the inverse of Envelope (used by tests and the CLI).
// Detail is decoded as generic JSON (map[string]any, []any, float64, ...).
// A body without an "errors" array is an error, so callers can fall back to
// showing the raw body of a non-conforming server.
func ParseEnvelope(b []byte) ([]*Error, error) {
	var raw struct {
		Errors *[]struct {
			Code    ErrorCode       `json:"code"`
			Message string          `json:"message"`
			Detail  json.RawMessage `json:"detail"`
		} `json:"errors"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return nil, fmt.Errorf("parse error envelope: %w", err)
	}
	if raw.Errors == nil {
		return nil, errors.New(`parse error envelope: no "errors" array`)
	}
	out := make([]*Error, 0, len(*raw.Errors))
	for i, re := range *raw.Errors {
		e := &Error{Code: re.Code, Message: re.Message}
		if len(re.Detail) > 0 && string(re.Detail) != "null" {
			if err := json.Unmarshal(re.Detail, &e.Detail); err != nil {
				return nil, fmt.Errorf("parse error envelope: errors[%d].detail: %w", i, err)
			}
		}
		out = append(out, e)
	}
	return out, nil
}
