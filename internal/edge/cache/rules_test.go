package cache

import (
	"cmp"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// reply is what the test origin answers.
type reply struct {
	status int               // default 200
	header map[string]string // "{date}", "{date+N}", "{date-N}" become HTTP dates from the clock
	body   string            // default "v<n>"
	// conditional answers a request whose If-None-Match matches the ETag,
	// or whose If-Modified-Since is not before Last-Modified, with a 304.
	conditional bool
	delay       time.Duration
}

var dateTemplate = regexp.MustCompile(`\{date([+-]\d+)?\}`)

func expandDates(v string, now time.Time) string {
	return dateTemplate.ReplaceAllStringFunc(v, func(m string) string {
		off := 0
		if sub := dateTemplate.FindStringSubmatch(m); sub[1] != "" {
			off, _ = strconv.Atoi(sub[1])
		}
		return now.Add(time.Duration(off) * time.Second).Format(http.TimeFormat)
	})
}

// replies answers the n-th request with replies[n-1], the last one for
// every request after.
func replies(rs ...reply) originFunc {
	return func(n int64, clk *clock, w http.ResponseWriter, r *http.Request) {
		rp := rs[min(int(n), len(rs))-1]
		if rp.delay > 0 {
			time.Sleep(rp.delay)
		}
		h := w.Header()
		setDate(w, clk)
		for k, v := range rp.header {
			h.Set(k, expandDates(v, clk.Now()))
		}
		if rp.conditional && validatorsMatch(r, h) {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		status := rp.status
		if status == 0 {
			status = http.StatusOK
		}
		body := rp.body
		if body == "" {
			body = "v" + strconv.FormatInt(n, 10)
		}
		if !bodyAllowed(status) || r.Method == http.MethodHead {
			w.WriteHeader(status)
			return
		}
		h.Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(status)
		_, _ = w.Write([]byte(body))
	}
}

func validatorsMatch(r *http.Request, h http.Header) bool {
	if inm := r.Header.Get("If-None-Match"); inm != "" {
		return h.Get("ETag") != "" && etagListMatches([]string{inm}, h.Get("ETag"))
	}
	ims, err := http.ParseTime(r.Header.Get("If-Modified-Since"))
	if err != nil {
		return false
	}
	lm, err := http.ParseTime(h.Get("Last-Modified"))
	return err == nil && !lm.After(ims)
}

// step is one request of a rule test and what must follow from it.
type step struct {
	advance time.Duration     // move the clock first
	method  string            // default GET
	path    string            // default /r
	header  map[string]string // request header fields; "Host" sets the host
	times   int               // send it this many times (default 1)

	code      int               // status wanted (default 200)
	cache     []string          // substrings the cache status must contain
	notCache  []string          // substrings it must not contain
	hits      int64             // origin hits wanted after the step
	eventual  bool              // hits is reached eventually (background work)
	body      *string           // body wanted, when set
	want      map[string]string // response header values wanted; "" means absent
	originSaw map[string]string // header values the origin's last request must carry
}

func str(s string) *string { return &s }

type ruleCase struct {
	name   string
	opts   Options
	origin originFunc
	steps  []step
}

func runRules(t *testing.T, cases []ruleCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := newStack(t, tc.opts, tc.origin)
			for i, st := range tc.steps {
				s.clock.Advance(st.advance)
				method, path := st.method, st.path
				if method == "" {
					method = http.MethodGet
				}
				if path == "" {
					path = "/r"
				}
				times := max(st.times, 1)
				for range times {
					res := s.do(t, method, path, st.header)
					msg := fmt.Sprintf("step %d: %s %s %v → %d %q %q", i+1, method, path, st.header, res.StatusCode, res.Header.Get("Cache-Status"), res.body)
					code := st.code
					if code == 0 {
						code = http.StatusOK
					}
					require.Equal(t, code, res.StatusCode, msg)
					status := res.Header.Get("Cache-Status")
					require.NotEmpty(t, status, "every response carries a cache status: "+msg)
					for _, want := range st.cache {
						assert.Contains(t, status, want, msg)
					}
					for _, not := range st.notCache {
						assert.NotContains(t, status, not, msg)
					}
					if st.body != nil {
						assert.Equal(t, *st.body, res.body, msg)
					}
					for k, v := range st.want {
						if v == "" {
							assert.Empty(t, res.Header.Values(k), "%s: %s", k, msg)
						} else {
							assert.Equal(t, v, res.Header.Get(k), "%s: %s", k, msg)
						}
					}
				}
				if st.eventual {
					require.Eventually(t, func() bool { return s.origin.hits.Load() == st.hits }, 5*time.Second, 5*time.Millisecond, "step %d: origin hits", i+1)
					s.cache.bg.Wait() // the background work is done, and did no more
				}
				require.Equal(t, st.hits, s.origin.hits.Load(), "step %d: origin hits", i+1)
				if len(st.originSaw) > 0 {
					last := s.origin.lastRequest()
					require.NotNil(t, last)
					for k, v := range st.originSaw {
						assert.Equal(t, v, last.Header.Get(k), "step %d: origin saw %s", i+1, k)
					}
				}
			}
		})
	}
}

const (
	stored = "fwd=miss; stored"
	miss   = "fwd=miss"
	hit    = "; hit"
)

// TestResponseDirectives covers the response Cache-Control directives,
// Expires and Age.
func TestResponseDirectives(t *testing.T) {
	runRules(t, []ruleCase{
		{
			name:   "max-age: fresh hits with Age, then stale refetch",
			origin: replies(reply{header: map[string]string{"Cache-Control": "max-age=60"}}),
			steps: []step{
				{cache: []string{stored}, hits: 1, body: str("v1"), want: map[string]string{"Age": ""}},
				{cache: []string{"hit; ttl=60"}, hits: 1, body: str("v1"), want: map[string]string{"Age": "0"}},
				{advance: 30 * time.Second, cache: []string{"hit; ttl=30"}, hits: 1, want: map[string]string{"Age": "30"}},
				{advance: 31 * time.Second, cache: []string{"fwd=stale", "fwd-status=200", "stored"}, hits: 2, body: str("v2")},
				{cache: []string{hit}, hits: 2, body: str("v2")},
			},
		},
		{
			name:   "s-maxage wins over max-age in a shared cache",
			origin: replies(reply{header: map[string]string{"Cache-Control": "max-age=10, s-maxage=100"}}),
			steps: []step{
				{cache: []string{stored}, hits: 1},
				{advance: 50 * time.Second, cache: []string{"hit; ttl=50"}, hits: 1},
				{advance: 51 * time.Second, cache: []string{"fwd=stale"}, hits: 2},
			},
		},
		{
			name:   "no-store is never stored",
			origin: replies(reply{header: map[string]string{"Cache-Control": "no-store, max-age=60"}}),
			steps: []step{
				{cache: []string{miss}, notCache: []string{"stored"}, hits: 1, body: str("v1")},
				{cache: []string{miss}, notCache: []string{"stored"}, hits: 2, body: str("v2")},
			},
		},
		{
			name: "no-cache is stored and revalidated on every use",
			origin: replies(reply{conditional: true, header: map[string]string{
				"Cache-Control": "no-cache", "ETag": `"e1"`,
			}}),
			steps: []step{
				{cache: []string{stored}, hits: 1, body: str("v1")},
				{cache: []string{"fwd=stale; fwd-status=304"}, hits: 2, body: str("v1"), originSaw: map[string]string{"If-None-Match": `"e1"`}},
				{cache: []string{"fwd-status=304"}, hits: 3, body: str("v1")},
			},
		},
		{
			name:   "no-cache without a validator is not stored",
			origin: replies(reply{header: map[string]string{"Cache-Control": "no-cache"}}),
			steps: []step{
				{cache: []string{miss}, notCache: []string{"stored"}, hits: 1},
				{cache: []string{miss}, hits: 2},
			},
		},
		{
			name:   "private is never stored by a shared cache",
			origin: replies(reply{header: map[string]string{"Cache-Control": "private, max-age=60"}}),
			steps: []step{
				{cache: []string{miss}, notCache: []string{"stored"}, hits: 1},
				{cache: []string{miss}, hits: 2, body: str("v2")},
			},
		},
		{
			name:   `private="Set-Cookie" (qualified) is treated as private`,
			origin: replies(reply{header: map[string]string{"Cache-Control": `private="Set-Cookie", max-age=60`}}),
			steps: []step{
				{hits: 1, notCache: []string{"stored"}},
				{hits: 2},
			},
		},
		{
			name: "must-revalidate: stale response never served on origin error",
			origin: replies(
				reply{header: map[string]string{"Cache-Control": "max-age=10, must-revalidate, stale-if-error=600", "ETag": `"m"`}},
				reply{status: http.StatusInternalServerError},
			),
			steps: []step{
				{cache: []string{stored}, hits: 1},
				{advance: 5 * time.Second, cache: []string{hit}, hits: 1},
				{advance: 10 * time.Second, code: http.StatusInternalServerError, cache: []string{"fwd=stale", "fwd-status=500"}, hits: 2, body: str("v2")},
			},
		},
		{
			name: "proxy-revalidate: stale response never served on origin error",
			origin: replies(
				reply{header: map[string]string{"Cache-Control": "max-age=10, proxy-revalidate, stale-if-error=600"}},
				reply{status: http.StatusBadGateway},
			),
			steps: []step{
				{cache: []string{stored}, hits: 1},
				{advance: 15 * time.Second, code: http.StatusBadGateway, hits: 2},
			},
		},
		{
			name: "must-revalidate: never served stale even within stale-while-revalidate",
			origin: replies(reply{header: map[string]string{
				"Cache-Control": "max-age=10, must-revalidate, stale-while-revalidate=60",
			}}),
			steps: []step{
				{hits: 1},
				{advance: 15 * time.Second, cache: []string{"fwd=stale"}, hits: 2, body: str("v2")},
			},
		},
		{
			name: "public makes a response with no freshness storable by heuristic",
			opts: Options{DefaultTTL: time.Minute},
			origin: replies(reply{status: http.StatusFound, header: map[string]string{
				"Cache-Control": "public", "Location": "/elsewhere",
			}}),
			steps: []step{
				{code: http.StatusFound, cache: []string{stored}, hits: 1},
				{code: http.StatusFound, cache: []string{"hit; ttl=60"}, hits: 1, want: map[string]string{"Location": "/elsewhere"}},
			},
		},
		{
			name: "Expires minus Date gives the lifetime",
			origin: replies(reply{header: map[string]string{
				"Expires": "{date+60}",
			}}),
			steps: []step{
				{cache: []string{stored}, hits: 1},
				{advance: 20 * time.Second, cache: []string{"hit; ttl=40"}, hits: 1, want: map[string]string{"Age": "20"}},
				{advance: 41 * time.Second, cache: []string{"fwd=stale"}, hits: 2},
			},
		},
		{
			name: "max-age wins over Expires",
			origin: replies(reply{header: map[string]string{
				"Expires": "{date+10}", "Cache-Control": "max-age=100",
			}}),
			steps: []step{
				{hits: 1},
				{advance: 50 * time.Second, cache: []string{"hit; ttl=50"}, hits: 1},
			},
		},
		{
			name: "invalid Expires means already stale: stored for revalidation",
			origin: replies(reply{conditional: true, header: map[string]string{
				"Expires": "0", "ETag": `"x"`,
			}}),
			steps: []step{
				{cache: []string{stored}, hits: 1},
				{cache: []string{"fwd=stale; fwd-status=304"}, hits: 2, body: str("v1")},
			},
		},
		{
			name: "Age from the origin counts against max-age",
			origin: replies(reply{header: map[string]string{
				"Cache-Control": "max-age=120", "Age": "100",
			}}),
			steps: []step{
				{hits: 1},
				{cache: []string{"hit; ttl=20"}, hits: 1, want: map[string]string{"Age": "100"}},
				{advance: 10 * time.Second, cache: []string{"hit; ttl=10"}, hits: 1, want: map[string]string{"Age": "110"}},
				{advance: 11 * time.Second, cache: []string{"fwd=stale"}, hits: 2},
			},
		},
		{
			name: "apparent age from an old Date counts against max-age",
			origin: replies(reply{header: map[string]string{
				"Cache-Control": "max-age=60", "Date": "{date-30}",
			}}),
			steps: []step{
				{hits: 1},
				{cache: []string{"hit; ttl=30"}, hits: 1, want: map[string]string{"Age": "30"}},
			},
		},
	})
}

// TestRequestDirectives covers what clients may ask of the cache.
func TestRequestDirectives(t *testing.T) {
	fresh := replies(reply{conditional: true, header: map[string]string{
		"Cache-Control": "max-age=600", "ETag": `"v"`,
	}})
	runRules(t, []ruleCase{
		{
			name:   "no-cache revalidates a fresh response",
			origin: fresh,
			steps: []step{
				{hits: 1},
				{header: map[string]string{"Cache-Control": "no-cache"}, cache: []string{"fwd=request; fwd-status=304"}, hits: 2, body: str("v1"), originSaw: map[string]string{"If-None-Match": `"v"`}},
				{cache: []string{hit}, hits: 2},
			},
		},
		{
			name:   "max-age=0 revalidates",
			origin: fresh,
			steps: []step{
				{hits: 1},
				{header: map[string]string{"Cache-Control": "max-age=0"}, cache: []string{"fwd=request; fwd-status=304"}, hits: 2, body: str("v1")},
			},
		},
		{
			name:   "Pragma: no-cache from an HTTP/1.0 client revalidates",
			origin: fresh,
			steps: []step{
				{hits: 1},
				{header: map[string]string{"Pragma": "no-cache"}, cache: []string{"fwd-status=304"}, hits: 2},
			},
		},
		{
			name:   "max-age=N refuses an older response",
			origin: replies(reply{header: map[string]string{"Cache-Control": "max-age=600"}}),
			steps: []step{
				{hits: 1},
				{advance: 100 * time.Second, header: map[string]string{"Cache-Control": "max-age=200"}, cache: []string{hit}, hits: 1},
				{header: map[string]string{"Cache-Control": "max-age=50"}, cache: []string{"fwd=request", "stored"}, hits: 2, body: str("v2")},
			},
		},
		{
			name:   "no-store: the response is not stored, a stored one may serve",
			origin: replies(reply{header: map[string]string{"Cache-Control": "max-age=60"}}),
			steps: []step{
				{header: map[string]string{"Cache-Control": "no-store"}, cache: []string{miss}, notCache: []string{"stored"}, hits: 1},
				{cache: []string{stored}, hits: 2},
				{header: map[string]string{"Cache-Control": "no-store"}, cache: []string{hit}, hits: 2, body: str("v2")},
			},
		},
		{
			name:   "max-stale accepts a stale response",
			origin: replies(reply{header: map[string]string{"Cache-Control": "max-age=10"}}),
			steps: []step{
				{hits: 1},
				{advance: 20 * time.Second, header: map[string]string{"Cache-Control": "max-stale=60"}, cache: []string{"hit; ttl=-10; detail=max-stale"}, hits: 1, body: str("v1")},
				{header: map[string]string{"Cache-Control": "max-stale=5"}, cache: []string{"fwd=stale"}, hits: 2},
			},
		},
		{
			name:   "min-fresh wants that much freshness left",
			origin: replies(reply{header: map[string]string{"Cache-Control": "max-age=60"}}),
			steps: []step{
				{hits: 1},
				{advance: 30 * time.Second, header: map[string]string{"Cache-Control": "min-fresh=20"}, cache: []string{hit}, hits: 1},
				{header: map[string]string{"Cache-Control": "min-fresh=40"}, cache: []string{"fwd=request"}, hits: 2},
			},
		},
		{
			name:   "only-if-cached: 504 without a stored response",
			origin: replies(reply{header: map[string]string{"Cache-Control": "max-age=60"}}),
			steps: []step{
				{header: map[string]string{"Cache-Control": "only-if-cached"}, code: http.StatusGatewayTimeout, cache: []string{"only-if-cached"}, hits: 0},
				{hits: 1},
				{header: map[string]string{"Cache-Control": "only-if-cached"}, cache: []string{hit}, hits: 1},
			},
		},
	})
}

// TestAuthorizationAndCookies covers requests with credentials and
// responses that set cookies.
func TestAuthorizationAndCookies(t *testing.T) {
	auth := map[string]string{"Authorization": "Bearer secret"}
	cases := []ruleCase{{
		name:   "Authorization: not stored with max-age alone",
		origin: replies(reply{header: map[string]string{"Cache-Control": "max-age=60"}}),
		steps: []step{
			{header: auth, cache: []string{miss}, notCache: []string{"stored"}, hits: 1},
			{header: auth, hits: 2},
		},
	}}
	for _, cc := range []string{"s-maxage=60", "public, max-age=60", "max-age=60, must-revalidate"} {
		cases = append(cases, ruleCase{
			name:   "Authorization: stored with " + cc,
			origin: replies(reply{header: map[string]string{"Cache-Control": cc}}),
			steps: []step{
				{header: auth, cache: []string{stored}, hits: 1},
				{header: auth, cache: []string{hit}, hits: 1},
			},
		})
	}
	cases = append(cases, ruleCase{
		name:   "Authorization: a default TTL does not make it storable",
		opts:   Options{DefaultTTL: time.Minute},
		origin: replies(reply{}),
		steps: []step{
			{header: auth, notCache: []string{"stored"}, hits: 1},
			{header: auth, hits: 2},
		},
	})
	alice := map[string]string{"Cookie": "session=ALICE"}
	for _, cc := range []string{"", "max-age=60", "max-age=60, must-revalidate"} {
		cases = append(cases, ruleCase{
			name:   "Cookie: not stored with " + cmp.Or(cc, "a default TTL"),
			opts:   Options{DefaultTTL: time.Minute},
			origin: replies(reply{header: map[string]string{"Cache-Control": cc}}),
			steps: []step{
				{header: alice, cache: []string{miss}, notCache: []string{"stored"}, hits: 1, body: str("v1")},
				{cache: []string{stored}, hits: 2, body: str("v2")}, // another client, no cookie
				{cache: []string{hit}, hits: 2, body: str("v2")},
				// The cookie-less page is not served to a request with a
				// cookie either: it may be signed in.
				{header: alice, cache: []string{miss}, notCache: []string{"stored"}, hits: 3, body: str("v3")},
			},
		})
	}
	for _, cc := range []string{"public, max-age=60", "s-maxage=60"} {
		cases = append(cases, ruleCase{
			name:   "Cookie: shared when the origin says " + cc,
			origin: replies(reply{header: map[string]string{"Cache-Control": cc}}),
			steps: []step{
				{header: alice, cache: []string{stored}, hits: 1, body: str("v1")},
				{cache: []string{hit}, hits: 1, body: str("v1")},
				{header: map[string]string{"Cookie": "session=BOB"}, cache: []string{hit}, hits: 1, body: str("v1")},
			},
		})
	}
	cases = append(cases,
		ruleCase{
			name:   "Cookie: Vary: Cookie keys on the whole field",
			origin: replies(reply{header: map[string]string{"Cache-Control": "max-age=60", "Vary": "Cookie"}}),
			steps: []step{
				{header: alice, cache: []string{stored}, hits: 1, body: str("v1")},
				{cache: []string{stored}, hits: 2, body: str("v2")},
				{header: alice, cache: []string{hit}, hits: 2, body: str("v1")},
				{cache: []string{hit}, hits: 2, body: str("v2")},
			},
		},
		ruleCase{
			name:   "Cookie: a key cookie gives each value its own entry",
			opts:   Options{DefaultTTL: time.Minute, KeyCookies: []string{"session"}},
			origin: replies(reply{}),
			steps: []step{
				{header: alice, cache: []string{stored}, hits: 1, body: str("v1")},
				{cache: []string{stored}, hits: 2, body: str("v2")},
				{header: map[string]string{"Cookie": "session=BOB"}, cache: []string{stored}, hits: 3, body: str("v3")},
				{header: map[string]string{"Cookie": "session=ALICE; berth_www=a1"}, cache: []string{hit}, hits: 3, body: str("v1")},
				{cache: []string{hit}, hits: 3, body: str("v2")},
				{header: map[string]string{"Cookie": "session=BOB"}, cache: []string{hit}, hits: 3, body: str("v3")},
				// A cookie outside the key makes the request private again.
				{header: map[string]string{"Cookie": "session=ALICE; theme=dark"}, cache: []string{miss}, notCache: []string{"stored"}, hits: 4, body: str("v4")},
			},
		},
		ruleCase{
			name:   "Cookie: the edge's own sticky cookies are not credentials",
			opts:   Options{DefaultTTL: time.Minute},
			origin: replies(reply{}),
			steps: []step{
				{header: map[string]string{"Cookie": "berth_www=a; berth_sticky_web=i-1"}, cache: []string{stored}, hits: 1},
				{cache: []string{hit}, hits: 1},
			},
		},
		ruleCase{
			name:   "Set-Cookie: never stored, even public",
			opts:   Options{DefaultTTL: time.Minute},
			origin: replies(reply{header: map[string]string{"Cache-Control": "public, max-age=60", "Set-Cookie": "sid=1"}}),
			steps: []step{
				{notCache: []string{"stored"}, hits: 1, want: map[string]string{"Set-Cookie": "sid=1"}},
				{notCache: []string{"stored"}, hits: 2},
			},
		},
		ruleCase{
			name:   "Set-Cookie: the edge's sticky cookie is stored without the cookie",
			origin: replies(reply{header: map[string]string{"Cache-Control": "max-age=60", "Set-Cookie": "berth_sticky_web=i-1; Path=/"}}),
			steps: []step{
				{cache: []string{stored}, hits: 1, want: map[string]string{"Set-Cookie": "berth_sticky_web=i-1; Path=/"}},
				{cache: []string{hit}, hits: 1, want: map[string]string{"Set-Cookie": ""}},
			},
		},
	)
	cases = append(cases, ruleCase{
		// A 304 may open or renew the session of the client that asked:
		// that client gets its cookie, the stored response never does.
		name: "Set-Cookie on a revalidation's 304: to its client only",
		origin: replies(
			reply{header: map[string]string{"Cache-Control": "max-age=10", "ETag": `"e1"`}},
			reply{conditional: true, header: map[string]string{"Cache-Control": "max-age=60", "ETag": `"e1"`, "Set-Cookie": "sid=NEW; Path=/"}},
		),
		steps: []step{
			{cache: []string{stored}, hits: 1, want: map[string]string{"Set-Cookie": ""}},
			{advance: 20 * time.Second, cache: []string{"fwd-status=304"}, hits: 2, body: str("v1"), want: map[string]string{"Set-Cookie": "sid=NEW; Path=/"}},
			{cache: []string{hit}, hits: 2, body: str("v1"), want: map[string]string{"Set-Cookie": ""}},
		},
	})
	cases = append(cases, ruleCase{
		// A signed-in client revalidates a public page; the origin's 304
		// to it is private and carries that user's fields. The stored
		// page may be refreshed only by what may be stored: another
		// client never gets those fields.
		name: "a private 304 to a client with a cookie does not refresh the shared entry",
		origin: func(n int64, clk *clock, w http.ResponseWriter, r *http.Request) {
			setDate(w, clk)
			h := w.Header()
			h.Set("ETag", `"e1"`)
			if r.Header.Get("Cookie") != "" {
				h.Set("Cache-Control", "private, max-age=60")
				h.Set("X-User", "alice")
			} else {
				h.Set("Cache-Control", "public, max-age=10")
			}
			if r.Header.Get("If-None-Match") == `"e1"` {
				w.WriteHeader(http.StatusNotModified)
				return
			}
			_, _ = w.Write([]byte("page"))
		},
		steps: []step{
			{cache: []string{stored}, hits: 1, body: str("page")},
			{advance: 20 * time.Second, header: alice, cache: []string{"fwd-status=304"}, hits: 2, body: str("page"), want: map[string]string{"X-User": "alice"}},
			{cache: []string{"fwd-status=304"}, hits: 3, body: str("page"), want: map[string]string{"X-User": "", "Cache-Control": "public, max-age=10"}},
			{cache: []string{hit}, hits: 3, body: str("page"), want: map[string]string{"X-User": ""}},
		},
	})
	for _, cc := range []string{"private", "no-store", "private, max-age=60"} {
		cases = append(cases, ruleCase{
			name:   "a default TTL does not make " + cc + " storable",
			opts:   Options{DefaultTTL: time.Minute},
			origin: replies(reply{header: map[string]string{"Cache-Control": cc}}),
			steps: []step{
				{notCache: []string{"stored"}, hits: 1},
				{hits: 2},
			},
		})
	}
	runRules(t, cases)
}

// TestValidation covers revalidation with the origin and clients' own
// conditional requests.
func TestValidation(t *testing.T) {
	lastModified := testEpoch.Add(-time.Hour).Format(http.TimeFormat)
	runRules(t, []ruleCase{
		{
			name: "ETag: 304 from the origin refreshes the stored header",
			origin: replies(
				reply{header: map[string]string{"Cache-Control": "max-age=10", "ETag": `"e1"`, "X-Version": "1"}},
				reply{conditional: true, header: map[string]string{"Cache-Control": "max-age=100", "ETag": `"e1"`, "X-Version": "2"}},
			),
			steps: []step{
				{hits: 1, want: map[string]string{"X-Version": "1"}},
				{advance: 20 * time.Second, cache: []string{"fwd=stale; fwd-status=304; ttl=100"}, hits: 2, body: str("v1"),
					want: map[string]string{"X-Version": "2", "Age": "0"}, originSaw: map[string]string{"If-None-Match": `"e1"`}},
				{advance: 50 * time.Second, cache: []string{"hit; ttl=50"}, hits: 2, body: str("v1"), want: map[string]string{"X-Version": "2"}},
			},
		},
		{
			name: "Last-Modified: If-Modified-Since to the origin",
			origin: replies(reply{conditional: true, header: map[string]string{
				"Cache-Control": "max-age=10", "Last-Modified": lastModified,
			}}),
			steps: []step{
				{hits: 1},
				{advance: 20 * time.Second, cache: []string{"fwd-status=304"}, hits: 2, body: str("v1"), originSaw: map[string]string{"If-Modified-Since": lastModified}},
			},
		},
		{
			name: "a changed response replaces the stored one",
			origin: replies(
				reply{header: map[string]string{"Cache-Control": "max-age=10", "ETag": `"e1"`}},
				reply{conditional: true, header: map[string]string{"Cache-Control": "max-age=10", "ETag": `"e2"`}},
			),
			steps: []step{
				{hits: 1},
				{advance: 20 * time.Second, cache: []string{"fwd=stale; fwd-status=200; stored"}, hits: 2, body: str("v2")},
				{cache: []string{hit}, hits: 2, body: str("v2"), want: map[string]string{"ETag": `"e2"`}},
			},
		},
		{
			name:   "client If-None-Match answered 304 from the cache",
			origin: replies(reply{header: map[string]string{"Cache-Control": "max-age=60", "ETag": `"x"`}}),
			steps: []step{
				{hits: 1},
				{header: map[string]string{"If-None-Match": `"x"`}, code: http.StatusNotModified, cache: []string{hit}, hits: 1, body: str(""), want: map[string]string{"ETag": `"x"`}},
				{header: map[string]string{"If-None-Match": `"a", W/"x"`}, code: http.StatusNotModified, hits: 1},
				{header: map[string]string{"If-None-Match": `"y"`}, code: http.StatusOK, cache: []string{hit}, hits: 1, body: str("v1")},
			},
		},
		{
			name:   "client If-Modified-Since answered 304 from the cache",
			origin: replies(reply{header: map[string]string{"Cache-Control": "max-age=60", "Last-Modified": lastModified}}),
			steps: []step{
				{hits: 1},
				{header: map[string]string{"If-Modified-Since": lastModified}, code: http.StatusNotModified, hits: 1},
				{header: map[string]string{"If-Modified-Since": testEpoch.Add(-2 * time.Hour).Format(http.TimeFormat)}, code: http.StatusOK, hits: 1, body: str("v1")},
			},
		},
		{
			name:   "client conditional on a miss goes to the origin as sent",
			origin: replies(reply{conditional: true, header: map[string]string{"Cache-Control": "max-age=60", "ETag": `"x"`}}),
			steps: []step{
				{header: map[string]string{"If-None-Match": `"x"`}, code: http.StatusNotModified, cache: []string{miss}, hits: 1},
				{cache: []string{stored}, hits: 2},
			},
		},
		{
			name:   "client Range served from a stored 200",
			origin: replies(reply{body: "0123456789", header: map[string]string{"Cache-Control": "max-age=60", "ETag": `"r"`}}),
			steps: []step{
				{hits: 1},
				{header: map[string]string{"Range": "bytes=2-5"}, code: http.StatusPartialContent, cache: []string{hit}, hits: 1, body: str("2345"),
					want: map[string]string{"Content-Range": "bytes 2-5/10"}},
			},
		},
		{
			name:   "Upgrade bypasses the cache",
			origin: replies(reply{header: map[string]string{"Cache-Control": "max-age=60"}}),
			steps: []step{
				{hits: 1},
				{header: map[string]string{"Connection": "Upgrade", "Upgrade": "websocket"}, cache: []string{"fwd=bypass"}, hits: 2},
			},
		},
		{
			name:   "If-Match bypasses the cache",
			origin: replies(reply{header: map[string]string{"Cache-Control": "max-age=60"}}),
			steps: []step{
				{hits: 1},
				{header: map[string]string{"If-Match": `"x"`}, cache: []string{"fwd=bypass"}, hits: 2},
			},
		},
	})
}

// TestStaleExtensions covers stale-while-revalidate and stale-if-error.
func TestStaleExtensions(t *testing.T) {
	runRules(t, []ruleCase{
		{
			name: "stale-while-revalidate: stale served, one background revalidation",
			origin: replies(
				reply{header: map[string]string{"Cache-Control": "max-age=10, stale-while-revalidate=60"}},
				reply{delay: 100 * time.Millisecond, header: map[string]string{"Cache-Control": "max-age=10, stale-while-revalidate=60"}},
			),
			steps: []step{
				{hits: 1, body: str("v1")},
				{advance: 15 * time.Second, times: 5, cache: []string{"hit; ttl=-5; detail=stale-while-revalidate"}, body: str("v1"), hits: 2, eventual: true},
				{cache: []string{"hit; ttl=10"}, hits: 2, body: str("v2")},
			},
		},
		{
			name:   "stale-while-revalidate: past the window the client waits",
			origin: replies(reply{header: map[string]string{"Cache-Control": "max-age=10, stale-while-revalidate=60"}}),
			steps: []step{
				{hits: 1},
				{advance: 100 * time.Second, cache: []string{"fwd=stale"}, hits: 2, body: str("v2")},
			},
		},
		{
			name: "stale-if-error: stale served on a 5xx within the window",
			origin: replies(
				reply{header: map[string]string{"Cache-Control": "max-age=10, stale-if-error=60"}},
				reply{status: http.StatusServiceUnavailable},
			),
			steps: []step{
				{hits: 1},
				{advance: 30 * time.Second, cache: []string{"fwd=stale; fwd-status=503; ttl=-20; detail=stale-if-error"}, hits: 2, body: str("v1")},
				{advance: 60 * time.Second, code: http.StatusServiceUnavailable, hits: 3, body: str("v3")},
			},
		},
		{
			name: "stale-if-error in the request",
			origin: replies(
				reply{header: map[string]string{"Cache-Control": "max-age=10"}},
				reply{status: http.StatusInternalServerError},
			),
			steps: []step{
				{hits: 1},
				{advance: 30 * time.Second, header: map[string]string{"Cache-Control": "stale-if-error=60"}, cache: []string{"detail=stale-if-error"}, hits: 2, body: str("v1")},
				{code: http.StatusInternalServerError, hits: 3},
			},
		},
	})
}

// TestSecondaryKeys covers Vary, and what else makes up the key.
func TestSecondaryKeys(t *testing.T) {
	byLanguage := func(n int64, clk *clock, w http.ResponseWriter, r *http.Request) {
		setDate(w, clk)
		w.Header().Set("Cache-Control", "max-age=60")
		w.Header().Set("Vary", "Accept-Language")
		fmt.Fprintf(w, "%s-%d", r.Header.Get("Accept-Language"), n)
	}
	en, fr := map[string]string{"Accept-Language": "en"}, map[string]string{"Accept-Language": "fr"}
	runRules(t, []ruleCase{
		{
			name:   "Vary: one stored variant per value",
			origin: byLanguage,
			steps: []step{
				{header: en, cache: []string{stored}, hits: 1, body: str("en-1")},
				{header: fr, cache: []string{stored}, hits: 2, body: str("fr-2")},
				{header: en, cache: []string{hit}, hits: 2, body: str("en-1")},
				{header: fr, cache: []string{hit}, hits: 2, body: str("fr-2")},
				{cache: []string{stored}, hits: 3, body: str("-3")},
				{cache: []string{hit}, hits: 3, body: str("-3")},
			},
		},
		{
			name:   "Vary: * never matches",
			origin: replies(reply{header: map[string]string{"Cache-Control": "max-age=60", "Vary": "*"}}),
			steps: []step{
				{cache: []string{miss}, notCache: []string{"stored"}, hits: 1},
				{cache: []string{miss}, hits: 2},
			},
		},
		{
			name:   "Vary: Accept-Encoding values folded to their codings",
			origin: replies(reply{header: map[string]string{"Cache-Control": "max-age=60", "Vary": "accept-encoding"}}),
			steps: []step{
				{header: map[string]string{"Accept-Encoding": "gzip, br"}, hits: 1},
				{header: map[string]string{"Accept-Encoding": "br;q=0.5,gzip"}, cache: []string{hit}, hits: 1},
				{header: map[string]string{"Accept-Encoding": "gzip"}, cache: []string{stored}, hits: 2},
				{header: map[string]string{"Accept-Encoding": "gzip, br;q=0"}, cache: []string{hit}, hits: 2},
			},
		},
		{
			name:   "query is part of the key",
			origin: replies(reply{header: map[string]string{"Cache-Control": "max-age=60"}}),
			steps: []step{
				{path: "/r?a=1", hits: 1, body: str("v1")},
				{path: "/r?a=2", hits: 2, body: str("v2")},
				{path: "/r?a=1", cache: []string{hit}, hits: 2, body: str("v1")},
				{path: "/r", hits: 3},
			},
		},
		{
			name:   "host is part of the key, without port and case",
			origin: replies(reply{header: map[string]string{"Cache-Control": "max-age=60"}}),
			steps: []step{
				{header: map[string]string{"Host": "a.example"}, hits: 1, body: str("v1")},
				{header: map[string]string{"Host": "b.example"}, hits: 2, body: str("v2")},
				{header: map[string]string{"Host": "A.Example:8080"}, cache: []string{hit}, hits: 2, body: str("v1")},
			},
		},
		{
			name:   "HEAD served from a stored GET",
			origin: replies(reply{body: "hello", header: map[string]string{"Cache-Control": "max-age=60"}}),
			steps: []step{
				{hits: 1},
				{method: http.MethodHead, cache: []string{hit}, hits: 1, body: str(""), want: map[string]string{"Content-Length": "5"}},
			},
		},
		{
			name:   "HEAD miss stored under its own key",
			origin: replies(reply{body: "hello", header: map[string]string{"Cache-Control": "max-age=60"}}),
			steps: []step{
				{method: http.MethodHead, cache: []string{stored}, hits: 1},
				{method: http.MethodHead, cache: []string{hit}, hits: 1},
				{cache: []string{stored}, hits: 2, body: str("hello")},
			},
		},
	})
}

// TestStatusCodes covers which statuses are stored with and without
// explicit freshness.
func TestStatusCodes(t *testing.T) {
	var cases []ruleCase
	for _, code := range []int{200, 203, 204, 300, 301, 308, 404, 405, 410, 414, 501} {
		cases = append(cases, ruleCase{
			name:   fmt.Sprintf("%d stored by heuristic (DefaultTTL)", code),
			opts:   Options{DefaultTTL: time.Minute},
			origin: replies(reply{status: code}),
			steps: []step{
				{code: code, cache: []string{stored}, hits: 1},
				{code: code, cache: []string{"hit; ttl=60"}, hits: 1},
			},
		})
	}
	for _, code := range []int{201, 302, 307, 400, 403, 500, 503} {
		cases = append(cases, ruleCase{
			name:   fmt.Sprintf("%d not stored without explicit freshness", code),
			opts:   Options{DefaultTTL: time.Minute},
			origin: replies(reply{status: code}),
			steps: []step{
				{code: code, cache: []string{miss}, notCache: []string{"stored"}, hits: 1},
				{code: code, hits: 2},
			},
		})
	}
	for _, code := range []int{302, 307, 500} {
		cases = append(cases, ruleCase{
			name:   fmt.Sprintf("%d stored with explicit freshness", code),
			origin: replies(reply{status: code, header: map[string]string{"Cache-Control": "max-age=30"}}),
			steps: []step{
				{code: code, cache: []string{stored}, hits: 1},
				{code: code, cache: []string{hit}, hits: 1},
			},
		})
	}
	cases = append(cases,
		ruleCase{
			name:   "no DefaultTTL: 10% of the Last-Modified age",
			origin: replies(reply{header: map[string]string{"Last-Modified": "{date-36000}"}}),
			steps: []step{
				{cache: []string{stored}, hits: 1},
				{cache: []string{"hit; ttl=3600"}, hits: 1},
			},
		},
		ruleCase{
			name:   "no DefaultTTL and no validator: not stored",
			origin: replies(reply{}),
			steps: []step{
				{cache: []string{miss}, notCache: []string{"stored"}, hits: 1},
				{hits: 2},
			},
		},
		ruleCase{
			name:   "206 is never stored",
			origin: replies(reply{status: http.StatusPartialContent, header: map[string]string{"Cache-Control": "max-age=60", "Content-Range": "bytes 0-1/10"}}),
			steps: []step{
				{code: http.StatusPartialContent, notCache: []string{"stored"}, hits: 1},
				{code: http.StatusPartialContent, hits: 2},
			},
		},
		ruleCase{
			name: "text/event-stream is never stored",
			origin: replies(reply{header: map[string]string{
				"Cache-Control": "max-age=60", "Content-Type": "text/event-stream",
			}}),
			steps: []step{
				{notCache: []string{"stored"}, hits: 1},
				{hits: 2},
			},
		},
	)
	runRules(t, cases)
}

// TestUnsafeMethodsInvalidate covers RFC 9111 section 4.4.
func TestUnsafeMethodsInvalidate(t *testing.T) {
	origin := func(status int, location string) originFunc {
		return func(n int64, clk *clock, w http.ResponseWriter, r *http.Request) {
			setDate(w, clk)
			if r.Method == http.MethodGet || r.Method == http.MethodHead {
				w.Header().Set("Cache-Control", "max-age=600")
				fmt.Fprintf(w, "v%d", n)
				return
			}
			if location != "" {
				w.Header().Set("Location", location)
			}
			w.WriteHeader(status)
		}
	}
	var cases []ruleCase
	for _, m := range []string{http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodPatch} {
		cases = append(cases, ruleCase{
			name:   m + " invalidates the URL",
			origin: origin(http.StatusOK, ""),
			steps: []step{
				{method: http.MethodHead, cache: []string{stored}, hits: 1},
				{cache: []string{stored}, hits: 2},
				{cache: []string{hit}, hits: 2},
				{method: m, cache: []string{"fwd=method"}, hits: 3},
				{method: http.MethodHead, cache: []string{stored}, hits: 4},
				{cache: []string{stored}, hits: 5, body: str("v5")},
			},
		})
	}
	cases = append(cases,
		ruleCase{
			name:   "failed POST leaves the URL stored",
			origin: origin(http.StatusInternalServerError, ""),
			steps: []step{
				{hits: 1},
				{method: http.MethodPost, code: http.StatusInternalServerError, hits: 2},
				{cache: []string{hit}, hits: 2, body: str("v1")},
			},
		},
		ruleCase{
			name:   "POST invalidates its same-host Location",
			origin: origin(http.StatusCreated, "/r"),
			steps: []step{
				{hits: 1},
				{method: http.MethodPost, path: "/items", code: http.StatusCreated, hits: 2},
				{cache: []string{stored}, hits: 3},
			},
		},
		ruleCase{
			name:   "POST leaves another host's Location alone",
			origin: origin(http.StatusCreated, "http://other.example/r"),
			steps: []step{
				{hits: 1},
				{method: http.MethodPost, path: "/items", code: http.StatusCreated, hits: 2},
				{cache: []string{hit}, hits: 2},
			},
		},
		ruleCase{
			name:   "OPTIONS passes through and invalidates nothing",
			origin: origin(http.StatusNoContent, ""),
			steps: []step{
				{hits: 1},
				{method: http.MethodOptions, code: http.StatusNoContent, cache: []string{"fwd=method"}, hits: 2},
				{cache: []string{hit}, hits: 2},
			},
		},
	)
	runRules(t, cases)
}

func TestNewRejectsBadOptions(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts Options
		want string
	}{
		{"negative memory", Options{MaxMemoryBytes: -1}, "MaxMemoryBytes is negative"},
		{"negative TTL", Options{DefaultTTL: -time.Second}, "DefaultTTL is negative"},
		{"disk size without dir", Options{MaxDiskBytes: 1 << 20}, "Dir is empty"},
		{"object larger than store", Options{MaxMemoryBytes: 1 << 20, MaxObjectBytes: 2 << 20}, "MaxObjectBytes"},
		{"unwritable dir", Options{Dir: "/proc/berth-cache"}, "writable"},
		{"bad key cookie", Options{KeyCookies: []string{"sess ion"}}, `cookie name "sess ion"`},
		{"empty key cookie", Options{KeyCookies: []string{""}}, "empty cookie name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(tc.opts)
			require.ErrorIs(t, err, ErrInvalidOptions)
			require.ErrorContains(t, err, tc.want)
		})
	}
}

func TestCacheStatusHeaderName(t *testing.T) {
	s := newStack(t, Options{StatusHeader: "X-Cache"}, replies(reply{header: map[string]string{"Cache-Control": "max-age=60", "Cache-Status": "upstream; hit"}}))
	res := s.get(t, "/r")
	require.Equal(t, "berth; fwd=miss; stored", res.Header.Get("X-Cache"))
	res = s.get(t, "/r")
	require.True(t, strings.HasPrefix(res.Header.Get("X-Cache"), "berth; hit; ttl="))

	s = newStack(t, Options{}, replies(reply{header: map[string]string{"Cache-Control": "max-age=60", "Cache-Status": "upstream; hit"}}))
	res = s.get(t, "/r")
	require.Equal(t, []string{"upstream; hit", "berth; fwd=miss; stored"}, res.Header.Values("Cache-Status"),
		"Cache-Status members are appended, origin side first (RFC 9211)")
	res = s.get(t, "/r")
	require.Equal(t, []string{"berth; hit; ttl=60"}, res.Header.Values("Cache-Status"), "the upstream's member is not stored")
}

func TestStats(t *testing.T) {
	s := newStack(t, Options{}, replies(
		reply{header: map[string]string{"Cache-Control": "max-age=10, stale-if-error=60", "ETag": `"s"`}},
		reply{conditional: true, header: map[string]string{"Cache-Control": "max-age=10, stale-if-error=60", "ETag": `"s"`}},
		reply{status: http.StatusBadGateway},
	))
	s.get(t, "/r")                      // miss, stored
	s.get(t, "/r")                      // hit
	s.clock.Advance(20 * time.Second)   //
	s.get(t, "/r")                      // revalidated: 304
	s.clock.Advance(20 * time.Second)   //
	s.get(t, "/r")                      // revalidation fails: stale
	s.do(t, http.MethodPost, "/r", nil) // 502: invalidates nothing
	n, err := s.cache.Invalidate("/*")
	require.NoError(t, err)
	assert.Equal(t, 1, n)

	st := s.cache.Stats()
	assert.Equal(t, Stats{
		Hits: 1, Misses: 1, Stale: 1, Revalidations: 2, Stores: 1, Invalidations: 1,
	}, st)
}
