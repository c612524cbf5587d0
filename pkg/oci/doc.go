// Package oci holds the parts of the OCI distribution and image specs that
// Skiff's registry needs, with no storage, AWS or HTTP-server code: repository
// names, tags and digests, manifest and index parsing, and the error codes and
// JSON error envelope that the distribution-spec defines.
//
// # Rules
//
// Everything that crosses the API boundary is validated here, once, so that
// handlers and storage adapters can trust the values they are given:
//
//   - Repository names follow the distribution-spec grammar
//     [a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(\/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*
//     and are at most MaxRepositoryLength bytes long.
//   - Tags follow [a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}.
//   - Digests are sha256 or sha512 with lower-case hex of the right length.
//     The spec names no other algorithm a registry must accept, and storage
//     keys are built from digests, so anything else is refused up front.
//   - Manifests are OCI image manifests, OCI indexes, Docker schema2
//     manifests or Docker manifest lists, at most MaxManifestSize bytes.
//     Docker schema1 is refused. Unknown fields are kept out of the parsed
//     value but never rejected, because the spec allows them and the
//     conformance suite pushes them.
//
// # Errors
//
// Every validation failure is an *Error whose Code is one of the spec's wire
// values and whose Message says what was wrong in words a client can act on.
// ErrorCode values are plain strings with one static table of HTTP statuses
// and descriptions; there is no runtime registration. An *Error may wrap a
// cause (Err) for logs; the cause is never written to clients by Envelope.
package oci
