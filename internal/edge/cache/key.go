package cache

import (
	"net/http"
	"slices"
	"strings"
)

// A stored response is found in two steps (RFC 9111 section 4.1): the
// primary key — method, host and target URI — names a list of variants, and
// each variant records the request header values its Vary field selected.
//
// The host is lowercased and loses its port, as the edge's router does, so
// that www.example.com and www.example.com:443 share entries. The scheme is
// not part of the key: an entrypoint serves the same content on both.
// The query is kept byte for byte; reordering it could change its meaning.

// keyOf returns the primary key of a request for method, and the normalized
// host and the escaped path it was built from (the path is what
// invalidation patterns match).
func keyOf(method string, r *http.Request) (key, host, path string) {
	host = normalizeHost(r.Host)
	path = r.URL.EscapedPath()
	if path == "" {
		path = "/"
	}
	var b strings.Builder
	b.Grow(len(method) + len(host) + len(path) + len(r.URL.RawQuery) + 3)
	b.WriteString(method)
	b.WriteByte(' ')
	b.WriteString(host)
	b.WriteString(path)
	if r.URL.RawQuery != "" || r.URL.ForceQuery {
		b.WriteByte('?')
		b.WriteString(r.URL.RawQuery)
	}
	return b.String(), host, path
}

// uriKey returns the primary key of method on host and a request target
// (path and query), used to invalidate by URI.
func uriKey(method, host, target string) string {
	return method + " " + host + target
}

// normalizeHost lowercases a Host header and strips its port; it allocates
// only when the host has upper-case letters.
func normalizeHost(h string) string {
	if i := strings.LastIndexByte(h, ':'); i >= 0 && !strings.Contains(h[i:], "]") {
		h = h[:i]
	}
	h = strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")
	for i := 0; i < len(h); i++ {
		if c := h[i]; 'A' <= c && c <= 'Z' {
			return strings.ToLower(h)
		}
	}
	return h
}

// varyStar is the sole name recorded for a response with Vary: *, which no
// later request matches (RFC 9111 section 4.1).
const varyStar = "*"

// absent marks a Vary'd header the request did not send, distinct from one
// it sent empty.
const absent = "\x00"

// varyNames lists the canonical field names of every Vary line of a
// response, sorted and without duplicates; nil when the response does not
// vary. A "*" anywhere gives just [varyStar].
func varyNames(h http.Header) []string {
	var names []string
	for _, line := range h["Vary"] {
		for f := range strings.SplitSeq(line, ",") {
			f = strings.TrimSpace(f)
			switch f {
			case "":
				continue
			case "*":
				return []string{varyStar}
			}
			names = append(names, http.CanonicalHeaderKey(f))
		}
	}
	slices.Sort(names)
	return slices.Compact(names)
}

// varyValues returns the normalized request values of the named headers,
// in the order of names.
func varyValues(names []string, h http.Header) []string {
	if len(names) == 0 {
		return nil
	}
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = varyValue(h, n)
	}
	return out
}

// varyMatches reports whether a request selects a variant stored with names
// and values (RFC 9111 section 4.1).
func varyMatches(names, values []string, h http.Header) bool {
	for i, n := range names {
		if n == varyStar || varyValue(h, n) != values[i] {
			return false
		}
	}
	return true
}

// varyValue normalizes one request header for comparison: its field lines
// are combined, and whitespace around list commas is dropped (the
// normalizations RFC 9111 section 4.1 allows for any field). Accept-Encoding
// is reduced further to its set of acceptable codings, so that the many
// spellings browsers send share one variant; any of those codings is
// acceptable to every request in the set. A key cookie's pseudo name
// (cookies.go) selects that cookie's value.
func varyValue(h http.Header, name string) string {
	if strings.HasPrefix(name, cookieKeyPrefix) {
		return cookieValue(h, name[len(cookieKeyPrefix):])
	}
	vs, ok := h[name]
	if !ok {
		return absent
	}
	if name == "Accept-Encoding" {
		return acceptableCodings(vs)
	}
	if len(vs) == 1 && !strings.ContainsAny(vs[0], ", \t") {
		return vs[0]
	}
	var parts []string
	for _, v := range vs {
		for p := range strings.SplitSeq(v, ",") {
			parts = append(parts, strings.TrimSpace(p))
		}
	}
	return strings.Join(parts, ",")
}

// acceptableCodings is the sorted set of content codings an Accept-Encoding
// field accepts with a q-value above zero.
func acceptableCodings(lines []string) string {
	if len(lines) == 1 {
		if s, ok := commonCodings(lines[0]); ok {
			return s
		}
	}
	var codings []string
	for _, c := range parseAcceptEncoding(lines) {
		if c.q > 0 {
			codings = append(codings, c.coding)
		}
	}
	slices.Sort(codings)
	return strings.Join(slices.Compact(codings), ",")
}

// knownCodings are the codings browsers send, in sorted order; a set of
// them is a bit mask.
var knownCodings = [...]string{"*", "br", "compress", "deflate", "gzip", "identity", "zstd"}

// codingSets holds the joined string of every subset of knownCodings.
var codingSets = func() (out [1 << len(knownCodings)]string) {
	for mask := range out {
		var parts []string
		for i, c := range knownCodings {
			if mask&(1<<i) != 0 {
				parts = append(parts, c)
			}
		}
		out[mask] = strings.Join(parts, ",")
	}
	return out
}()

// commonCodings is acceptableCodings without allocating, for a field of
// known codings whose q-values, if any, are 0, 1, or 0.x; it reports false
// for anything else.
func commonCodings(v string) (string, bool) {
	mask := 0
	for member := range strings.SplitSeq(v, ",") {
		coding, params, hasParams := strings.Cut(member, ";")
		coding = strings.TrimSpace(coding)
		bit := -1
		for i, c := range knownCodings {
			if strings.EqualFold(coding, c) {
				bit = i
				break
			}
		}
		if bit < 0 {
			if coding == "" {
				continue
			}
			return "", false
		}
		if hasParams {
			name, q, ok := strings.Cut(strings.TrimSpace(params), "=")
			if !ok || strings.TrimSpace(name) != "q" || !simpleQ(q) {
				return "", false
			}
			if strings.Trim(q, "0.") == "" {
				continue // q=0: not acceptable
			}
		}
		mask |= 1 << bit
	}
	return codingSets[mask], true
}

// simpleQ reports whether q is a qvalue as RFC 9110 section 12.4.2 spells
// it: 0 to 1 with at most three decimals.
func simpleQ(q string) bool {
	if q == "" || len(q) > 5 || (q[0] != '0' && q[0] != '1') {
		return false
	}
	if len(q) == 1 {
		return true
	}
	if q[1] != '.' {
		return false
	}
	for i := 2; i < len(q); i++ {
		if q[i] < '0' || q[i] > '9' || (q[0] == '1' && q[i] != '0') {
			return false
		}
	}
	return true
}
