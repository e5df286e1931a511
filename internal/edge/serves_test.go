package edge

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestServes(t *testing.T) {
	e := New(Options{})
	e.Update(Route{Key: "shop/web", Hosts: []string{"web.shop.localhost"}})
	require.NoError(t, e.SetEntrypoint(Entrypoint{Name: "www", Hosts: []string{"www.example.com"}, Origin: serviceOrigin("shop/web")}))
	for host, want := range map[string]bool{
		"web.shop.localhost":      true,
		"WEB.shop.localhost:8443": true,
		"www.example.com":         true,
		"api.shop.localhost":      false,
		"localhost":               false,
		"example.com":             false,
	} {
		assert.Equal(t, want, e.Serves(host), host)
	}
	e.Remove("shop/web")
	assert.False(t, e.Serves("web.shop.localhost"), "a removed route's host")
	e.RemoveEntrypoint("www")
	assert.False(t, e.Serves("www.example.com"), "a removed entrypoint's host")
}
