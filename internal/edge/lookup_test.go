package edge

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestNormalizeHost(t *testing.T) {
	tests := []struct{ in, want string }{
		{"web.shop.localhost", "web.shop.localhost"},
		{"web.shop.localhost:8080", "web.shop.localhost"},
		{"WEB.Shop.Localhost", "web.shop.localhost"},
		{"Web.Shop.Localhost:443", "web.shop.localhost"},
		{"web.shop.localhost.", "web.shop.localhost"},
		{"web.shop.localhost.:80", "web.shop.localhost"},
		{"127.0.0.1:8080", "127.0.0.1"},
		{"[::1]:8080", "::1"},
		{"[::1]", "::1"},
		{"::1", "::1"},
		{"", ""},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			assert.Equal(t, tt.want, normalizeHost(tt.in))
		})
	}
}

func TestMatchPrefix(t *testing.T) {
	tests := []struct {
		path, prefix string
		want         bool
	}{
		{"/api", "/api", true},
		{"/api/", "/api", true},
		{"/api/x/y", "/api", true},
		{"/apiary", "/api", false},
		{"/ap", "/api", false},
		{"/", "/", true},
		{"/anything", "/", true},
	}
	for _, tt := range tests {
		t.Run(tt.path+"~"+tt.prefix, func(t *testing.T) {
			assert.Equal(t, tt.want, matchPrefix(tt.path, tt.prefix))
		})
	}
}

func TestNormalizePrefixAndCleanPath(t *testing.T) {
	for in, want := range map[string]string{"/api": "/api", "api/": "/api", "/api//v2/": "/api/v2", "": "/", "/": "/"} {
		assert.Equal(t, want, normalizePrefix(in), "prefix %q", in)
	}
	for in, want := range map[string]string{"/a/b": "/a/b", "": "/", "/a/../b": "/b", "//a": "/a", "/a/./b": "/a/b", "a": "/a", "/.well-known/x": "/.well-known/x"} {
		assert.Equal(t, want, cleanPath(in), "path %q", in)
	}
}
