package traffic_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/berth-dev/berth/internal/api"
	"github.com/berth-dev/berth/internal/controlplane/apierr"
	"github.com/berth-dev/berth/internal/controlplane/traffic"
	"github.com/berth-dev/berth/internal/edge"
	"github.com/berth-dev/berth/internal/router"
	"github.com/berth-dev/berth/internal/spec"
	"github.com/berth-dev/berth/internal/store"
)

// daemon is what the Entrypoints run in: a real store and a real edge,
// events recorded as the daemon records them.
type daemon struct {
	t     *testing.T
	dir   string
	store *store.Store
	edge  *edge.Edge
	eps   *traffic.Entrypoints

	mu     sync.Mutex
	events []string
}

// start opens the store in dir and a new edge, and loads the stored
// entrypoints: a daemon's start.
func start(t *testing.T, dir string) *daemon {
	t.Helper()
	st, err := store.Open(dir)
	require.NoError(t, err)
	d := &daemon{t: t, dir: dir, store: st}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	d.edge = edge.New(edge.Options{Logger: log, OnGuardTrip: func(g router.GuardTrip) { d.eps.GuardTrip(g) }})
	d.eps = traffic.New(traffic.Config{
		Log: log, Store: st, Router: d.edge, DataDir: dir, HTTPPort: "8080",
		ServiceSpec: func(app, service string) *spec.Service { return nil },
		Event: func(app, service, kind, msg string) {
			d.mu.Lock()
			defer d.mu.Unlock()
			d.events = append(d.events, kind+": "+msg)
		},
		RefreshHosts: func() {},
	})
	require.NoError(t, d.eps.Load(context.Background()))
	return d
}

func (d *daemon) stop() {
	d.eps.Close()
	require.NoError(d.t, d.store.Close())
}

// get sends a request for host through the edge and returns the body.
func (d *daemon) get(host string) string {
	d.t.Helper()
	req := httptest.NewRequest(http.MethodGet, "http://"+host+"/", nil)
	rec := httptest.NewRecorder()
	d.edge.ServeHTTP(rec, req)
	require.Equal(d.t, http.StatusOK, rec.Code, rec.Body.String())
	return rec.Body.String()
}

func origin(t *testing.T, body string) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, body) }))
	t.Cleanup(srv.Close)
	return srv.URL
}

// deploy stores app (as a deploy does first) and plans and applies its
// entrypoints.
func deploy(t *testing.T, d *daemon, app string, eps ...spec.Entrypoint) error {
	now := time.Now().UTC()
	require.NoError(t, d.store.PutApp(context.Background(), store.App{Name: app, CreatedAt: now, UpdatedAt: now}))
	sp := &spec.Spec{App: app, Edge: map[string]*spec.Entrypoint{}}
	for i := range eps {
		sp.Edge[eps[i].Name] = &eps[i]
		sp.EdgeOrder = append(sp.EdgeOrder, eps[i].Name)
	}
	plan, err := d.eps.Plan(context.Background(), sp, api.DeployRequest{BaseDir: t.TempDir(), File: "berth.yaml"})
	if err != nil {
		return err
	}
	return d.eps.Apply(context.Background(), plan)
}

// A switch and a shift change where an entrypoint's traffic goes, survive
// a restart, and a guard's rollback puts all traffic back on the active
// origin for good.
func TestEntrypointSwitchShiftGuardSurviveRestart(t *testing.T) {
	ctx := context.Background()
	a, b := origin(t, "A"), origin(t, "B")
	dir := t.TempDir()
	d := start(t, dir)
	require.NoError(t, deploy(t, d, "shop", spec.Entrypoint{Name: "www", Hosts: []string{"www.shop.test"}, Origin: a}))
	require.Equal(t, "A", d.get("www.shop.test"))

	ep, err := d.eps.Switch(ctx, "www", api.SwitchRequest{Origin: b})
	require.NoError(t, err)
	require.Equal(t, b, ep.Origin)
	require.Equal(t, a, ep.SpecOrigin)
	require.Equal(t, []string{"http://www.shop.test:8080"}, ep.URLs)
	require.Equal(t, "B", d.get("www.shop.test"))

	_, err = d.eps.Switch(ctx, "www", api.SwitchRequest{Origin: "nosuch"})
	require.ErrorIs(t, err, apierr.ErrInvalid)
	require.ErrorContains(t, err, "no deployed service shop/nosuch (deploy it first, or pass --force)")
	_, err = d.eps.Shift(ctx, "www", api.ShiftRequest{Shares: map[string]float64{a: 60, "http://127.0.0.1:1": 50}, Force: true})
	require.ErrorContains(t, err, "the shares add up to 110%, more than 100%")

	ep, err = d.eps.Shift(ctx, "www", api.ShiftRequest{Shares: map[string]float64{a: 100}})
	require.NoError(t, err)
	require.Equal(t, []api.Share{{Origin: a, Percent: 100}}, ep.Shares)
	require.Equal(t, &api.Guard{ErrorRate: 100 * router.DefaultGuardErrorRate, Window: router.DefaultGuardWindow.String()}, ep.Guard)
	require.Equal(t, "A", d.get("www.shop.test"))
	d.stop()

	d = start(t, dir)
	require.Equal(t, "A", d.get("www.shop.test"), "the shift survives a restart")
	installed := d.edge.Entrypoints()
	require.Len(t, installed, 1)
	d.eps.GuardTrip(router.GuardTrip{Entrypoint: "www", ID: installed[0].ShiftID, Origins: []string{a}, Errors: 5, Requests: 10, Window: router.DefaultGuardWindow, Threshold: router.DefaultGuardErrorRate})
	require.Equal(t, "B", d.get("www.shop.test"))
	ep, err = d.eps.Show(ctx, "www")
	require.NoError(t, err)
	require.Empty(t, ep.Shares)
	require.NotNil(t, ep.Rollback)
	require.Contains(t, ep.Rollback.Reason, "5 of 10 requests failed (50.0%)")
	require.Contains(t, d.events, "edge-guard-rollback: entrypoint www: shift to "+a+" rolled back: "+ep.Rollback.Reason+"; all traffic on "+b)
	d.stop()

	d = start(t, dir)
	defer d.stop()
	require.Equal(t, "B", d.get("www.shop.test"), "the rollback survives a restart")
}

// An entrypoint's name belongs to one app; a deploy that drops an
// entrypoint takes it out of the edge and says so.
func TestEntrypointNamesAndRemoval(t *testing.T) {
	ctx := context.Background()
	a := origin(t, "A")
	d := start(t, t.TempDir())
	defer d.stop()
	require.NoError(t, deploy(t, d, "shop", spec.Entrypoint{Name: "www", Hosts: []string{"www.shop.test"}, Origin: a}))
	err := deploy(t, d, "blog", spec.Entrypoint{Name: "www", Hosts: []string{"www.blog.test"}, Origin: a})
	require.ErrorIs(t, err, apierr.ErrInvalid)
	require.ErrorContains(t, err, "entrypoint www already belongs to app shop")

	require.NoError(t, deploy(t, d, "shop"))
	require.Empty(t, d.edge.Entrypoints())
	require.Contains(t, d.events, "edge: entrypoints: www (removed)")
	_, err = d.eps.Show(ctx, "www")
	require.ErrorIs(t, err, apierr.ErrNotFound)
	list, err := d.eps.List(ctx)
	require.NoError(t, err)
	require.Empty(t, list)
}
