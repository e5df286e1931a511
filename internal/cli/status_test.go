package cli

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berth-dev/berth/internal/api"
)

func TestStatus(t *testing.T) {
	t.Parallel()
	started := time.Now().Add(-5*time.Minute - time.Second)
	st := api.Status{Apps: []api.AppStatus{{Name: "shop", Services: []api.ServiceStatus{
		{App: "shop", Name: "web", State: "running", Revision: 3, Desired: 2, Running: 2,
			URLs:  []string{"http://web.shop.localhost:8080"},
			Hosts: []string{"web.shop.localhost", "shop.example.com"},
			Instances: []api.InstanceStatus{
				{ID: "web-1", Revision: 3, State: "healthy", Addr: "127.0.0.1:32768", StartedAt: started},
				{ID: "web-2", Revision: 3, State: "healthy", Addr: "127.0.0.1:32769", Restarts: 1, StartedAt: started},
			}},
		{App: "shop", Name: "worker", State: "crash-loop", Revision: 2, Desired: 1, Message: "restarting in 8s (exit 1)"},
	}, Entrypoints: []api.EntrypointHosts{{Name: "www", Hosts: []string{"www.example.com", "example.com"}}}}}}
	d := newFakeDaemon(t)
	d.handle("GET /v1/status", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("app") == "none" {
			writeJSON(w, http.StatusOK, api.Status{Apps: []api.AppStatus{}})
			return
		}
		writeJSON(w, http.StatusOK, st)
	})

	res := d.run("status")
	require.Equal(t, 0, res.code, res.stderr)
	assert.Equal(t, `APP   SERVICE  STATE       REV  INSTANCES  URL
shop  web      running     3    2/2        http://web.shop.localhost:8080
shop  worker   crash-loop  2    0/1        -

shop/web
  hosts: web.shop.localhost, shop.example.com
  ID     REV  STATE    ADDR             RESTARTS  AGE
  web-1  3    healthy  127.0.0.1:32768  0         5m
  web-2  3    healthy  127.0.0.1:32769  1         5m

shop/worker: restarting in 8s (exit 1)
  no instances

shop entrypoint www
  hosts: www.example.com, example.com
`, res.stdout)

	res = d.run("status", "--json")
	require.Equal(t, 0, res.code, res.stderr)
	var got api.Status
	require.NoError(t, json.Unmarshal([]byte(res.stdout), &got))
	assert.Equal(t, "web-2", got.Apps[0].Services[0].Instances[1].ID)
	assert.Equal(t, []string{"web.shop.localhost", "shop.example.com"}, got.Apps[0].Services[0].Hosts)
	assert.Equal(t, []api.EntrypointHosts{{Name: "www", Hosts: []string{"www.example.com", "example.com"}}}, got.Apps[0].Entrypoints)

	res = d.run("status", "--app", "none")
	require.Equal(t, 0, res.code, res.stderr)
	assert.Equal(t, "no apps deployed yet: run \"berth deploy\" in the app's directory\n", res.stdout)
}
