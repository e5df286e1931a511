package cli

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berth-dev/berth/internal/api"
)

func TestStatusShowsAutoscaleAndTraffic(t *testing.T) {
	t.Parallel()
	started := time.Now().Add(-2 * time.Minute)
	st := api.Status{Apps: []api.AppStatus{{Name: "shop", Services: []api.ServiceStatus{
		{App: "shop", Name: "web", State: "running", Revision: 4, Desired: 1, Running: 1,
			Instances: []api.InstanceStatus{{ID: "web-1", Revision: 4, State: "healthy", Addr: "127.0.0.1:32768", StartedAt: started}},
			Autoscale: &api.AutoscaleStatus{Min: 0, Max: 8, Concurrency: 50, StableAverage: 3.25, PanicAverage: 12, Panicking: true, Parked: 2},
			Traffic: []api.RevisionTraffic{
				{Revision: 4, Requests: 1520, Window: "1m0s", RequestsPerSecond: 12.4, LatencyMeanMS: 3.14, LatencyP50MS: 2.5, LatencyP99MS: 40},
				{Revision: 3, Requests: 90, Window: "1m0s", RequestsPerSecond: 0.05, LatencyMeanMS: 12000, LatencyP50MS: 0.4, LatencyP99MS: 30000},
			}},
		{App: "shop", Name: "api", State: "idle", Revision: 2, Message: "scaled to zero; the next request starts an instance",
			Autoscale: &api.AutoscaleStatus{Max: 2, Concurrency: 10}},
	}}}}
	d := newFakeDaemon(t)
	d.handle("GET /v1/status", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, http.StatusOK, st) })

	res := d.run("status")
	require.Equal(t, 0, res.code, res.stderr)
	assert.Equal(t, `APP   SERVICE  STATE    REV  INSTANCES  URL
shop  web      running  4    1/1        -
shop  api      idle     2    0/0        -

shop/web
  autoscale: 0..8 instances, target 50 in flight each; in flight now 3.2 (stable), 12.0 (panic), panicking; 2 parked for a fast start
  ID     REV  STATE    ADDR             RESTARTS  AGE
  web-1  4    healthy  127.0.0.1:32768  0         2m
  REV  REQ/S  P50    P99    MEAN   REQUESTS  WINDOW
  4    12.40  2.5ms  40ms   3.1ms  1520      1m0s
  3    0.05   0.4ms  30.0s  12.0s  90        1m0s

shop/api: scaled to zero; the next request starts an instance
  autoscale: 0..2 instances, target 10 in flight each; in flight now 0.0 (stable), 0.0 (panic)
  no instances
`, res.stdout)
}
