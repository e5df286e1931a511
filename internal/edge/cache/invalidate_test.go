package cache

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var invalidationPaths = []string{
	"/index.html", "/index.html?v=2", "/static/a.css", "/static/b.js",
	"/static/img/c.png", "/staticx", "/a%20b",
}

func TestInvalidate(t *testing.T) {
	for _, tc := range []struct {
		name    string
		host    string // "" for Invalidate, else InvalidateHost
		pattern string
		gone    []string // paths removed, on the hosts concerned
	}{
		{name: "exact path, every query", pattern: "/index.html", gone: []string{"/index.html", "/index.html?v=2"}},
		{name: "prefix", pattern: "/static/*", gone: []string{"/static/a.css", "/static/b.js", "/static/img/c.png"}},
		{name: "prefix without slash", pattern: "/static*", gone: []string{"/static/a.css", "/static/b.js", "/static/img/c.png", "/staticx"}},
		{name: "everything", pattern: "/*", gone: invalidationPaths},
		{name: "escaped path by its decoded form", pattern: "/a b", gone: []string{"/a%20b"}},
		{name: "escaped path by its escaped form", pattern: "/a%20b", gone: []string{"/a%20b"}},
		{name: "no match", pattern: "/nothing", gone: nil},
		{name: "one host only", host: "A.example:443", pattern: "/static/*", gone: []string{"/static/a.css", "/static/b.js", "/static/img/c.png"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newStack(t, Options{}, replies(reply{header: map[string]string{"Cache-Control": "max-age=600"}}))
			hosts := []string{"a.example", "b.example"}
			for _, h := range hosts {
				for _, p := range invalidationPaths {
					require.Contains(t, s.do(t, http.MethodGet, p, map[string]string{"Host": h}).Header.Get("Cache-Status"), "stored", p)
				}
			}
			var n int
			var err error
			if tc.host == "" {
				n, err = s.cache.Invalidate(tc.pattern)
			} else {
				n, err = s.cache.InvalidateHost(tc.host, tc.pattern)
			}
			require.NoError(t, err)
			gone := map[string]bool{}
			for _, p := range tc.gone {
				gone[p] = true
			}
			wantN := len(tc.gone) * 2
			if tc.host != "" {
				wantN = len(tc.gone)
			}
			assert.Equal(t, wantN, n)
			assert.EqualValues(t, wantN, s.cache.Stats().Invalidations)
			for _, h := range hosts {
				for _, p := range invalidationPaths {
					removed := gone[p] && (tc.host == "" || h == "a.example")
					res := s.do(t, http.MethodGet, p, map[string]string{"Host": h})
					assert.Equal(t, !removed, isHit(res), "%s%s removed=%v", h, p, removed)
				}
			}
		})
	}
}

func TestInvalidateRejectsPatternsThatCannotMatch(t *testing.T) {
	c, err := New(Options{})
	require.NoError(t, err)
	for _, tc := range []struct{ name, host, pattern, want string }{
		{"empty", "", "", "empty"},
		{"relative", "", "static/*", "does not start with '/'"},
		{"star only", "", "*", "does not start with '/'"},
		{"inner star", "", "/a*/b", "only a trailing '*'"},
		{"query", "", "/a?x=1", "query"},
		{"fragment", "", "/a#top", "query or fragment"},
		{"empty host", " ", "/a", "empty host"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var err error
			if tc.host != "" {
				_, err = c.InvalidateHost(tc.host, tc.pattern)
			} else {
				_, err = c.Invalidate(tc.pattern)
				assert.ErrorIs(t, ValidatePattern(tc.pattern), ErrInvalidPattern)
			}
			require.ErrorIs(t, err, ErrInvalidPattern)
			require.ErrorContains(t, err, tc.want)
		})
	}
}
