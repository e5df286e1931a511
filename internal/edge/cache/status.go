package cache

import (
	"net/http"
	"strconv"
	"time"
)

// Every response through the cache carries a status in the style of RFC
// 9211's Cache-Status, one list member for this cache:
//
//	berth; hit; ttl=42                                   fresh hit
//	berth; hit; ttl=42; collapsed                        served from a fetch another request made
//	berth; hit; ttl=-3; detail=stale-while-revalidate    stale hit, revalidating in the background
//	berth; hit; ttl=-3; detail=max-stale                 stale hit the client allowed
//	berth; fwd=miss; stored                              miss, response stored
//	berth; fwd=miss                                      miss, response not storable
//	berth; fwd=stale; fwd-status=304; ttl=60             revalidated, stored response refreshed and served
//	berth; fwd=stale; fwd-status=200; stored             revalidated, new response
//	berth; fwd=stale; fwd-status=503; ttl=-9; detail=stale-if-error   origin failed, stale response served
//	berth; fwd=request; fwd-status=304; ttl=60           a fresh stored response the client asked to revalidate (no-cache)
//	berth; fwd=method                                    a method the cache does not serve (POST...)
//	berth; fwd=bypass                                    a request the cache does not handle (Upgrade, If-Match)
//	berth; fwd=miss; detail=only-if-cached               504: nothing stored and the client forbade the origin
//
// "stored" is decided when the header is sent, before the body: a body
// without Content-Length that turns out larger than MaxObjectBytes, or is
// cut short, is announced as stored and then dropped.
//
// With the header name Cache-Status the member is appended to any list the
// origin sent; with any other name (X-Cache) it replaces the value.

const cacheName = "berth"

const (
	fwdMiss    = "miss"
	fwdStale   = "stale"
	fwdRequest = "request"
	fwdMethod  = "method"
	fwdBypass  = "bypass"
)

// setStatus sets the cache-status header.
func (c *Cache) setStatus(h http.Header, v string) {
	if c.appendStatus {
		h[c.statusHeader] = append(h[c.statusHeader][:len(h[c.statusHeader]):len(h[c.statusHeader])], v)
		return
	}
	h[c.statusHeader] = []string{v}
}

func hitStatus(ttl time.Duration, detail string) string {
	s := cacheName + "; hit; ttl=" + strconv.FormatInt(seconds(ttl), 10)
	switch detail {
	case "":
	case "collapsed":
		s += "; collapsed"
	default:
		s += "; detail=" + detail
	}
	return s
}

// fwdStatus is the status of a response the origin produced.
func fwdStatus(fwd string, code int, revalidation, stored bool) string {
	s := cacheName + "; fwd=" + fwd
	if revalidation {
		s += "; fwd-status=" + strconv.Itoa(code)
	}
	if stored {
		s += "; stored"
	}
	return s
}

// revalidatedStatus is the status of a stored response served after the
// origin answered 304 or failed.
func revalidatedStatus(fwd string, code int, ttl time.Duration, detail string) string {
	s := cacheName + "; fwd=" + fwd + "; fwd-status=" + strconv.Itoa(code) + "; ttl=" + strconv.FormatInt(seconds(ttl), 10)
	if detail != "" {
		s += "; detail=" + detail
	}
	return s
}

// seconds rounds d towards negative infinity, so that a response stale by
// half a second shows ttl=-1, not 0.
func seconds(d time.Duration) int64 {
	s := int64(d / time.Second)
	if d < 0 && d%time.Second != 0 {
		s--
	}
	return s
}
