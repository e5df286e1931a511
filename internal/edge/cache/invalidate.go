package cache

import (
	"fmt"
	"net/url"
	"strings"
)

// Invalidate removes stored responses, for every host, whose path matches
// pattern, and returns how many it removed. A pattern is an exact path
// ("/index.html") or a prefix ending in "*" ("/static/*", "/*" for
// everything). It matches the path only: every query string and every Vary
// variant of a matching path goes. A pattern that cannot match any path
// (empty, not starting with "/", "*" other than at the end, a query or
// fragment) is an error wrapping ErrInvalidPattern.
func (c *Cache) Invalidate(pattern string) (int, error) {
	m, err := compilePattern(pattern)
	if err != nil {
		return 0, err
	}
	n := c.store.removeFunc(func(e *entry) bool { return m.matches(e.path) })
	c.stats.invalidations.Add(int64(n))
	return n, nil
}

// InvalidateHost is Invalidate limited to one host (any port, any case).
func (c *Cache) InvalidateHost(host, pattern string) (int, error) {
	m, err := compilePattern(pattern)
	if err != nil {
		return 0, err
	}
	h := normalizeHost(strings.TrimSpace(host))
	if h == "" {
		return 0, fmt.Errorf("%w: empty host; name the host whose entries to remove", ErrInvalidPattern)
	}
	n := c.store.removeFunc(func(e *entry) bool { return e.host == h && m.matches(e.path) })
	c.stats.invalidations.Add(int64(n))
	return n, nil
}

// ValidatePattern reports whether pattern is a path pattern Invalidate
// accepts, so that a command can refuse a bad one before doing anything.
func ValidatePattern(pattern string) error {
	_, err := compilePattern(pattern)
	return err
}

// pathPattern is a compiled invalidation pattern. Stored paths are escaped
// (url.URL.EscapedPath); the pattern is compared in both escaped and
// unescaped forms, so "/a b" and "/a%20b" both find "/a%20b".
type pathPattern struct {
	prefix           bool
	escaped, decoded string
}

func compilePattern(p string) (pathPattern, error) {
	switch {
	case p == "":
		return pathPattern{}, fmt.Errorf("%w: empty; give a path such as /index.html or a prefix such as /static/*", ErrInvalidPattern)
	case p[0] != '/':
		return pathPattern{}, fmt.Errorf("%w: %q does not start with '/'; paths always do, e.g. /%s", ErrInvalidPattern, p, strings.TrimLeft(p, "*"))
	case strings.ContainsAny(p, "?#"):
		return pathPattern{}, fmt.Errorf("%w: %q has a query or fragment; patterns match paths, and every query of a path is removed with it", ErrInvalidPattern, p)
	}
	pp := pathPattern{}
	if strings.HasSuffix(p, "*") {
		pp.prefix = true
		p = p[:len(p)-1]
	}
	if strings.Contains(p, "*") {
		return pathPattern{}, fmt.Errorf("%w: %q has '*' before its end; only a trailing '*' (prefix match) is supported", ErrInvalidPattern, p)
	}
	pp.escaped = (&url.URL{Path: p}).EscapedPath()
	if d, err := url.PathUnescape(p); err == nil {
		pp.decoded = (&url.URL{Path: d}).EscapedPath()
	} else {
		pp.decoded = pp.escaped
	}
	return pp, nil
}

func (pp pathPattern) matches(path string) bool {
	if pp.prefix {
		return strings.HasPrefix(path, pp.escaped) || strings.HasPrefix(path, pp.decoded)
	}
	return path == pp.escaped || path == pp.decoded
}
