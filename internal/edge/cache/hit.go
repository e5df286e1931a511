package cache

import (
	"net/http"
	"time"
)

// Hit is a stored answer a request gets without its origin, found by
// LookupHit; the edge's fast path writes it without net/http's server.
type Hit struct {
	c   *Cache
	e   *entry
	u   use
	now time.Time
}

// LookupHit returns what Handler would answer r with from memory alone,
// with the same rules: a GET or HEAD whose stored variant (by Vary and
// the cookie rules) is fresh for the request's own directives, or stale
// within its max-stale. It reports false for everything Handler must
// decide itself (misses, validation, stale-while-revalidate, Range,
// preconditions it does not evaluate, entries on disk), so a caller that
// gets false passes r to Handler.
func (c *Cache) LookupHit(r *http.Request) (Hit, bool) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return Hit{}, false
	}
	if bypass(r) || len(r.Header["Range"]) > 0 {
		return Hit{}, false
	}
	rc := requestDirectives(r.Header)
	now := c.now()
	// As serve: a HEAD is answered from a stored GET first.
	if r.Method == http.MethodHead {
		getKey, _, _ := keyOf(http.MethodGet, r)
		if e := c.lookup(getKey, r); e != nil {
			if u := judge(e, &rc, e.age(now)); u != useValidate {
				return c.hit(e, u, now)
			}
		}
	}
	key, _, _ := keyOf(r.Method, r)
	e := c.lookup(key, r)
	if e == nil {
		return Hit{}, false
	}
	u := judge(e, &rc, e.age(now))
	if u == useValidate {
		return Hit{}, false
	}
	return c.hit(e, u, now)
}

// hit is e as a Hit, when serving it needs neither the origin nor a file.
func (c *Cache) hit(e *entry, u use, now time.Time) (Hit, bool) {
	if u == useStaleRevalidate || e.file != "" {
		return Hit{}, false
	}
	return Hit{c: c, e: e, u: u, now: now}, true
}

// Serve answers r with the hit, as Handler answers it: the stored header,
// Age, the cache-status, a 304 for the client's validators, the body
// (none for HEAD). It counts the hit in Stats.
func (h Hit) Serve(w http.ResponseWriter, r *http.Request) {
	// Memory only: answer cannot fail.
	_ = h.c.answer(w, r, nil, h.e, h.u, h.now)
}
