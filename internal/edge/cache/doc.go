// Package cache is the edge's HTTP cache and response compression, both as
// http.Handler middleware that the edge puts in front of its reverse proxy
// per entrypoint or route.
//
// Cache is an RFC 9111 shared cache. It owns
//
//   - the cache key: method (GET or HEAD), host without port, path and
//     query, plus the request values of the response's Vary fields as a
//     secondary key (key.go); Vary: * never matches;
//   - storability (freshness.go): s-maxage over max-age over Expires-Date,
//     a heuristic (DefaultTTL, or 10% of the Last-Modified age) for
//     cacheable-by-default statuses or public responses; no-store and
//     private are never stored, no-cache is stored and always revalidated;
//     a request with Authorization only with s-maxage, public or
//     must-revalidate; a request with cookies outside the key only with
//     public, s-maxage or Vary: Cookie, and only such responses answer it;
//     a response with Set-Cookie never (cookies.go); DefaultTTL makes
//     none of these storable;
//   - key cookies (Options.KeyCookies, cookies.go): named cookies' values
//     are part of the secondary key, so each session has its own entries;
//   - reuse (entry.go): Age per RFC 9111 section 4.2.3, sent on every hit;
//     the client's no-cache, max-age, min-fresh, max-stale, only-if-cached
//     and no-store; stale-while-revalidate (a background revalidation, one
//     at a time per entry) and stale-if-error (RFC 5861); must-revalidate
//     and proxy-revalidate forbid serving stale;
//   - validation (handler.go): If-None-Match and If-Modified-Since to the
//     origin from the stored ETag and Last-Modified, a 304 refreshing the
//     stored header; clients' own validators answered with a 304 from a
//     stored 200, and their Range requests from it by http.ServeContent;
//   - request collapsing (collapse.go): concurrent misses for one key reach
//     the origin once, and the waiters get the response if it was stored;
//   - invalidation: unsafe methods that succeed drop their URL (and
//     same-host Location and Content-Location), Invalidate and
//     InvalidateHost drop paths by exact match or trailing-* prefix;
//   - storage (store.go, disk.go): a memory LRU bounded by bytes, and an
//     optional disk LRU in Options.Dir, also bounded, that survives a
//     restart;
//   - a cache-status header in RFC 9211 form on every response (status.go);
//   - hits for a server of its own (hit.go): LookupHit finds, under the
//     same rules, what Handler would answer from memory alone, so that the
//     edge's fast path writes it without net/http's server.
//
// Partial responses (206) are not stored: a Range request that misses goes
// to the origin as sent. A HEAD is answered from a stored GET when that is
// fresh; otherwise HEAD responses are stored under their own key.
//
// Compress (compress.go) encodes responses with brotli or gzip by the
// client's Accept-Encoding. Put it inside the cache —
// cache.Handler(Compress(proxy)) — to store the encoded bodies once per
// coding (the cache folds Accept-Encoding values to the set of codings
// they accept), or outside to store identity bodies and pay the encoding
// on every hit.
//
// The package must not touch routing, the proxy's transport, the store of
// the control plane or anything outside its Dir: it only sees requests and
// the responses the wrapped handler writes.
package cache
