package cli

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berth-dev/berth/internal/api"
)

func TestStatusShowsSidecarsLimitsAndInternalTraffic(t *testing.T) {
	t.Parallel()
	started := time.Now().Add(-2*time.Minute - time.Second)
	st := api.Status{Apps: []api.AppStatus{{Name: "shop", Services: []api.ServiceStatus{
		{App: "shop", Name: "web", State: "running", Revision: 2, Desired: 1, Running: 1,
			Limits: &api.Limits{CPU: 0.5, Memory: 256 << 20, Pids: 128},
			Instances: []api.InstanceStatus{
				{ID: "a1b2", Revision: 2, State: "healthy", Addr: "127.0.0.1:32768", Restarts: 1, StartedAt: started,
					Sidecars: []api.SidecarStatus{
						{Name: "migrate", State: "completed", Init: true},
						{Name: "shipper", State: "running", Restarts: 1},
					}},
			},
			Internal: &api.InternalTraffic{URL: "http://web.shop.internal", Requests: 12, Errors: 1, LatencyMeanMS: 2.5},
		},
	}}}}
	d := newFakeDaemon(t)
	d.handle("GET /v1/status", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, st)
	})
	res := d.run("status")
	require.Equal(t, 0, res.code, res.stderr)
	assert.Equal(t, `APP   SERVICE  STATE    REV  INSTANCES  URL
shop  web      running  2    1/1        -

shop/web
  limits: cpu 0.5, memory 256MiB, pids 128
  ID            REV  STATE      ADDR             RESTARTS  AGE
  a1b2          2    healthy    127.0.0.1:32768  1         2m
  a1b2/migrate  2    completed  -                0
  a1b2/shipper  2    running    -                1
  internal: http://web.shop.internal: 12 requests, 1 errors, mean 2.5ms
`, res.stdout)
}
