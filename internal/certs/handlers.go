package certs

import (
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// ACMEChallengePrefix is the HTTP-01 path (RFC 8555 §8.3).
// ACMEChallengePrefix is where HTTP-01 challenges are answered.
const ACMEChallengePrefix = "/.well-known/acme-challenge/"

// HTTPChallengeHandler answers ACME HTTP-01 validation requests
// (/.well-known/acme-challenge/...) for names this Manager is ordering and
// passes every other request to next. Mount it outermost on the plain-HTTP
// listener.
func (m *Manager) HTTPChallengeHandler(next http.Handler) http.Handler {
	return m.acme.issuer.HTTPChallengeHandler(next)
}

// RedirectHandler answers plain-HTTP requests for hosts where redirect(host)
// is true with a 308 to the same host, path and query over HTTPS (on
// Options.HTTPSPort); a nil redirect means IsACME. Requests that came over
// TLS and ACME challenge paths always go to next, so a redirect can never
// break an HTTP-01 validation.
func (m *Manager) RedirectHandler(next http.Handler, redirect func(host string) bool) http.Handler {
	if redirect == nil {
		redirect = m.IsACME
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.TLS != nil || strings.HasPrefix(r.URL.Path, ACMEChallengePrefix) {
			next.ServeHTTP(w, r)
			return
		}
		host := normalizeHost(r.Host)
		if validateHost(host) != nil || !redirect(host) {
			next.ServeHTTP(w, r)
			return
		}
		http.Redirect(w, r, "https://"+m.httpsHost(host)+r.URL.RequestURI(), http.StatusPermanentRedirect)
	})
}

// httpsHost is host with the HTTPS port when it is not the default.
func (m *Manager) httpsHost(host string) string {
	if m.httpsPort == 443 {
		if strings.Contains(host, ":") {
			return "[" + host + "]"
		}
		return host
	}
	return net.JoinHostPort(host, strconv.Itoa(m.httpsPort))
}

// HSTS adds Strict-Transport-Security with maxAge to responses to requests
// that came over TLS (RFC 6797 forbids it over plain HTTP). A maxAge of zero
// or less returns next unchanged. includeSubDomains is not set: it would
// bind every name under the host, served by berth or not.
func HSTS(next http.Handler, maxAge time.Duration) http.Handler {
	if maxAge <= 0 {
		return next
	}
	value := "max-age=" + strconv.FormatInt(int64(maxAge/time.Second), 10)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.TLS != nil {
			w.Header().Set("Strict-Transport-Security", value)
		}
		next.ServeHTTP(w, r)
	})
}
