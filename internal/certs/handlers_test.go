package certs

import (
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRedirectHandler(t *testing.T) {
	m := newTestManager(t, Options{HTTPSPort: 8443})
	require.NoError(t, m.SetHosts(t.Context(), []string{"shop.example.com", "web.shop.localhost"}))
	m443 := newTestManager(t, Options{})
	require.NoError(t, m443.SetHosts(t.Context(), []string{"shop.example.com"}))
	everything := func(string) bool { return true }

	for _, tc := range []struct {
		name     string
		m        *Manager
		redirect func(string) bool
		method   string
		target   string // request URI; the host comes from it
		tls      bool
		wantCode int
		wantLoc  string
	}{
		{"ACME host keeps path and query", m, nil, http.MethodGet, "http://shop.example.com:8080/a/b%20c?x=1&y=2", false, 308, "https://shop.example.com:8443/a/b%20c?x=1&y=2"},
		{"default HTTPS port is left out", m443, nil, http.MethodGet, "http://shop.example.com/a?x=1", false, 308, "https://shop.example.com/a?x=1"},
		{"POST keeps its method with 308", m, nil, http.MethodPost, "http://shop.example.com/form", false, 308, "https://shop.example.com:8443/form"},
		{"host case and trailing dot", m, nil, http.MethodGet, "http://SHOP.Example.com./", false, 308, "https://shop.example.com:8443/"},
		{"local host is not redirected by default", m, nil, http.MethodGet, "http://web.shop.localhost:8080/", false, 200, ""},
		{"unknown host is not redirected", m, nil, http.MethodGet, "http://other.example.com/", false, 200, ""},
		{"HTTP-01 challenge is never redirected", m, everything, http.MethodGet, "http://shop.example.com/.well-known/acme-challenge/tok", false, 200, ""},
		{"challenge path with another method", m, everything, http.MethodPost, "http://shop.example.com/.well-known/acme-challenge/tok", false, 200, ""},
		{"request over TLS passes", m, everything, http.MethodGet, "https://shop.example.com/", true, 200, ""},
		{"custom policy redirects local hosts", m, everything, http.MethodGet, "http://web.shop.localhost:8080/x", false, 308, "https://web.shop.localhost:8443/x"},
		{"custom policy can refuse ACME hosts", m, func(string) bool { return false }, http.MethodGet, "http://shop.example.com/", false, 200, ""},
		{"IPv6 literal", m, everything, http.MethodGet, "http://[::1]:8080/v6", false, 308, "https://[::1]:8443/v6"},
		{"IPv6 literal on 443", m443, everything, http.MethodGet, "http://[::1]/v6", false, 308, "https://[::1]/v6"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := tc.m.RedirectHandler(appHandler, tc.redirect)
			req := httptest.NewRequest(tc.method, tc.target, strings.NewReader("body"))
			if tc.tls {
				req.TLS = &tls.ConnectionState{}
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			assert.Equal(t, tc.wantCode, rec.Code)
			assert.Equal(t, tc.wantLoc, rec.Header().Get("Location"))
			if tc.wantCode == 200 {
				assert.Contains(t, rec.Body.String(), "app ")
			}
		})
	}
}

func TestHSTS(t *testing.T) {
	m := newTestManager(t, Options{})
	require.NoError(t, m.SetHosts(t.Context(), []string{"localhost"}))
	h := HSTS(appHandler, 365*24*time.Hour)

	plain := httptest.NewServer(h)
	t.Cleanup(plain.Close)
	resp, err := plain.Client().Get(plain.URL)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Empty(t, resp.Header.Get("Strict-Transport-Security"), "never over plain HTTP")

	addr := serveTLS(t, listen(t), m.TLSConfig(), h)
	for _, h2 := range []bool{false, true} {
		c := newClient(t, poolOf(t, m.CARootPEM()), addr, h2)
		resp, _ := get(t, c, "https://localhost:"+portFromAddr(addr)+"/")
		assert.Equal(t, "max-age=31536000", resp.Header.Get("Strict-Transport-Security"), "h2=%v", h2)
	}

	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodGet, "https://localhost/", nil)
	req.TLS = &tls.ConnectionState{}
	HSTS(appHandler, 0).ServeHTTP(rec, req)
	assert.Empty(t, rec.Header().Get("Strict-Transport-Security"), "zero max-age adds nothing")
}

// TestHTTPChallengeHandlerPassesThrough checks that everything but a known
// challenge reaches next.
func TestHTTPChallengeHandlerPassesThrough(t *testing.T) {
	m := newTestManager(t, Options{})
	h := m.HTTPChallengeHandler(appHandler)
	for _, target := range []string{"http://shop.example.com/", "http://shop.example.com/.well-known/acme-challenge/unknown"} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, target, nil))
		assert.Equal(t, http.StatusOK, rec.Code, target)
		assert.Contains(t, rec.Body.String(), "app ", target)
	}
}
