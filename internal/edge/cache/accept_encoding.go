package cache

import (
	"strconv"
	"strings"
)

// codingQ is one member of an Accept-Encoding field: a content coding and
// its q-value, from 0 to 1.
type codingQ struct {
	coding string
	q      float64
}

// parseAcceptEncoding reads Accept-Encoding field lines (RFC 9110 section
// 12.5.3). Codings are lowercased; "x-gzip" is read as "gzip". A member with
// an unreadable q-value is dropped.
func parseAcceptEncoding(lines []string) []codingQ {
	var out []codingQ
	for _, line := range lines {
		for member := range strings.SplitSeq(line, ",") {
			coding, params, _ := strings.Cut(member, ";")
			coding = strings.ToLower(strings.TrimSpace(coding))
			if coding == "" {
				continue
			}
			if coding == "x-gzip" {
				coding = "gzip"
			}
			q, ok := parseQ(params)
			if !ok {
				continue
			}
			out = append(out, codingQ{coding: coding, q: q})
		}
	}
	return out
}

// parseQ reads the q parameter of a list member; no parameter means 1.
func parseQ(params string) (float64, bool) {
	q := 1.0
	for p := range strings.SplitSeq(params, ";") {
		name, value, ok := strings.Cut(p, "=")
		if !ok || !strings.EqualFold(strings.TrimSpace(name), "q") {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
		if err != nil || v < 0 || v > 1 {
			return 0, false
		}
		q = v
	}
	return q, true
}

// negotiate picks the content coding for a response from those the server
// offers, best first. The client's highest q-value wins; among equal
// q-values the server's order decides; "*" stands for every coding the
// client did not name. It returns "" when the client named no offered
// coding acceptably (identity is then used), including when it sent no
// Accept-Encoding at all.
func negotiate(lines []string, offered []string) string {
	if len(lines) == 0 {
		return ""
	}
	accepted := parseAcceptEncoding(lines)
	best, bestQ := "", 0.0
	for _, o := range offered {
		q, named, star := 0.0, false, -1.0
		for _, a := range accepted {
			switch a.coding {
			case o:
				if !named || a.q > q {
					q = a.q
				}
				named = true
			case "*":
				star = max(star, a.q)
			}
		}
		if !named && star >= 0 {
			q = star
		}
		if q > bestQ {
			best, bestQ = o, q
		}
	}
	return best
}
