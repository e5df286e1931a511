package controlplane_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berth-dev/berth/internal/api"
	"github.com/berth-dev/berth/internal/controlplane"
	"github.com/berth-dev/berth/internal/runtime"
	"github.com/berth-dev/berth/internal/testutil"
)

// fastAutoscale shortens the autoscaler's windows so tests take seconds.
func fastAutoscale(stable, panic time.Duration, coldAfter time.Duration) func(*controlplane.Config) {
	return func(c *controlplane.Config) {
		c.Autoscale = controlplane.AutoscaleConfig{Tick: 50 * time.Millisecond, StableWindow: stable, PanicWindow: panic, ColdAfter: coldAfter}
	}
}

// slowLoad keeps n requests of /sleep?d=... in flight until stopped.
type slowLoad struct {
	ok, failed atomic.Int64
	mu         sync.Mutex
	errs       []string
	stop       chan struct{}
	wg         sync.WaitGroup
}

func (d *daemon) startSlowLoad(app, svc string, n int, each time.Duration) *slowLoad {
	l := &slowLoad{stop: make(chan struct{})}
	for range n {
		l.wg.Go(func() {
			for {
				select {
				case <-l.stop:
					return
				default:
				}
				code, body, err := d.get(app, svc, "/sleep?d="+each.String())
				if err != nil || code != http.StatusOK {
					l.failed.Add(1)
					l.mu.Lock()
					if len(l.errs) < 5 {
						l.errs = append(l.errs, fmt.Sprintf("code=%d err=%v body=%q", code, err, body))
					}
					l.mu.Unlock()
					continue
				}
				l.ok.Add(1)
			}
		})
	}
	return l
}

func (l *slowLoad) finish() {
	close(l.stop)
	l.wg.Wait()
}

func TestAutoscalerFollowsALoadStep(t *testing.T) {
	d := startFakeDaemon(t, "", fastAutoscale(3*time.Second, 500*time.Millisecond, 0))
	img := d.image()
	app := testutil.UniqueName(t, "autoscale")
	d.mustDeploy(appSpec(app, img, "    scale: {min: 1, max: 3, concurrency: 2}\n"))
	require.Equal(t, 1, d.status(app).Running)

	// 8 requests of 300ms always in flight: 4x the target of 2 for one
	// instance, so the panic window scales to max at once.
	step := time.Now()
	l := d.startSlowLoad(app, "web", 8, 300*time.Millisecond)
	eventually(t, 30*time.Second, "3 instances serving under load", func() bool {
		st := d.status(app)
		return st.Running == 3 && st.Desired == 3
	})
	t.Logf("load step -> 3 healthy instances: %s", time.Since(step).Round(time.Millisecond))
	st := d.status(app)
	require.NotNil(t, st.Autoscale)
	assert.Greater(t, st.Autoscale.PanicAverage, 2.0)
	time.Sleep(time.Second) // the new instances share the load
	l.finish()
	assert.Zero(t, l.failed.Load(), "failed requests while scaling up: %v", l.errs)

	stop := time.Now()
	eventually(t, 30*time.Second, "back to min 1 instance after the stable window", func() bool {
		st := d.status(app)
		return st.Running == 1 && st.Desired == 1 && len(st.Instances) == 1
	})
	t.Logf("load stop -> 1 instance: %s", time.Since(stop).Round(time.Millisecond))
	code, _, err := d.get(app, "web", "/")
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, code)

	events := eventsText(t, d, app)
	// Whether the first step up came from the panic window or the stable
	// one depends on how fast the load generator ramps on a loaded
	// machine; the panic rule itself is scaler.decide's (TestDecide, in
	// internal/controlplane/autoscale). What a user sees is checked here:
	// up under load, down after it, no failed request.
	assert.Contains(t, events, "autoscale: scale up from 1 to ")
	assert.Regexp(t, `autoscale: scale down from [23] to 1: 3s average [0-9.]+ in flight / target 2 per instance`, events)
}

func TestScaleToZeroHoldsTheFirstRequest(t *testing.T) {
	for _, tc := range []struct {
		name      string
		coldAfter time.Duration
		parked    string // the engine state of the parked instance
		how       string
		onDocker  bool
	}{
		// Frozen by the cgroup freezer: a real container.
		{name: "frozen", parked: "paused", how: "thawed", onDocker: true},
		{name: "stopped", coldAfter: -1, parked: string(runtime.PodExited), how: "restarted"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			opt := fastAutoscale(2*time.Second, 500*time.Millisecond, tc.coldAfter)
			var d *daemon
			if tc.onDocker {
				d = startDaemon(t, "", opt)
			} else {
				d = startFakeDaemon(t, "", opt)
			}
			img := d.image()
			app := testutil.UniqueName(t, "zero-"+tc.name)
			d.destroyOnCleanup(app)
			d.mustDeploy(appSpec(app, img, "    scale: {min: 0, max: 2, concurrency: 10}\n"))
			first := d.status(app).Instances
			require.Len(t, first, 1, "a deploy starts one instance to health-check the revision")

			eventually(t, 30*time.Second, "scaled to zero", func() bool {
				st := d.status(app)
				return st.State == "idle" && st.Running == 0 && len(st.Instances) == 0 && st.Autoscale.Parked == 1
			})
			assert.Equal(t, tc.parked, d.state(first[0].ContainerID), "no running instance")

			// The first requests are held, not refused, while an instance
			// comes back.
			const n = 10
			var wg sync.WaitGroup
			codes := make([]int, n)
			took := make([]time.Duration, n)
			for i := range n {
				wg.Go(func() {
					start := time.Now()
					code, body, err := d.get(app, "web", "/")
					took[i] = time.Since(start)
					if err != nil {
						t.Errorf("held request %d: %v", i, err)
					}
					codes[i] = code
					if code != http.StatusOK {
						t.Errorf("held request %d: %d %q", i, code, body)
					}
				})
			}
			wg.Wait()
			t.Logf("cold start (%s): %v", tc.name, took)
			for i := range n {
				assert.Equal(t, http.StatusOK, codes[i])
			}
			st := d.status(app)
			assert.Equal(t, 1, st.Running)
			assert.Equal(t, "running", st.State)
			// The wake's event is recorded once the instance serves, which
			// may be a moment after the requests it woke for were answered.
			var events string
			eventually(t, 5*time.Second, "the wake's event", func() bool {
				events = eventsText(t, d, app)
				return strings.Contains(events, "autoscale: woke from zero for a waiting request: instance "+first[0].ID)
			})
			assert.Contains(t, events, "autoscale: scale to zero from 1: no request for 2s")
			assert.Contains(t, events, "("+tc.how+")")

			if tc.name != "frozen" {
				return
			}
			// A deploy while idle serves with one instance, then idles again.
			eventually(t, 30*time.Second, "scaled to zero again", func() bool { return d.status(app).State == "idle" })
			d.mustDeploy(appSpec(app, img, "    scale: {min: 0, max: 2, concurrency: 10}\n    env: {VERSION: v2}\n"))
			// (Right after the switch the autoscaler may already park the new
			// instance again: the request below must then wake it.)
			st = d.status(app)
			assert.Equal(t, 2, st.Revision)
			code, body, err := d.get(app, "web", "/")
			require.NoError(t, err)
			assert.Equal(t, http.StatusOK, code)
			assert.Equal(t, "hello from v2\n", body)
			eventually(t, 30*time.Second, "revision 2 scaled to zero", func() bool {
				st := d.status(app)
				return st.State == "idle" && st.Revision == 2 && st.Autoscale.Parked == 1
			})
		})
	}
}

func TestStatusCountsRequestsPerRevision(t *testing.T) {
	d := startFakeDaemon(t, "")
	img := d.image()
	app := testutil.UniqueName(t, "traffic")
	d.mustDeploy(appSpec(app, img, "    instances: 2\n"))
	const n = 37
	for range n {
		code, _, err := d.get(app, "web", "/")
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, code)
	}
	var tr api.RevisionTraffic
	eventually(t, 10*time.Second, fmt.Sprintf("status counting %d requests", n), func() bool {
		st := d.status(app)
		if len(st.Traffic) != 1 {
			return false
		}
		tr = st.Traffic[0]
		return tr.Requests == n
	})
	assert.Equal(t, 1, tr.Revision)
	assert.Positive(t, tr.RequestsPerSecond)
	assert.Positive(t, tr.LatencyP50MS)
	assert.GreaterOrEqual(t, tr.LatencyP99MS, tr.LatencyP50MS)
	assert.Less(t, tr.LatencyP99MS, 1000.0)
}

func TestBadScaleSpecsChangeNothing(t *testing.T) {
	d := startFakeDaemon(t, "")
	img := d.image()
	app := testutil.UniqueName(t, "badscale")
	d.mustDeploy(appSpec(app, img, "    scale: {min: 1, max: 2, concurrency: 10}\n"))
	before := d.status(app)
	eventsBefore := eventsText(t, d, app)

	worker := fmt.Sprintf("app: %s\nservices:\n  web:\n    image: %s\n    command: [\"/testapp\", \"sleep\", \"1h\"]\n    scale: {min: 0, max: 2}\n", app, img)
	for _, tc := range []struct {
		name, yaml, want string
	}{
		{"min above max", appSpec(app, img, "    scale: {min: 3, max: 2, concurrency: 10}\n"), "min (3) is greater than max (2)"},
		{"concurrency 0", appSpec(app, img, "    scale: {min: 1, max: 2, concurrency: 0}\n"), "scale.concurrency"},
		{"concurrency above 1000", appSpec(app, img, "    scale: {min: 1, max: 2, concurrency: 1001}\n"), "scale.concurrency"},
		{"instances with scale", appSpec(app, img, "    instances: 2\n    scale: {min: 1, max: 2}\n"), "instances"},
		{"scale to zero on a worker", worker, "a worker cannot be woken by a request"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, _, err := d.deploy(tc.yaml)
			require.Error(t, err)
			assert.False(t, res.OK)
			msg := err.Error()
			assert.NotContains(t, msg, "\n", "one line")
			assert.Contains(t, msg, "berth.yaml")
			assert.Contains(t, msg, tc.want)
			t.Log(msg)
		})
	}
	after := d.status(app)
	assert.Equal(t, before.Revision, after.Revision)
	assert.Equal(t, before.Running, after.Running)
	assert.Equal(t, before.Instances[0].ID, after.Instances[0].ID)
	require.NotNil(t, after.Autoscale)
	assert.Equal(t, [3]int{1, 2, 10}, [3]int{after.Autoscale.Min, after.Autoscale.Max, after.Autoscale.Concurrency})
	assert.Equal(t, eventsBefore, eventsText(t, d, app), "no event: nothing happened")
	revs, err := d.client.Revisions(context.Background(), app, "web")
	require.NoError(t, err)
	assert.Len(t, revs, 1, "no revision recorded")
	assert.False(t, strings.Contains(d.logs.String(), "scale up"), "the autoscaler was not disturbed")
}

func TestMetricsMatchTheTraffic(t *testing.T) {
	d := startFakeDaemon(t, "", fastAutoscale(1500*time.Millisecond, 500*time.Millisecond, 0))
	img := d.image()
	app := testutil.UniqueName(t, "metrics")
	d.mustDeploy(appSpec(app, img, "    scale: {min: 0, max: 2, concurrency: 10}\n"))
	svc := `app="` + app + `",service="web"`
	route := `code="2xx",entrypoint="` + app + `/web",origin="` + app + `/web"`

	const n = 25
	for range n {
		code, _, err := d.get(app, "web", "/")
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, code)
	}
	m := scrape(t, d)
	assert.Equal(t, float64(n), metricValue(m, "berth_edge_requests_total", route), m)
	assert.Equal(t, 1.0, metricValue(m, "berth_instances", svc+`,state="healthy"`))
	assert.Equal(t, 0.0, metricValue(m, "berth_instances", svc+`,state="frozen"`))
	assert.Equal(t, 1.0, metricValue(m, "berth_desired_instances", svc))
	assert.Equal(t, 10.0, metricValue(m, "berth_autoscaler_target_concurrency", svc))
	assert.Equal(t, 1.0, metricValue(m, "berth_deploys_total", `app="`+app+`",outcome="succeeded",service="web"`))
	assert.Equal(t, 1.0, metricValue(m, "berth_events_total", `app="`+app+`",kind="deploy"`))

	eventually(t, 30*time.Second, "scaled to zero", func() bool { return d.status(app).State == "idle" })
	eventually(t, 10*time.Second, "the parked instance frozen", func() bool {
		return metricValue(scrape(t, d), "berth_instances", svc+`,state="frozen"`) == 1
	})
	m = scrape(t, d)
	assert.Equal(t, 0.0, metricValue(m, "berth_instances", svc+`,state="healthy"`))
	assert.Equal(t, 0.0, metricValue(m, "berth_autoscaler_desired_instances", svc))
	assert.Equal(t, 1.0, metricValue(m, "berth_autoscaler_decisions_total", `app="`+app+`",direction="zero",service="web"`))

	code, _, err := d.get(app, "web", "/")
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, code)
	m = scrape(t, d)
	assert.Equal(t, float64(n+1), metricValue(m, "berth_edge_requests_total", route))
	assert.Equal(t, 1.0, metricValue(m, "berth_autoscaler_decisions_total", `app="`+app+`",direction="wake",service="web"`))
	assert.Equal(t, 1.0, metricValue(m, "berth_instances", svc+`,state="healthy"`))
	assert.Equal(t, 0.0, metricValue(m, "berth_instances", svc+`,state="frozen"`))
	// The wake's event is recorded once the instance serves, which may be
	// a moment after the request it woke for was answered.
	eventually(t, 5*time.Second, "two autoscale events: zero, then the wake", func() bool {
		return metricValue(scrape(t, d), "berth_events_total", `app="`+app+`",kind="autoscale"`) == 2
	})
}
