package cli

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berth-dev/berth/internal/api"
)

func TestLogsWithSidecars(t *testing.T) {
	t.Parallel()
	d := newFakeDaemon(t)
	d.handle("GET /v1/status", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, api.Status{Apps: []api.AppStatus{{Name: "shop", Services: []api.ServiceStatus{
			{Name: "web", Revision: 1, Instances: []api.InstanceStatus{{ID: "a1", Revision: 1, Sidecars: []api.SidecarStatus{{Name: "helper"}}}}},
		}}}})
	})
	d.handle("GET /v1/apps/shop/services/web/logs", func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Query().Get("container") {
		case "":
			send(w, api.Message{Kind: api.KindLog, Source: "a1", Text: "listening"})
			send(w, api.Message{Kind: api.KindLog, Source: "a1/helper", Text: "shipping"})
		case "helper":
			send(w, api.Message{Kind: api.KindLog, Source: "a1/helper", Text: "shipping"})
		default:
			writeJSON(w, http.StatusNotFound, api.Error{Message: `web has no container named "nope"; its containers are web (the service) and the sidecars helper`, Code: "not_found"})
		}
	})

	res := d.run("logs", "web", "--app", "shop")
	require.Equal(t, 0, res.code, res.stderr)
	assert.Equal(t, "a1        | listening\na1/helper | shipping\n", res.stdout, "the instance and its sidecar, prefixed")

	res = d.run("logs", "web", "--app", "shop", "--container", "helper")
	require.Equal(t, 0, res.code, res.stderr)
	assert.Equal(t, "shipping\n", res.stdout)

	res = d.run("logs", "web", "--app", "shop", "--container", "nope")
	assert.NotEqual(t, 0, res.code)
	assert.Contains(t, res.stderr, `no container named "nope"`)
}
