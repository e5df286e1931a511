package cache

import (
	"net/http"
	"strconv"
	"strings"
	"time"
)

// directives is a parsed Cache-Control field, request or response (RFC 9111
// section 5.2). Durations are -1 when the directive is absent. Unknown
// directives are ignored, as the RFC requires.
type directives struct {
	maxAge               time.Duration // max-age=N
	sMaxAge              time.Duration // s-maxage=N (response only)
	maxStale             time.Duration // max-stale[=N] (request only); maxStaleAny when given without a value
	minFresh             time.Duration // min-fresh=N (request only)
	staleWhileRevalidate time.Duration // stale-while-revalidate=N (RFC 5861)
	staleIfError         time.Duration // stale-if-error=N (RFC 5861)

	noStore         bool
	noCache         bool // qualified no-cache="field" is treated as unqualified: safer for a shared cache
	private         bool // qualified private="field" is treated as unqualified
	public          bool
	mustRevalidate  bool
	proxyRevalidate bool
	noTransform     bool
	onlyIfCached    bool
	immutable       bool
}

// maxStaleAny stands for a bare max-stale: any staleness is accepted.
const maxStaleAny = time.Duration(1<<63 - 1)

// maxDelta caps delta-seconds so that arithmetic never overflows; RFC 9111
// section 1.2.2 suggests 2^31 seconds as "infinity".
const maxDelta = time.Duration(1<<31) * time.Second

var noDirectives = directives{
	maxAge: -1, sMaxAge: -1, maxStale: -1, minFresh: -1,
	staleWhileRevalidate: -1, staleIfError: -1,
}

// parseDirectives reads every Cache-Control field line of h. A directive
// repeated with different values keeps the first, except for the boolean
// ones, which are simply present.
func parseDirectives(h http.Header) directives {
	d := noDirectives
	for _, line := range h["Cache-Control"] {
		parseDirectiveLine(&d, line)
	}
	return d
}

func parseDirectiveLine(d *directives, line string) {
	for len(line) > 0 {
		var item string
		item, line = nextListItem(line)
		if item == "" {
			continue
		}
		name, value, hasValue := strings.Cut(item, "=")
		name = strings.ToLower(strings.TrimSpace(name))
		value = strings.TrimSpace(value)
		if hasValue && len(value) >= 2 && value[0] == '"' && value[len(value)-1] == '"' {
			value = value[1 : len(value)-1]
		}
		switch name {
		case "max-age":
			setDelta(&d.maxAge, value)
		case "s-maxage":
			setDelta(&d.sMaxAge, value)
		case "min-fresh":
			setDelta(&d.minFresh, value)
		case "stale-while-revalidate":
			setDelta(&d.staleWhileRevalidate, value)
		case "stale-if-error":
			setDelta(&d.staleIfError, value)
		case "max-stale":
			if d.maxStale < 0 {
				if !hasValue {
					d.maxStale = maxStaleAny
				} else {
					setDelta(&d.maxStale, value)
				}
			}
		case "no-store":
			d.noStore = true
		case "no-cache":
			d.noCache = true
		case "private":
			d.private = true
		case "public":
			d.public = true
		case "must-revalidate":
			d.mustRevalidate = true
		case "proxy-revalidate":
			d.proxyRevalidate = true
		case "no-transform":
			d.noTransform = true
		case "only-if-cached":
			d.onlyIfCached = true
		case "immutable":
			d.immutable = true
		}
	}
}

// nextListItem splits off the first element of a comma-separated list,
// keeping commas inside quoted strings (private="a, b").
func nextListItem(s string) (item, rest string) {
	inQuote := false
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			if inQuote {
				i++
			}
		case '"':
			inQuote = !inQuote
		case ',':
			if !inQuote {
				return strings.TrimSpace(s[:i]), s[i+1:]
			}
		}
	}
	return strings.TrimSpace(s), ""
}

// setDelta stores a delta-seconds value (RFC 9111 section 1.2.2) unless one
// was already set. An invalid value makes the directive count as zero: a
// cache that cannot tell treats the response as stale.
func setDelta(dst *time.Duration, v string) {
	if *dst >= 0 {
		return
	}
	n, err := strconv.ParseUint(v, 10, 64)
	switch {
	case err != nil && isDigits(v):
		*dst = maxDelta // too large for uint64: "infinity"
	case err != nil:
		*dst = 0
	case n >= uint64(maxDelta/time.Second):
		*dst = maxDelta
	default:
		*dst = time.Duration(n) * time.Second
	}
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// requestDirectives is what a client asked of the cache: its Cache-Control,
// plus Pragma: no-cache from HTTP/1.0 clients that send no Cache-Control.
func requestDirectives(h http.Header) directives {
	d := parseDirectives(h)
	if _, ok := h["Cache-Control"]; !ok {
		for _, p := range h["Pragma"] {
			if strings.Contains(strings.ToLower(p), "no-cache") {
				d.noCache = true
			}
		}
	}
	return d
}

// restricts reports whether the request limits which stored responses may
// be used; such requests do not take part in request collapsing.
func (d *directives) restricts() bool {
	return d.noCache || d.noStore || d.maxAge >= 0 || d.minFresh >= 0 || d.maxStale >= 0 || d.onlyIfCached
}
