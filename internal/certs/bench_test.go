package certs

import (
	"testing"
)

// BenchmarkGetCertificateLocal is the handshake hot path for a served local
// name whose leaf is cached.
func BenchmarkGetCertificateLocal(b *testing.B) {
	m := newTestManager(b, Options{})
	if err := m.SetHosts(b.Context(), []string{"web.shop.localhost"}); err != nil {
		b.Fatal(err)
	}
	h := hello("web.shop.localhost")
	if _, err := m.GetCertificate(h); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := m.GetCertificate(h); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkIsACME is the per-request lookup RedirectHandler does on the
// plain-HTTP listener.
func BenchmarkIsACME(b *testing.B) {
	m := newTestManager(b, Options{})
	if err := m.SetHosts(b.Context(), []string{"web.shop.localhost"}); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		_ = m.IsACME("web.shop.localhost:8080")
	}
}
