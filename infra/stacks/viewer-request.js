import cf from 'cloudfront';
// Skiff: route by the registry's grammar; tell the origins the public host and the client's address.
var origins = { manifest: 'skiff-manifest', blob: 'skiff-blob', catalog: 'skiff-catalog', ingest: 'skiff-ingest' };
// The stack turns this on with its Ingest prop: upload routes then go to the ingest service.
var ingest = false;
// The functions' body cap (internal/deploy LambdaMaxBody; a test checks it).
var maxBody = 4194304;

// The route group of a path, read from the end as internal/httpapi parseRoute does;
// 'upload' is the blob group's upload routes.
function group(uri) {
  var bad = false;
  var p = uri.indexOf('%') < 0 ? uri : uri.replace(/%([0-9A-Fa-f]{2})?/g, function (m, h) {
    if (!h) { bad = true; return m; }
    return String.fromCharCode(parseInt(h, 16));
  });
  if (bad || p.slice(0, 4) !== '/v2/') return 'catalog';
  p = p.slice(4);
  if (p === '_skiff' || p.slice(0, 7) === '_skiff/') return 'catalog'; // operator API, token endpoint
  var s = p.split('/'), n = s.length, a = s[n - 3], b = s[n - 2], c = s[n - 1];
  if (n >= 4 && a === 'blobs' && b === 'uploads') return 'upload';
  if (n >= 3 && b === 'blobs' && c === 'uploads') return 'upload';
  if (n >= 3 && b === 'tags' && c === 'list') return 'catalog';
  if (n >= 3 && (b === 'manifests' || b === 'referrers')) return 'manifest';
  if (n >= 3 && b === 'blobs') return 'blob';
  return 'catalog';
}

// The registry's own error for a body no function can take (internal/deploy TooLargeAdvice),
// sent before Lambda answers its bare 413 or resets the connection.
function tooLarge() {
  var n = String(maxBody);
  var msg = "request body exceeds this registry's limit of " + n + " bytes per request (its Lambda functions' cap); " +
    'push large blobs in chunks of at most ' + n + ' bytes with PATCH and Content-Range ' +
    '(for example `regctl registry set HOST --blob-chunk ' + n + ' --blob-max ' + n + '`), ' +
    'or ask the operator to turn on the ingest service (stack prop Ingest), which takes a layer of any size in one request';
  return {
    statusCode: 413,
    statusDescription: 'Payload Too Large',
    headers: {
      'content-type': { value: 'application/json' },
      'docker-distribution-api-version': { value: 'registry/2.0' }
    },
    body: { encoding: 'text', data: JSON.stringify({ errors: [{ code: 'SIZE_INVALID', message: msg }] }) }
  };
}

function handler(event) {
  var r = event.request, h = r.headers;
  var g = group(r.uri);
  var origin = g === 'upload' ? (ingest ? 'ingest' : 'blob') : g;
  // Content-Length is read-only here, but readable. Without one (a streaming PATCH) the function cuts the body at its cap.
  if (origin !== 'ingest' && h['content-length'] && Number(h['content-length'].value) > maxBody) return tooLarge();
  cf.selectRequestOriginById(origins[origin]);
  // Only this function sets these: drop what the client sent.
  delete h['x-forwarded-host'];
  delete h['x-skiff-viewer-ip'];
  // Host is read-only here but readable; CloudFront maps HTTP/2's :authority to it.
  h['x-forwarded-host'] = { value: h.host ? h.host.value : event.context.distributionDomainName };
  // The client's address (the origins' request source is an edge or the load balancer).
  h['x-skiff-viewer-ip'] = { value: event.viewer.ip };
  return r;
}
