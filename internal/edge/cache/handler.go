package cache

import (
	"context"
	"net/http"
	"net/url"
	"time"
)

// serve is the cache's request path:
//
//	GET/HEAD ──▶ stored variant? ──fresh──────────────────────▶ hit
//	               │  └─stale, stale-while-revalidate──────────▶ stale hit + background revalidation
//	               │  └─must validate──▶ conditional request ──304──▶ refreshed hit
//	               │                                         ├─5xx + stale-if-error──▶ stale hit
//	               │                                         └─other──▶ forward (store if allowed)
//	               └─none──▶ origin (collapsed) ──▶ forward (store if allowed)
//	other methods ──▶ origin; success invalidates the URL
func (c *Cache) serve(w http.ResponseWriter, r *http.Request, next http.Handler) {
	switch r.Method {
	case http.MethodGet, http.MethodHead:
	default:
		c.forwardOther(w, r, next)
		return
	}
	if bypass(r) {
		c.pass(w, r, next, fwdBypass)
		return
	}
	rc := requestDirectives(r.Header)
	now := c.now()

	// A HEAD is answered from a stored GET when that needs no origin trip;
	// otherwise HEAD responses live under their own key.
	if r.Method == http.MethodHead {
		getKey, _, _ := keyOf(http.MethodGet, r)
		if e := c.lookup(getKey, r); e != nil {
			if u := judge(e, &rc, e.age(now)); u != useValidate && c.answer(w, r, next, e, u, now) {
				return
			}
		}
	}

	key, _, _ := keyOf(r.Method, r)
	e := c.lookup(key, r)
	if e != nil {
		if u := judge(e, &rc, e.age(now)); u != useValidate && c.answer(w, r, next, e, u, now) {
			return
		}
	}
	if rc.onlyIfCached {
		h := w.Header()
		c.setStatus(h, cacheName+"; fwd=miss; detail=only-if-cached")
		http.Error(w, "504 Gateway Timeout: not in cache and the request said only-if-cached", http.StatusGatewayTimeout)
		return
	}

	fwd := fwdMiss
	switch {
	case e != nil && e.lifetime > e.age(now) && !e.cc.noCache:
		fwd = fwdRequest // fresh, but the client asked for validation
		c.stats.revalidations.Add(1)
	case e != nil:
		fwd = fwdStale
		c.stats.revalidations.Add(1)
	default:
		c.stats.misses.Add(1)
	}
	if !collapsible(r, &rc) {
		c.fetch(w, r, next, e, &rc, fwd)
		return
	}
	c.fetchCollapsed(w, r, next, e, &rc, key, fwd)
}

// answer serves e as judge allowed; false means e's file is gone and the
// request must go to the origin.
func (c *Cache) answer(w http.ResponseWriter, r *http.Request, next http.Handler, e *entry, u use, now time.Time) bool {
	var status string
	switch u {
	case useFresh:
		status = hitStatus(e.ttl(now), "")
	case useStale:
		status = hitStatus(e.ttl(now), "max-stale")
	case useStaleRevalidate:
		status = hitStatus(e.ttl(now), "stale-while-revalidate")
	}
	if err := c.serveEntry(w, r, e, now, status); err != nil {
		return false
	}
	if u == useFresh {
		c.stats.hits.Add(1)
	} else {
		c.stats.stale.Add(1)
	}
	if u == useStaleRevalidate {
		c.revalidateInBackground(r, next, e)
	}
	return true
}

// lookup returns the stored variant of key that may answer r: the one its
// header selects, unless r carries cookies outside the cache key and the
// origin did not allow sharing it with such requests (cookies.go).
func (c *Cache) lookup(key string, r *http.Request) *entry {
	e, _ := c.store.lookup(key, r.Header)
	if e != nil && !e.servesCookies() && c.unkeyedCookies(r.Header) {
		return nil
	}
	return e
}

// bypass reports requests the cache leaves alone: protocol upgrades
// (WebSocket), and preconditions the cache does not evaluate.
func bypass(r *http.Request) bool {
	h := r.Header
	return len(h["Upgrade"]) > 0 || len(h["If-Match"]) > 0 || len(h["If-Unmodified-Since"]) > 0
}

// collapsible reports whether a request may share another's trip to the
// origin (see collapse.go).
func collapsible(r *http.Request, rc *directives) bool {
	h := r.Header
	return !rc.restricts() && len(h["Range"]) == 0 && len(h["If-None-Match"]) == 0 && len(h["If-Modified-Since"]) == 0
}

// fetchCollapsed sends r to the origin unless a request for the same key is
// already there, in which case it waits for that one and serves what it
// stored.
func (c *Cache) fetchCollapsed(w http.ResponseWriter, r *http.Request, next http.Handler, stale *entry, rc *directives, key, fwd string) {
	f, leader := c.flights.join(key)
	if leader {
		var res fetchResult
		defer func() { c.flights.land(key, f, res) }()
		res = c.fetch(w, r, next, stale, rc, fwd)
		return
	}
	select {
	case <-f.done:
	case <-r.Context().Done():
		return
	}
	now := c.now()
	if e := f.res.e; e != nil && varyMatches(e.varyNames, e.varyValues, r.Header) && e.method == r.Method &&
		(e.servesCookies() || !c.unkeyedCookies(r.Header)) {
		var status string
		switch {
		case f.res.staleError:
			status = revalidatedStatus(fwd, f.res.code, e.ttl(now), "stale-if-error")
		case judge(e, rc, e.age(now)) == useFresh:
			status = hitStatus(e.ttl(now), "collapsed")
		}
		if status != "" && c.serveEntry(w, r, e, now, status) == nil {
			c.stats.collapsed.Add(1)
			if f.res.staleError {
				c.stats.stale.Add(1)
			} else {
				c.stats.hits.Add(1)
			}
			return
		}
	}
	// The leader's response was not stored, or not for this variant: go
	// alone, revalidating whatever is stored now.
	e := c.lookup(key, r)
	if e != nil && judge(e, rc, e.age(now)) == useFresh && c.answer(w, r, next, e, useFresh, now) {
		return
	}
	c.fetch(w, r, next, e, rc, fwd)
}

// fetch sends r to next. With a stored entry, the request is made
// conditional on its validators, and a 304 refreshes it; without one, r
// goes as the client sent it. The response is streamed to w (nil in the
// background) and stored when it may be.
func (c *Cache) fetch(w http.ResponseWriter, r *http.Request, next http.Handler, stale *entry, rc *directives, fwd string) (res fetchResult) {
	out := r
	if stale != nil {
		out = conditionalRequest(r, stale)
	}
	rec := &recorder{c: c, w: w, req: out, rc: rc, stale: stale, fwd: fwd, hdr: make(http.Header)}
	requestTime := c.now()
	func() {
		defer func() {
			if p := recover(); p != nil {
				rec.sink.discard()
				panic(p) // http.ErrAbortHandler from the proxy: the client's connection is cut
			}
		}()
		next.ServeHTTP(rec, out)
	}()
	if !rec.wroteHeader {
		rec.WriteHeader(http.StatusOK)
	}
	responseTime := c.now()

	switch rec.outcome {
	case outcomeNotChanged:
		fresh := c.refresh(stale, rec.hdr, requestTime, responseTime)
		// The 304 answered this request: its fields replace the stored
		// ones only when the refreshed response may be stored for it, by
		// the rules of any response (a private 304 to a signed-in client
		// may carry that user's fields). Else it answers this client
		// alone, and the stored entry stays as it was.
		res := fetchResult{e: fresh}
		if reason := noStoreReason(out, rc, fresh.status, fresh.header, &fresh.cc, fresh.lifetime, c.unkeyedCookies(out.Header)); reason != "" {
			c.log.Debug("cache: refreshed entry not stored", "key", stale.key, "reason", reason)
			res = fetchResult{}
		} else if !c.store.replace(stale, fresh) {
			c.log.Debug("cache: refreshed entry no longer stored", "key", stale.key)
		}
		if w == nil {
			return res
		}
		// The 304's cookies are this client's (a session opened or
		// renewed): they go to it, never into the stored response.
		cookies, setsCookies := rec.hdr["Set-Cookie"]
		if setsCookies {
			w.Header()["Set-Cookie"] = cookies
		}
		if c.serveEntry(w, r, fresh, responseTime, revalidatedStatus(fwd, http.StatusNotModified, fresh.ttl(responseTime), "")) != nil {
			// The body file went away between the lookup and now; the
			// client still needs an answer.
			delete(w.Header(), "Set-Cookie")
			return c.fetch(w, r, next, nil, rc, fwd)
		}
		return res
	case outcomeStaleError:
		if w == nil {
			return fetchResult{}
		}
		if c.serveEntry(w, r, stale, responseTime, revalidatedStatus(fwd, rec.status, stale.ttl(responseTime), "stale-if-error")) != nil {
			http.Error(w, http.StatusText(rec.status), rec.status)
			return fetchResult{}
		}
		c.stats.stale.Add(1)
		return fetchResult{e: stale, staleError: true, code: rec.status}
	}

	if !rec.complete() {
		rec.sink.discard()
		return fetchResult{}
	}
	key, host, path := keyOf(out.Method, out)
	var names []string
	if vary := rec.hdr["Vary"]; len(vary) > 0 {
		names = varyNames(rec.hdr)
	}
	names = c.keyNames(names)
	resp := response{
		key: key, method: out.Method, host: host, path: path,
		varyNames: names, varyValues: varyValues(names, r.Header),
		status: rec.status, header: rec.hdr, size: rec.sink.n,
		requestTime: requestTime, responseTime: responseTime,
	}
	if rec.sink.f == nil {
		resp.body = rec.sink.buf
		e := newEntry(resp, c.opts.DefaultTTL, c.statusHeader)
		if !c.store.add(e) {
			return fetchResult{}
		}
		c.stats.stores.Add(1)
		return fetchResult{e: e}
	}
	e := newEntry(resp, c.opts.DefaultTTL, c.statusHeader)
	de, err := c.files.commit(rec.sink.f, e)
	rec.sink.f = nil
	if err != nil {
		c.log.Warn("cache: cannot store entry on disk", "key", key, "err", err)
		return fetchResult{}
	}
	if !c.store.add(de) {
		c.store.deleteFiles([]*entry{de})
		return fetchResult{}
	}
	c.stats.stores.Add(1)
	return fetchResult{e: de}
}

// conditionalRequest copies r for the revalidation of e: the client's own
// validators and Range are replaced by e's validators, so a 304 answers the
// cache and a 200 is a whole response the cache can store.
func conditionalRequest(r *http.Request, e *entry) *http.Request {
	out := r.Clone(r.Context())
	out.Method = e.method
	h := out.Header
	for _, k := range []string{"If-None-Match", "If-Modified-Since", "If-Match", "If-Unmodified-Since", "If-Range", "Range"} {
		delete(h, k)
	}
	if e.etag != "" {
		h.Set("If-None-Match", e.etag)
	}
	if lm := e.header.Get("Last-Modified"); lm != "" {
		h.Set("If-Modified-Since", lm)
	}
	return out
}

// refresh builds the entry that replaces stale after a 304 (RFC 9111
// section 4.3.4): the stored header updated with the 304's fields, except
// Content-Length, and new request and response times.
func (c *Cache) refresh(stale *entry, update http.Header, requestTime, responseTime time.Time) *entry {
	h := stale.header.Clone()
	for k, v := range update {
		switch k {
		case "Content-Length", "Content-Encoding", "Content-Type", c.statusHeader:
			continue
		}
		h[k] = v
	}
	if _, ok := update["Date"]; !ok {
		delete(h, "Date") // the old Date would make the response look old
	}
	fresh := newEntry(response{
		key: stale.key, method: stale.method, host: stale.host, path: stale.path,
		varyNames: stale.varyNames, varyValues: stale.varyValues,
		status: stale.status, header: h, body: stale.body, file: stale.file, size: stale.size,
		requestTime: requestTime, responseTime: responseTime,
	}, c.opts.DefaultTTL, c.statusHeader)
	fresh.cost = stale.cost
	return fresh
}

// revalidateInBackground validates e with the origin without a client
// waiting (stale-while-revalidate), once at a time per entry.
func (c *Cache) revalidateInBackground(r *http.Request, next http.Handler, e *entry) {
	if !e.revalidating.CompareAndSwap(false, true) {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), c.opts.RevalidateTimeout)
	req := r.Clone(ctx)
	req.Body = http.NoBody
	req.ContentLength = 0
	c.bg.Add(1)
	go func() {
		defer c.bg.Done()
		defer cancel()
		stop := context.AfterFunc(c.ctx, cancel)
		defer stop()
		defer func() {
			if p := recover(); p != nil && p != http.ErrAbortHandler {
				c.log.Warn("cache: background revalidation failed", "key", e.key, "panic", p)
			}
		}()
		c.stats.revalidations.Add(1)
		if res := c.fetch(nil, req, next, e, &noDirectives, fwdStale); res.e == nil {
			e.revalidating.Store(false) // let a later request try again
		}
	}()
}

// pass sends a request the cache does not handle straight to next, only
// adding the cache status.
func (c *Cache) pass(w http.ResponseWriter, r *http.Request, next http.Handler, fwd string) {
	sw := &statusWriter{ResponseWriter: w, c: c, value: cacheName + "; fwd=" + fwd}
	next.ServeHTTP(sw, r)
	sw.finish()
}

// forwardOther sends a request with a method the cache does not serve to
// next. An unsafe method that succeeds invalidates the stored responses for
// its URL and for same-host Location and Content-Location URLs (RFC 9111
// section 4.4).
func (c *Cache) forwardOther(w http.ResponseWriter, r *http.Request, next http.Handler) {
	sw := &statusWriter{ResponseWriter: w, c: c, value: cacheName + "; fwd=" + fwdMethod}
	next.ServeHTTP(sw, r)
	sw.finish()
	switch r.Method {
	case http.MethodOptions, http.MethodTrace, "PRI":
		return
	}
	if sw.status >= 400 {
		return
	}
	host := normalizeHost(r.Host)
	n := c.invalidateURI(host, r.URL.RequestURI())
	for _, field := range []string{"Location", "Content-Location"} {
		v := sw.Header().Get(field)
		if v == "" {
			continue
		}
		u, err := r.URL.Parse(v)
		if err != nil || (u.Host != "" && normalizeHost(u.Host) != host) {
			continue
		}
		n += c.invalidateURI(host, (&url.URL{Path: u.Path, RawPath: u.RawPath, RawQuery: u.RawQuery}).RequestURI())
	}
	if n > 0 {
		c.log.Debug("cache: invalidated by unsafe method", "method", r.Method, "host", host, "uri", r.URL.RequestURI(), "entries", n)
	}
}

// invalidateURI drops every variant of target on host, for GET and HEAD.
func (c *Cache) invalidateURI(host, target string) int {
	n := c.store.removeKey(uriKey(http.MethodGet, host, target)) + c.store.removeKey(uriKey(http.MethodHead, host, target))
	c.stats.invalidations.Add(int64(n))
	return n
}

// statusWriter adds the cache status to a response the cache only passes
// on, and remembers its status code.
type statusWriter struct {
	http.ResponseWriter
	c      *Cache
	value  string
	status int
}

var _ http.Flusher = (*statusWriter)(nil)

func (sw *statusWriter) WriteHeader(code int) {
	if sw.status == 0 && code >= 200 {
		sw.status = code
		sw.c.setStatus(sw.ResponseWriter.Header(), sw.value)
	}
	sw.ResponseWriter.WriteHeader(code)
}

func (sw *statusWriter) Write(p []byte) (int, error) {
	if sw.status == 0 {
		sw.WriteHeader(http.StatusOK)
	}
	return sw.ResponseWriter.Write(p)
}

// finish sends the header of a handler that wrote nothing, as net/http
// would, with the cache status.
func (sw *statusWriter) finish() {
	if sw.status == 0 {
		sw.WriteHeader(http.StatusOK)
	}
}

// Flush passes a flush on to the client's writer.
func (sw *statusWriter) Flush() {
	if sw.status == 0 {
		sw.WriteHeader(http.StatusOK)
	}
	_ = http.NewResponseController(sw.ResponseWriter).Flush()
}

// Unwrap gives http.ResponseController the client's writer (for Hijack).
func (sw *statusWriter) Unwrap() http.ResponseWriter { return sw.ResponseWriter }
