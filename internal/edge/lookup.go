package edge

import (
	"path"
	"strings"
)

// lookup returns the route that serves host and path, or nil when no route
// claims host. host must be normalised (see normalizeHost).
func (s *snapshot) lookup(host, urlPath string) *routeEntry {
	rt := s.hosts[host]
	if rt == nil || len(rt.paths) == 0 {
		return rt
	}
	p := cleanPath(urlPath)
	for _, pe := range rt.paths {
		if matchPrefix(p, pe.prefix) {
			return pe.to
		}
	}
	return rt
}

// matchPrefix reports whether p is prefix or lies under it, on a segment
// boundary: "/api" matches "/api" and "/api/x" but not "/apiary".
func matchPrefix(p, prefix string) bool {
	if !strings.HasPrefix(p, prefix) {
		return false
	}
	return len(p) == len(prefix) || prefix[len(prefix)-1] == '/' || p[len(prefix)] == '/'
}

// cleanPath resolves dot segments and repeated slashes before prefix
// matching, so "/api/../admin" is not routed as "/api". Clean paths, the
// common case, are returned without allocating.
func cleanPath(p string) string {
	if p == "" {
		return "/"
	}
	if p[0] != '/' || strings.Contains(p, "//") || strings.Contains(p, "/.") {
		return path.Clean("/" + p)
	}
	return p
}

// normalizeHost turns a Host header (or a configured host name) into the form
// routes are keyed by: no port, no trailing dot, lower case. It allocates only
// when the name has upper-case letters.
func normalizeHost(h string) string {
	if i := strings.LastIndexByte(h, ':'); i >= 0 {
		switch {
		case strings.HasPrefix(h, "["): // "[::1]:8080" or "[::1]"
			if j := strings.IndexByte(h, ']'); j > 0 {
				h = h[1:j]
			}
		case strings.IndexByte(h[:i], ':') < 0: // "name:8080"; a bare IPv6 address has more colons
			h = h[:i]
		}
	}
	h = strings.TrimSuffix(h, ".")
	for i := 0; i < len(h); i++ {
		if c := h[i]; 'A' <= c && c <= 'Z' {
			return strings.ToLower(h)
		}
	}
	return h
}

// normalizePrefix makes a configured prefix absolute and drops a trailing
// slash, so "api/" and "/api" both mean the /api subtree.
func normalizePrefix(p string) string {
	p = strings.TrimSpace(p)
	if !strings.HasPrefix(p, "/") {
		p = "/" + p
	}
	p = path.Clean(p)
	return p
}
