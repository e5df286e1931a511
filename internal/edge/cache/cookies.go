package cache

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
)

// Cookies are how a shared cache hands one user's page to another: a
// response to a request that carries a session cookie is usually that
// user's own, whatever its Cache-Control says. So the cache treats the
// request's cookies as credentials, as RFC 9111 section 3.5 treats
// Authorization, unless the operator named them in Options.KeyCookies:
//
//   - a request carrying a cookie that is not in KeyCookies ("unkeyed") is
//     stored, and answered from the store, only when the response allows a
//     shared cache explicitly: public, s-maxage, or Vary: Cookie (which
//     keys it on the whole Cookie field). DefaultTTL does not make it
//     storable;
//   - the values of the KeyCookies are part of every stored response's
//     secondary key (a pseudo Vary field per cookie), so each value has its
//     own entry and a request without the cookie never gets one stored for
//     a request with it, or the other way round;
//   - a response that sets a cookie is never stored: its body may be the
//     page of the session it opens.
//
// The edge's own cookies, whose names start with edgeCookiePrefix (the
// sticky-session cookies that name a backend, not a user), are neither
// credentials nor a reason not to store; they are dropped from a stored
// response like any Set-Cookie.

// edgeCookiePrefix starts the names of the cookies the edge itself sets
// (sticky sessions: "berth_" + entrypoint, "berth_sticky_" + service).
const edgeCookiePrefix = "berth_"

// cookieKeyPrefix starts the pseudo Vary name of a key cookie. '=' cannot
// appear in a field name, so no origin's Vary names one by accident.
const cookieKeyPrefix = "cookie="

// ValidateCookieName reports a name that cannot be a cookie's (RFC 6265
// section 4.1.1: a token), for Options.KeyCookies and the spec.
func ValidateCookieName(name string) error {
	if name == "" {
		return fmt.Errorf("%w: empty cookie name", ErrInvalidOptions)
	}
	for i := 0; i < len(name); i++ {
		if !isTokenChar(name[i]) {
			return fmt.Errorf("%w: cookie name %q has %q; a cookie name is letters, digits and !#$%%&'*+-.^_`|~", ErrInvalidOptions, name, name[i])
		}
	}
	return nil
}

func isTokenChar(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

// eachCookie calls f with the name and value of every cookie of a request
// header, in order, until f returns false. A pair without '=' is a cookie
// with that name and no value, so that nothing slips through unseen.
func eachCookie(h http.Header, f func(name, value string) bool) {
	for _, line := range h["Cookie"] {
		for pair := range strings.SplitSeq(line, ";") {
			pair = strings.TrimSpace(pair)
			if pair == "" {
				continue
			}
			name, value, _ := strings.Cut(pair, "=")
			if !f(strings.TrimSpace(name), strings.TrimSpace(value)) {
				return
			}
		}
	}
}

// unkeyedCookies reports whether a request carries a cookie that is
// neither one of the cache's key cookies nor one of the edge's own.
func (c *Cache) unkeyedCookies(h http.Header) bool {
	if len(h["Cookie"]) == 0 {
		return false
	}
	found := false
	eachCookie(h, func(name, _ string) bool {
		if strings.HasPrefix(name, edgeCookiePrefix) || slices.Contains(c.opts.KeyCookies, name) {
			return true
		}
		found = true
		return false
	})
	return found
}

// cookieValue is the secondary-key value of the named cookie: its values in
// the request, in order, or absent when it sent none.
func cookieValue(h http.Header, name string) string {
	var vs []string
	eachCookie(h, func(n, v string) bool {
		if n == name {
			vs = append(vs, v)
		}
		return true
	})
	if vs == nil {
		return absent
	}
	return strings.Join(vs, "; ")
}

// keyNames adds the pseudo Vary names of the key cookies to a response's
// Vary names, sorted and without duplicates.
func (c *Cache) keyNames(names []string) []string {
	if len(c.keyCookieNames) == 0 {
		return names
	}
	out := append(slices.Clip(names), c.keyCookieNames...)
	slices.Sort(out)
	return slices.Compact(out)
}

// keyedAsConfigured reports whether e's secondary key holds every key
// cookie, so that an entry stored under other settings (a disk store from
// before KeyCookies changed) is not served to the wrong cookie.
func (c *Cache) keyedAsConfigured(e *entry) bool {
	for _, n := range c.keyCookieNames {
		if !slices.Contains(e.varyNames, n) {
			return false
		}
	}
	return true
}

// sharedExplicitly reports whether a response said a shared cache may keep
// it even for a request with cookies: public, s-maxage, or a Vary on
// Cookie, which makes the whole Cookie field part of its key.
func sharedExplicitly(cc *directives, varyNames []string) bool {
	return cc.public || cc.sMaxAge >= 0 || slices.Contains(varyNames, "Cookie")
}

// setsUserCookie reports whether a response sets a cookie other than the
// edge's own.
func setsUserCookie(h http.Header) bool {
	for _, v := range h["Set-Cookie"] {
		name, _, _ := strings.Cut(v, "=")
		if !strings.HasPrefix(strings.TrimSpace(name), edgeCookiePrefix) {
			return true
		}
	}
	return false
}
