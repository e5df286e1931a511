package cache

import (
	"net/http"
	"strings"
	"time"
)

// heuristicStatus lists the status codes that are cacheable by default (RFC
// 9110 section 15.1): a response with one of them may be stored without
// explicit freshness, and gets a heuristic lifetime.
var heuristicStatus = map[int]bool{
	200: true, 203: true, 204: true, 300: true, 301: true, 308: true,
	404: true, 405: true, 410: true, 414: true, 501: true,
}

// maxHeuristic caps the Last-Modified heuristic (RFC 9111 section 4.2.2).
const maxHeuristic = 24 * time.Hour

// freshnessLifetime implements RFC 9111 section 4.2.1 for a shared cache:
// s-maxage, then max-age, then Expires minus Date; failing those, a heuristic
// for cacheable-by-default statuses or public responses: the cache's
// DefaultTTL when set, else 10% of the time since Last-Modified (at most a
// day), else nothing.
func freshnessLifetime(status int, h http.Header, cc *directives, date time.Time, defaultTTL time.Duration) time.Duration {
	switch {
	case cc.sMaxAge >= 0:
		return cc.sMaxAge
	case cc.maxAge >= 0:
		return cc.maxAge
	}
	if exp, ok := h["Expires"]; ok {
		t, err := http.ParseTime(firstOf(exp))
		if err != nil {
			return 0 // an invalid Expires, such as "0", means already expired
		}
		return max(0, t.Sub(date))
	}
	if !heuristicStatus[status] && !cc.public {
		return 0
	}
	if defaultTTL > 0 {
		return defaultTTL
	}
	if lm, err := http.ParseTime(h.Get("Last-Modified")); err == nil && date.After(lm) {
		return min(date.Sub(lm)/10, maxHeuristic)
	}
	return 0
}

// hasExplicitFreshness reports whether the origin said how long a response
// stays fresh.
func hasExplicitFreshness(h http.Header, cc *directives) bool {
	_, expires := h["Expires"]
	return cc.sMaxAge >= 0 || cc.maxAge >= 0 || expires
}

// noStoreReason says why a response to r must not be stored in a shared
// cache (RFC 9111 section 3), or "" when it may be. lifetime is its
// freshness lifetime; cookies says r carries cookies outside the cache key
// (see cookies.go).
//
// Choices beyond the RFC: a request with such cookies is treated as one
// with credentials: stored only when the response is public, has
// s-maxage or varies on Cookie; a response that sets a cookie (other than
// the edge's own) is never stored, public or not, so no client is ever
// handed another's cookie or the page of another's new session; a response
// with Vary: * or a text/event-stream body is never stored; a response
// that would be stale at once and has no validator is not worth storing.
// None of these is lifted by a default TTL, which only gives a lifetime to
// responses that may be stored.
func noStoreReason(r *http.Request, rc *directives, status int, h http.Header, cc *directives, lifetime time.Duration, cookies bool) string {
	switch {
	case rc.noStore:
		return "request no-store"
	case status < 200 || status == http.StatusPartialContent || status == http.StatusNotModified:
		return "status"
	case cc.noStore:
		return "no-store"
	case cc.private:
		return "private"
	case r.Header.Get("Authorization") != "" && cc.sMaxAge < 0 && !cc.public && !cc.mustRevalidate:
		return "authorization"
	case cookies && !sharedExplicitly(cc, varyNames(h)):
		return "cookie"
	case len(h["Set-Cookie"]) > 0 && setsUserCookie(h):
		return "set-cookie"
	case len(h["Content-Range"]) > 0:
		return "partial"
	}
	if !hasExplicitFreshness(h, cc) && !cc.public && !heuristicStatus[status] {
		return "status"
	}
	for _, v := range h["Vary"] {
		if strings.Contains(v, "*") {
			return "vary"
		}
	}
	if ct := h.Get("Content-Type"); strings.HasPrefix(ct, "text/event-stream") {
		return "stream"
	}
	if (lifetime <= 0 || cc.noCache) && h.Get("ETag") == "" && h.Get("Last-Modified") == "" {
		return "stale"
	}
	return ""
}

func firstOf(vs []string) string {
	if len(vs) == 0 {
		return ""
	}
	return vs[0]
}
