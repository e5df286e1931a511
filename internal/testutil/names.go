package testutil

import (
	"crypto/rand"
	"encoding/hex"
	"strings"
	"testing"
)

// UniqueName returns a name no other test, process or engineer will pick:
// "bt-<prefix>-<8 hex>". It is lowercase [a-z0-9-] and at most 40 characters,
// so it is a valid berth app name as well as a container, network or image
// name. Use it for everything a test creates on the shared engine.
func UniqueName(tb testing.TB, prefix string) string {
	tb.Helper()
	var b strings.Builder
	for _, r := range strings.ToLower(prefix) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b.WriteRune(r)
		default:
			if s := b.String(); s != "" && !strings.HasSuffix(s, "-") {
				b.WriteByte('-')
			}
		}
	}
	p := strings.Trim(b.String(), "-")
	// "bt-" + p + "-" + 8 hex <= 40.
	if len(p) > 28 {
		p = strings.Trim(p[:28], "-")
	}
	var rnd [4]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		tb.Fatalf("random name: %v", err)
	}
	if p == "" {
		return "bt-" + hex.EncodeToString(rnd[:])
	}
	return "bt-" + p + "-" + hex.EncodeToString(rnd[:])
}
