package certs

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"

	"github.com/caddyserver/certmagic"
)

// ErrInvalidHost is returned for a name that cannot be put in a certificate.
var ErrInvalidHost = errors.New("invalid host name")

// normalizeHost lowercases h and drops a trailing dot, a port and IPv6
// brackets, so "Web.Shop.Localhost.:8443" and "web.shop.localhost" are the
// same key everywhere in the package.
func normalizeHost(h string) string {
	h = strings.TrimSpace(h)
	if host, _, err := net.SplitHostPort(h); err == nil {
		h = host
	}
	h = strings.TrimPrefix(strings.TrimSuffix(h, "]"), "[")
	h = strings.TrimSuffix(strings.ToLower(h), ".")
	return h
}

// validateHost accepts an IP address or a DNS name made of letters, digits,
// hyphens and underscores. Wildcards are refused: berth mints or orders a
// certificate per served name.
func validateHost(h string) error {
	if h == "" {
		return fmt.Errorf("%w: empty name", ErrInvalidHost)
	}
	if _, err := netip.ParseAddr(h); err == nil {
		return nil
	}
	if strings.Contains(h, "*") {
		return fmt.Errorf("%w %q: wildcard names are not supported; list each name", ErrInvalidHost, h)
	}
	if len(h) > 253 {
		return fmt.Errorf("%w %q: longer than 253 characters", ErrInvalidHost, h)
	}
	for label := range strings.SplitSeq(h, ".") {
		if label == "" || len(label) > 63 {
			return fmt.Errorf("%w %q: each dot-separated label must be 1-63 characters", ErrInvalidHost, h)
		}
		if label[0] == '-' || label[len(label)-1] == '-' {
			return fmt.Errorf("%w %q: a label may not start or end with a hyphen", ErrInvalidHost, h)
		}
		for _, c := range label {
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return fmt.Errorf("%w %q: only letters, digits, '-' and '_' are allowed", ErrInvalidHost, h)
			}
		}
	}
	return nil
}

// isLocalHost reports whether h (normalized) gets a certificate from the
// local CA: names under domain, localhost, IP addresses, and names no
// public CA will ever issue for (.local, .internal, .home.arpa).
func isLocalHost(h, domain string) bool {
	if h == domain || strings.HasSuffix(h, "."+domain) {
		return true
	}
	if _, err := netip.ParseAddr(h); err == nil {
		return true
	}
	return certmagic.SubjectIsInternal(h)
}
