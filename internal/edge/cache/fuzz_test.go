package cache

import (
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

func FuzzCacheControl(f *testing.F) {
	for _, seed := range []string{
		"max-age=60", "s-maxage=100, max-age=10", "no-cache, no-store, private",
		`private="Set-Cookie, X-Foo", max-age=5`, "max-stale", "max-stale=30",
		"max-age=99999999999999999999999", "max-age=-1", `max-age="60"`,
		"stale-while-revalidate=60, stale-if-error=600, public, immutable",
		",,, ,", `no-cache="a\"b, c"`, "MAX-AGE=1",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, v string) {
		d := parseDirectives(http.Header{"Cache-Control": {v}})
		for _, x := range []time.Duration{d.maxAge, d.sMaxAge, d.minFresh, d.staleWhileRevalidate, d.staleIfError} {
			if x != -1 && (x < 0 || x > maxDelta) {
				t.Fatalf("%q: duration %v out of range", v, x)
			}
		}
		if d.maxStale != -1 && d.maxStale != maxStaleAny && (d.maxStale < 0 || d.maxStale > maxDelta) {
			t.Fatalf("%q: max-stale %v out of range", v, d.maxStale)
		}
	})
}

func FuzzAcceptEncoding(f *testing.F) {
	for _, seed := range []string{
		"gzip, deflate, br, zstd", "gzip;q=1.0, br;q=0.5", "*;q=0.1, gzip;q=0",
		"identity", "br;q=0, gzip;q=0", "x-gzip", "gzip;q=2", "gzip;q=abc, br", ";;,;q=",
	} {
		f.Add(seed)
	}
	offered := []string{"br", "gzip"}
	f.Fuzz(func(t *testing.T, v string) {
		if fast, ok := commonCodings(v); ok {
			var slow []string
			for _, c := range parseAcceptEncoding([]string{v}) {
				if c.q > 0 {
					slow = append(slow, c.coding)
				}
			}
			slices.Sort(slow)
			if want := strings.Join(slices.Compact(slow), ","); fast != want {
				t.Fatalf("%q: fast path %q, slow path %q", v, fast, want)
			}
		}
		got := negotiate([]string{v}, offered)
		if got == "" {
			return
		}
		if !slices.Contains(offered, got) {
			t.Fatalf("%q: negotiated %q, not offered", v, got)
		}
		set := strings.Split(acceptableCodings([]string{v}), ",")
		if !slices.Contains(set, got) && !slices.Contains(set, "*") {
			t.Fatalf("%q: negotiated %q, not acceptable (%q)", v, got, set)
		}
	})
}
