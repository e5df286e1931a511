package cache

import (
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// An entry is one stored response: one variant of one primary key. Its
// response fields never change once it is published in the store, so a
// request can serve it after letting go of the store's lock; a refresh after
// a 304 or a move to disk publishes a new entry in its place.
type entry struct {
	key        string // primary key (keyOf)
	method     string // GET or HEAD
	host, path string // for invalidation by pattern
	varyNames  []string
	varyValues []string

	status int
	header http.Header // as stored: no Age, no Set-Cookie, every value slice clipped
	body   []byte      // the body when in memory
	file   string      // the entry file when on disk; the body is its first size bytes
	size   int64       // body length

	requestTime  time.Time
	responseTime time.Time
	initialAge   time.Duration // corrected_initial_age, RFC 9111 section 4.2.3

	cc           directives
	lifetime     time.Duration
	etag         string
	lastModified time.Time

	// revalidating is set while a background revalidation of this entry
	// runs, so that stale-while-revalidate goes to the origin once.
	revalidating atomic.Bool

	// Guarded by store.mu.
	prev, next *entry
	list       *lruList // the list holding the entry; nil while it moves to disk
	indexed    bool
	cost       int64
}

// response is what an entry is built from.
type response struct {
	key, method, host, path string
	varyNames, varyValues   []string
	status                  int
	header                  http.Header
	body                    []byte
	file                    string
	size                    int64
	requestTime             time.Time
	responseTime            time.Time
}

// newEntry derives an entry's freshness from a response. It takes ownership
// of resp.header, which it cleans for storage.
func newEntry(resp response, defaultTTL time.Duration, statusHeader string) *entry {
	h := resp.header
	ageValue := time.Duration(0)
	if v, err := strconv.ParseInt(strings.TrimSpace(h.Get("Age")), 10, 64); err == nil && v > 0 {
		ageValue = min(time.Duration(v)*time.Second, maxDelta)
	}
	date, err := http.ParseTime(h.Get("Date"))
	if err != nil {
		date = resp.responseTime
		h.Set("Date", date.UTC().Format(http.TimeFormat))
	}
	for _, k := range unstoredFields {
		delete(h, k)
	}
	delete(h, statusHeader)
	if resp.method == http.MethodGet && bodyAllowed(resp.status) {
		h.Set("Content-Length", strconv.FormatInt(resp.size, 10))
	}
	h = h.Clone() // one backing array, every slice clipped: see serveEntry

	e := &entry{
		key: resp.key, method: resp.method, host: resp.host, path: resp.path,
		varyNames: resp.varyNames, varyValues: resp.varyValues,
		status: resp.status, header: h, body: resp.body, file: resp.file, size: resp.size,
		requestTime: resp.requestTime, responseTime: resp.responseTime,
	}
	// RFC 9111 section 4.2.3.
	apparentAge := max(0, resp.responseTime.Sub(date))
	responseDelay := max(0, resp.responseTime.Sub(resp.requestTime))
	e.initialAge = max(apparentAge, ageValue+responseDelay)

	e.cc = parseDirectives(h)
	e.lifetime = freshnessLifetime(e.status, h, &e.cc, date, defaultTTL)
	e.etag = h.Get("ETag")
	if lm, err := http.ParseTime(h.Get("Last-Modified")); err == nil {
		e.lastModified = lm
	}
	return e
}

// unstoredFields are dropped before a response is stored: hop-by-hop fields,
// Age (recomputed on every hit), and Set-Cookie (only the edge's own can be
// there, see noStoreReason; a refresh's 304 may carry any).
var unstoredFields = []string{
	"Age", "Set-Cookie", "Connection", "Keep-Alive", "Proxy-Connection",
	"Proxy-Authenticate", "Proxy-Authorization", "Te", "Trailer",
	"Transfer-Encoding", "Upgrade",
}

// clone returns a copy of e for publishing in its place, with a new body
// location. The store links are left empty.
func (e *entry) clone(body []byte, file string) *entry {
	return &entry{
		key: e.key, method: e.method, host: e.host, path: e.path,
		varyNames: e.varyNames, varyValues: e.varyValues,
		status: e.status, header: e.header, body: body, file: file, size: e.size,
		requestTime: e.requestTime, responseTime: e.responseTime, initialAge: e.initialAge,
		cc: e.cc, lifetime: e.lifetime, etag: e.etag, lastModified: e.lastModified,
	}
}

// age is the entry's current_age at now (RFC 9111 section 4.2.3).
func (e *entry) age(now time.Time) time.Duration {
	return e.initialAge + max(0, now.Sub(e.responseTime))
}

// ttl is how much longer the entry stays fresh; negative once stale.
func (e *entry) ttl(now time.Time) time.Duration {
	return e.lifetime - e.age(now)
}

// noStaleServe reports whether the origin forbade serving the entry stale
// without revalidation. s-maxage implies proxy-revalidate (RFC 9111 section
// 5.2.2.10), but an explicit stale-while-revalidate or stale-if-error from
// the same origin is taken as its wish to allow exactly that.
func (e *entry) noStaleServe() bool {
	return e.cc.mustRevalidate || e.cc.proxyRevalidate || e.cc.noCache
}

// use says how a stored response may answer a request.
type use int

const (
	useValidate        use = iota // ask the origin first
	useFresh                      // serve it
	useStale                      // serve it stale: the client allowed it with max-stale
	useStaleRevalidate            // serve it stale and revalidate in the background
)

// judge decides how e may answer a request with directives rc at age.
func judge(e *entry, rc *directives, age time.Duration) use {
	if e.cc.noCache || rc.noCache || rc.maxAge == 0 {
		return useValidate
	}
	fresh := e.lifetime > age
	if fresh && (rc.maxAge < 0 || age <= rc.maxAge) && (rc.minFresh < 0 || e.lifetime-age >= rc.minFresh) {
		return useFresh
	}
	if fresh || e.noStaleServe() {
		return useValidate
	}
	staleness := age - e.lifetime
	if rc.maxStale >= 0 && staleness <= rc.maxStale && e.cc.sMaxAge < 0 && (rc.maxAge < 0 || age <= rc.maxAge) {
		return useStale
	}
	if e.cc.staleWhileRevalidate >= 0 && staleness < e.cc.staleWhileRevalidate && !rc.restricts() {
		return useStaleRevalidate
	}
	return useValidate
}

// servesCookies reports whether e may answer a request that carries
// cookies outside the cache key: only when its origin allowed a shared
// cache explicitly (cookies.go). Otherwise a page stored for a visitor
// without a session would answer a signed-in user.
func (e *entry) servesCookies() bool {
	return sharedExplicitly(&e.cc, e.varyNames)
}

// staleIfError reports whether e may answer a request with directives rc
// when its revalidation met an error (RFC 5861 section 4): the response's
// or the request's stale-if-error window must cover the staleness.
func staleIfError(e *entry, rc *directives, age time.Duration) bool {
	if e.noStaleServe() || rc.noCache {
		return false
	}
	window := max(e.cc.staleIfError, rc.staleIfError)
	return window >= 0 && age-e.lifetime <= window
}

// bodyAllowed reports whether a response with status carries content.
func bodyAllowed(status int) bool {
	return status >= 200 && status != http.StatusNoContent && status != http.StatusNotModified
}
