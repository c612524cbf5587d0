// Package lambdaweb serves an http.Handler behind a Lambda Function URL
// (payload format 2.0, invoke mode BUFFERED), with CloudFront in front.
//
// Handler turns each events.LambdaFunctionURLRequest into the
// *http.Request that `skiff serve` would have built for the same bytes on
// the wire, and the handler's answer back into an
// events.LambdaFunctionURLResponse:
//
//   - rawPath and rawQueryString are used as they are: %2F stays escaped in
//     URL.RawPath and `+` stays in RawQuery, as net/http's server parses a
//     request line;
//   - headers arrive with multiple values already comma-joined and are kept
//     as one value each; the event's cookies become one Cookie header; Host
//     is the event's host header (the Function URL's domain behind
//     CloudFront); RemoteAddr is requestContext.http.sourceIp, and
//     X-Forwarded-For passes through for the handler to judge;
//   - the body is streamed out of the event (base64-decoded on the fly when
//     isBase64Encoded) with an exact ContentLength, so the handler's own body
//     cap (httpapi.WithMaxBody) answers 413 before reading anything, and the
//     adapter never holds a second copy of it;
//   - the response keeps the handler's status and headers, multi-value
//     headers comma-joined and Set-Cookie moved to cookies. Its body is sent
//     as text when the Content-Type is JSON or text and the bytes are valid
//     UTF-8, else base64. The Content-Type is never sniffed: registry
//     clients need the exact media type the handler set.
//
// Lambda caps a buffered response at 6 MB. Blobs of a MiB or more are
// answered by a redirect to S3, so a larger response is a bug; it becomes a
// 502 in the OCI error envelope instead of a failed invocation.
//
// With an origin secret configured (WithOrigin, from origin.FromConfig), a
// request without a matching X-Skiff-Origin-Secret header never reaches the
// handler: it is answered 403 DENIED. A Secrets Manager secret is read at
// cold start, AWSCURRENT and AWSPREVIOUS both accepted so a rotation refuses
// nothing, and read again every few minutes by warm functions. The header
// is removed before the handler runs either way, so it can reach no log.
//
// A panic in the conversion or the handler becomes a logged 500: the
// function keeps serving, and Lambda never sees a failed invocation (which
// a Function URL would turn into a bare 502 without the error envelope).
package lambdaweb
