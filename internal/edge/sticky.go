package edge

import (
	"net/http"
)

// Sticky sessions (Route.Sticky): the first answer to a client sets a
// cookie naming the backend that gave it, and later requests carrying the
// cookie go to that backend while it is listed, in rotation and below its
// route's MaxConcurrency. Otherwise the request is balanced as usual and
// the cookie is rewritten to name the new backend, so a client follows an
// instance that left (a deploy, a crash, a scale-in) to its replacement.
//
// The cookie holds the backend ID (the instance ID), which says nothing
// about the host or port behind it.

// stickyTarget returns the backend the request's cookie names, if it can
// take the request.
func (rt *routeEntry) stickyTarget(tried *triedSet) *target {
	if tried.r == nil {
		return nil
	}
	c, err := tried.r.Cookie(rt.sticky)
	if err != nil || c.Value == "" {
		return nil
	}
	for i := range rt.backends {
		t := &rt.backends[i]
		if t.id != c.Value {
			continue
		}
		var now int64
		if tried.has(t.st) || t.st.ejected(&now) || rt.atCap(t) {
			return nil
		}
		return t
	}
	return nil
}

// stick tells the client, with a cookie, which backend answers it, unless
// its cookie already says so.
func stick(w http.ResponseWriter, r *http.Request, rt *routeEntry, t *target) {
	if rt.sticky == "" || t == nil {
		return
	}
	if c, err := r.Cookie(rt.sticky); err == nil && c.Value == t.id {
		return
	}
	c := &http.Cookie{Name: rt.sticky, Value: t.id, Path: "/", HttpOnly: true, SameSite: http.SameSiteLaxMode}
	w.Header().Add("Set-Cookie", c.String())
}
