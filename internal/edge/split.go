package edge

import (
	"hash/fnv"
	"math/rand/v2"
	"net/http"
	"strconv"

	"github.com/berth-dev/berth/internal/router"
)

// split chooses an arm for each request: the arm a tester names in a request
// header, else the one the client's sticky cookie names, else one at random
// by weight. Arm 0 is the default: it takes the share the others leave, and
// everything once the guard trips. A split is immutable once built.
type split struct {
	names      []string // arm names as a header names them
	weights    []int    // basis points; weights[0] is the remainder
	setCookies []string // Set-Cookie values, one per arm; nil without stickiness
	values     []string // cookie values, one per arm
	cookie     string   // sticky cookie name, "" for none
	header     string   // canonical request header name, "" for none
	guard      *guard   // watches arms 1..n; nil for none
}

// choose returns the arm for r, and the Set-Cookie value to send when the
// client must be told (""). It does not allocate unless the split is sticky.
func (sp *split) choose(r *http.Request) (int, string) {
	if len(sp.names) == 1 {
		return 0, ""
	}
	if sp.header != "" {
		if v := r.Header[sp.header]; len(v) > 0 {
			for i, n := range sp.names {
				if n == v[0] {
					return i, ""
				}
			}
		}
	}
	if sp.guard.isTripped() {
		return 0, ""
	}
	if sp.cookie != "" {
		if c, err := r.Cookie(sp.cookie); err == nil {
			for i, v := range sp.values {
				if v == c.Value && (i == 0 || sp.weights[i] > 0) {
					return i, ""
				}
			}
		}
	}
	arm := 0
	n := rand.IntN(router.AllTraffic)
	for i := 1; i < len(sp.weights); i++ {
		if n < sp.weights[i] {
			arm = i
			break
		}
		n -= sp.weights[i]
	}
	if sp.setCookies != nil {
		return arm, sp.setCookies[arm]
	}
	return arm, ""
}

// newSplit builds a split over names, where weights[i] is the share of arm
// i >= 1 in basis points and arm 0 gets the rest. A cookie name makes the
// choice sticky per client.
func newSplit(names []string, weights []int, cookie, header string, g *guard) *split {
	sp := &split{names: names, weights: make([]int, len(names)), guard: g}
	rest := router.AllTraffic
	for i := 1; i < len(names); i++ {
		w := min(max(weights[i], 0), rest)
		sp.weights[i] = w
		rest -= w
	}
	sp.weights[0] = rest
	if header != "" {
		sp.header = http.CanonicalHeaderKey(header)
	}
	if cookie != "" && len(names) > 1 {
		sp.cookie = cookie
		sp.values = make([]string, len(names))
		sp.setCookies = make([]string, len(names))
		for i, n := range names {
			sp.values[i] = cookieValue(n)
			sp.setCookies[i] = (&http.Cookie{Name: cookie, Value: sp.values[i], Path: "/", HttpOnly: true, SameSite: http.SameSiteLaxMode}).String()
		}
	}
	return sp
}

// cookieValue names an arm in a cookie without revealing the origin (a URL
// may be private): a short hash of its name.
func cookieValue(name string) string {
	h := fnv.New32a()
	_, _ = h.Write([]byte(name))
	return strconv.FormatUint(uint64(h.Sum32()), 36)
}
