import cf from 'cloudfront';
// Skiff: route by the registry's grammar; tell the functions the public host and the client's address.
var origins = { manifest: 'skiff-manifest', blob: 'skiff-blob', catalog: 'skiff-catalog' };

// The route group of a path, read from the end as internal/httpapi parseRoute does.
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
  if (n >= 4 && a === 'blobs' && b === 'uploads') return 'blob';
  if (n >= 3 && b === 'blobs' && c === 'uploads') return 'blob';
  if (n >= 3 && b === 'tags' && c === 'list') return 'catalog';
  if (n >= 3 && (b === 'manifests' || b === 'referrers')) return 'manifest';
  if (n >= 3 && b === 'blobs') return 'blob';
  return 'catalog';
}

function handler(event) {
  var r = event.request, h = r.headers;
  cf.selectRequestOriginById(origins[group(r.uri)]);
  // Only this function sets these: drop what the client sent.
  delete h['x-forwarded-host'];
  delete h['x-skiff-viewer-ip'];
  // Host is read-only here but readable; CloudFront maps HTTP/2's :authority to it.
  h['x-forwarded-host'] = { value: h.host ? h.host.value : event.context.distributionDomainName };
  // The client's address (the functions' request source is an edge).
  h['x-skiff-viewer-ip'] = { value: event.viewer.ip };
  return r;
}
