package certs

import (
	"net"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestNormalizeAndClassifyHost(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		valid    bool
		local    bool // with domain "berth.test"
	}{
		{"Web.Shop.Berth.Test", "web.shop.berth.test", true, true},
		{"berth.test.", "berth.test", true, true},
		{"web.shop.berth.test:8443", "web.shop.berth.test", true, true},
		{"localhost", "localhost", true, true},
		{"a.localhost", "a.localhost", true, true},
		{"printer.local", "printer.local", true, true},
		{"db.internal", "db.internal", true, true},
		{"127.0.0.1", "127.0.0.1", true, true},
		{"[::1]", "::1", true, true},
		{"[::1]:443", "::1", true, true},
		{"203.0.113.9", "203.0.113.9", true, true},
		{"shop.example.com", "shop.example.com", true, false},
		{"xberth.test", "xberth.test", true, false},
		{"berth.test.example.com", "berth.test.example.com", true, false},
		{"_acme.example.com", "_acme.example.com", true, false},
		{"", "", false, false},
		{"*.example.com", "*.example.com", false, false},
		{"bad host", "bad host", false, false},
		{"-bad.example.com", "-bad.example.com", false, false},
		{"a..b", "a..b", false, false},
		{"ünïcode.example", "ünïcode.example", false, false},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got := normalizeHost(tc.in)
			assert.Equal(t, tc.want, got)
			err := validateHost(got)
			if tc.valid {
				assert.NoError(t, err)
				assert.Equal(t, tc.local, isLocalHost(got, "berth.test"))
			} else {
				assert.ErrorIs(t, err, ErrInvalidHost)
			}
		})
	}
}

// FuzzNormalizeHost checks that a name validateHost accepts is stable under
// normalizeHost and fits in a certificate.
func FuzzNormalizeHost(f *testing.F) {
	for _, s := range []string{"web.shop.localhost", "SHOP.example.com.:443", "[::1]:8443", "127.0.0.1", "*.x", "a..b", "x:y:z", "[", "]:"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		n := normalizeHost(in)
		if validateHost(n) != nil {
			return
		}
		if normalizeHost(n) != n {
			t.Fatalf("normalizeHost(%q) = %q is not stable: %q", in, n, normalizeHost(n))
		}
		if ip := net.ParseIP(n); ip == nil && len(n) > 253 {
			t.Fatalf("accepted %q longer than 253", n)
		}
	})
}
