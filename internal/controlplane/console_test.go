package controlplane_test

import (
	"context"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berth-dev/berth/internal/api"
	"github.com/berth-dev/berth/internal/controlplane"
	"github.com/berth-dev/berth/internal/testutil"
)

// withConsole serves the console on a free loopback port.
func withConsole(c *controlplane.Config) { c.UIAddr = "127.0.0.1:0" }

// js evaluates expr in the browser's page (awaiting it when a promise).
func js[T any](t *testing.T, ctx context.Context, expr string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
	require.NoError(t, err, expr)
	return v
}

// waitJS polls expr in the page until it is true.
func waitJS(t *testing.T, ctx context.Context, timeout time.Duration, expr string) {
	t.Helper()
	c, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	_, err := chromedp.Run(c, chromedp.Poll[bool](expr, chromedp.WithPollingInterval(100*time.Millisecond), chromedp.WithPollingTimeout(timeout)))
	if err != nil {
		// What the page said: its messages and the part being waited on.
		page, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`'dialog open: ' + document.getElementById('confirm').open + ' | ' + document.getElementById('toasts').textContent + ' | ' + document.getElementById('main').innerText.slice(0, 600)`))
		t.Fatalf("waiting in the browser for: %s: %v; the page shows: %s", expr, err, page)
	}
}

// screenshot writes the page to $BERTH_SCREENSHOTS/name.png when that is
// set (scripts/screenshots.sh).
func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	dir := os.Getenv("BERTH_SCREENSHOTS")
	if dir == "" {
		return
	}
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644))
}

// TestConsoleInABrowser signs a real browser in with berth ui's URL, sees
// the deployed service, watches its request graph move while traffic
// flows, and rolls it back from the page.
func TestConsoleInABrowser(t *testing.T) {
	t.Parallel()
	browser := testutil.Browser(t)
	d := startFakeDaemon(t, "", withConsole)
	require.NotEmpty(t, d.addrs.UI)
	app := testutil.UniqueName(t, "ui")
	envs := "environments:\n  prod: {engine: aws, region: eu-west-1}\n"
	d.mustDeploy(appSpec(app, d.image(), "    env: {V: \"1\"}\n") + envs)
	d.mustDeploy(appSpec(app, d.image(), "    env: {V: \"2\"}\n") + envs)
	require.Equal(t, 2, d.status(app).Revision)

	in, err := d.client.ConsoleSignIn(context.Background())
	require.NoError(t, err)
	step, cancel := context.WithTimeout(browser, 60*time.Second)
	defer cancel()
	require.NoError(t, chromedp.Do(step, chromedp.Navigate(in.URL)))

	// Signed in: the apps page lists the service at revision 2.
	row := `document.querySelector('[data-app="` + app + `"] tr[data-service="web"]')`
	waitJS(t, step, 10*time.Second, row+` !== null && `+row+`.querySelector('.rev').textContent === "2"`)
	screenshot(t, step, "console-apps")

	// The service's page, then traffic: the graph gets points with requests.
	require.NoError(t, chromedp.Do(step, chromedp.Click(chromedp.CSS(`[data-app="`+app+`"] tr[data-service="web"] a`))))
	waitJS(t, step, 10*time.Second, `document.querySelector('#svc-revision[data-revision="2"]') !== null`)
	// Its revisions, newest first, say who deployed them (the socket's
	// user, as the daemon knows the caller).
	me, err := user.Current()
	require.NoError(t, err)
	waitJS(t, step, 10*time.Second, `(() => { const r = document.querySelectorAll('#svc-revisions tr[data-rev]'); return r.length === 2 && r[0].dataset.rev === "2" && r[0].textContent.includes(`+strconv.Quote(me.Username)+`) })()`)
	// Its logs and events stream in; the filter hides what does not match.
	waitJS(t, step, 10*time.Second, `[...document.querySelectorAll('#logs div')].some(l => l.textContent.includes('listening on'))`)
	waitJS(t, step, 10*time.Second, `[...document.querySelectorAll('#events div')].some(e => e.textContent.includes('revision 2'))`)
	require.NoError(t, chromedp.Do(step, chromedp.SendKeys(chromedp.CSS(`#log-filter`), "no such line")))
	waitJS(t, step, 5*time.Second, `[...document.querySelectorAll('#logs div')].every(l => l.hidden)`)
	load := d.startLoad(app, "web", 4)
	waitJS(t, step, 20*time.Second, `parseFloat(document.getElementById('chart-requests').dataset.last || "0") > 0`)
	points := js[string](t, step, `document.getElementById('chart-requests').dataset.points`)
	waitJS(t, step, 20*time.Second, `document.getElementById('chart-requests').dataset.points !== "`+points+`"`)
	waitJS(t, step, 10*time.Second, `document.querySelectorAll('#chart-requests polyline').length > 0`)
	screenshot(t, step, "console-service")
	load.finish()
	require.Zero(t, load.failed.Load(), "requests failed: %v", load.errs)

	// Scale, pause and resume, each confirmed in the dialog.
	confirm := chromedp.Steps(chromedp.WaitVisible(chromedp.CSS(`#confirm-ok`)), chromedp.Click(chromedp.CSS(`#confirm-ok`)))
	// As typed: the input event marks it edited, so live updates keep it.
	js[bool](t, step, `(n => { n.value = '2'; return n.dispatchEvent(new Event('input')); })(document.getElementById('scale-n'))`)
	require.NoError(t, chromedp.Do(step, chromedp.Click(chromedp.CSS(`#act-scale`)), confirm))
	waitJS(t, step, 20*time.Second, `document.querySelectorAll('#svc-instances tr').length === 3`)
	assert.Equal(t, 2, d.status(app).Running)
	require.NoError(t, chromedp.Do(step, chromedp.Click(chromedp.CSS(`#act-pause`)), confirm))
	waitJS(t, step, 20*time.Second, `document.querySelector('#svc-state .badge.paused') !== null`)
	waitJS(t, step, 20*time.Second, `document.getElementById('toasts').textContent.includes('Paused')`)
	require.NoError(t, chromedp.Do(step, chromedp.Click(chromedp.CSS(`#act-resume`)), confirm))
	waitJS(t, step, 20*time.Second, `document.getElementById('toasts').textContent.includes('Resum')`)
	waitJS(t, step, 20*time.Second, `document.querySelector('#svc-state .badge.running') !== null`)

	// The environment picker lists the spec's AWS environment, which the
	// CLI drives.
	waitJS(t, step, 10*time.Second, `[...document.querySelectorAll('#env option')].some(o => o.value === 'prod')`)

	// Roll back, confirmed in the dialog: the page shows the new revision.
	require.NoError(t, chromedp.Do(step, chromedp.Click(chromedp.CSS(`#act-rollback`)), confirm))
	waitJS(t, step, 30*time.Second, `document.querySelector('#svc-revision:not([data-revision="2"])') !== null`)
	shown, err := strconv.Atoi(js[string](t, step, `document.getElementById('svc-revision').dataset.revision`))
	require.NoError(t, err)
	st := d.status(app)
	assert.NotEqual(t, 2, st.Revision, "the daemon rolled back")
	assert.Equal(t, st.Revision, shown, "the page shows the daemon's revision")

	require.NoError(t, chromedp.Do(step, chromedp.SetValue(chromedp.CSS(`#env`), "prod")))
	js[bool](t, step, `document.getElementById('env').dispatchEvent(new Event('change'))`)
	// This daemon has no Environments: the page says so in one line, and
	// names the CLI's way.
	waitJS(t, step, 10*time.Second, `document.querySelector('[data-env-app="`+app+`"] .env-error').textContent.includes('does not reach remote environments; run berth --env prod')`)
}

// TestConsoleRefusesABrowserWithoutSession: a browser that has not spent a
// sign-in URL gets 401 for the pages and the API, and a spent URL does not
// sign a second browser in.
func TestConsoleRefusesABrowserWithoutSession(t *testing.T) {
	t.Parallel()
	browser := testutil.Browser(t)
	d := startFakeDaemon(t, "", withConsole)
	base := "http://" + d.addrs.UI
	step, cancel := context.WithTimeout(browser, 30*time.Second)
	defer cancel()

	resp, err := chromedp.RunResponse(step, chromedp.Navigate(base+"/"))
	require.NoError(t, err)
	assert.Equal(t, int64(401), resp.Status)
	assert.Contains(t, js[string](t, step, `document.getElementById('refused').textContent`), "berth ui")
	code := js[int](t, step, `fetch('/api/v1/status').then(r => r.status)`)
	assert.Equal(t, 401, code)

	// A URL already spent by someone else signs nobody in.
	in, err := d.client.ConsoleSignIn(context.Background())
	require.NoError(t, err)
	other := testutil.Browser(t)
	require.NoError(t, chromedp.Do(other, chromedp.Navigate(in.URL)))
	resp, err = chromedp.RunResponse(step, chromedp.Navigate(in.URL))
	require.NoError(t, err)
	assert.Equal(t, int64(401), resp.Status)
	resp, err = chromedp.RunResponse(step, chromedp.Navigate(base+"/"))
	require.NoError(t, err)
	assert.Equal(t, int64(401), resp.Status)
}

// TestHistoryKeepsRatesAndErrorsPerRevision: the console's graphs read
// GET .../history, which takes a point from the edge's counters (every
// second in tests, 5 s otherwise), with the 5xx a revision answered.
func TestHistoryKeepsRatesAndErrorsPerRevision(t *testing.T) {
	t.Parallel()
	d := startFakeDaemon(t, "")
	app := testutil.UniqueName(t, "hist")
	d.mustDeploy(appSpec(app, d.image(), "    env: {ROOT_STATUS: \"500\"}\n"))
	ctx := context.Background()
	_, err := d.client.History(ctx, app, "nope")
	require.Error(t, err)
	assert.Contains(t, err.Error(), `has no service "nope"`)
	// The edge's 5xx counters are read from the service's first point on.
	eventually(t, 10*time.Second, "a first point", func() bool {
		h, err := d.client.History(ctx, app, "web")
		require.NoError(t, err)
		return len(h.Points) > 0
	})

	for range 20 {
		code, _, err := d.get(app, "web", "/")
		require.NoError(t, err)
		require.Equal(t, 500, code)
	}
	for range 10 {
		code, _, err := d.get(app, "web", "/healthz")
		require.NoError(t, err)
		require.Equal(t, 200, code)
	}
	var req, errs float64
	eventually(t, 15*time.Second, "the history counts the requests and their errors", func() bool {
		h, err := d.client.History(ctx, app, "web")
		require.NoError(t, err)
		assert.Equal(t, "1s", h.Every)
		req, errs = 0, 0
		for i := 1; i < len(h.Points); i++ {
			// A rate times its interval is the count (the intervals are a
			// second, longer on a busy machine).
			secs := h.Points[i].Time.Sub(h.Points[i-1].Time).Seconds()
			for _, r := range h.Points[i].Revisions {
				require.Equal(t, 1, r.Revision)
				req += r.RequestsPerSecond * secs
				errs += r.ErrorsPerSecond * secs
			}
		}
		return req >= 29.5 && errs >= 19.5
	})
	assert.InDelta(t, 30, req, 0.5, "every request once")
	assert.InDelta(t, 20, errs, 0.5, "every 500 once")
}

// TestConsoleScreenshots writes the console's main pages as PNG to
// $BERTH_SCREENSHOTS (scripts/screenshots.sh), after a scene worth
// showing: two services, a deploy under traffic, tasks, an entrypoint.
// Without BERTH_SCREENSHOTS it is skipped.
func TestConsoleScreenshots(t *testing.T) {
	if os.Getenv("BERTH_SCREENSHOTS") == "" {
		t.Skip("BERTH_SCREENSHOTS is not set: run scripts/screenshots.sh")
	}
	browser := testutil.Browser(t)
	d := startFakeDaemon(t, "", withConsole)
	spec := func(v string) string {
		return `app: shop
services:
  web:
    image: ` + d.image() + `
    port: 8080
    health: {path: /healthz}
    instances: 2
    env: {VERSION: "` + v + `"}
  api:
    image: ` + d.image() + `
    port: 8080
    health: {path: /healthz}
tasks:
  migrate: {service: web, command: ["/testapp", "migrate"]}
edge:
  www:
    hosts: [www.shop.example]
    origin: web
    cache: {enabled: true, default_ttl: 60s}
`
	}
	d.mustDeploy(spec("v1"))
	load := d.startLoad("shop", "web", 2)
	time.Sleep(8 * time.Second)
	d.mustDeploy(spec("v2"))
	more := d.startLoad("shop", "web", 3)
	apiLoad := d.startLoad("shop", "api", 1)
	time.Sleep(10 * time.Second)
	ctx := context.Background()
	_, err := d.runTask(ctx, "shop", api.TaskRunRequest{Name: "migrate"})
	require.NoError(t, err)
	_, _ = d.runTask(ctx, "shop", api.TaskRunRequest{Service: "api", Command: []string{"/testapp", "exit", "3"}})

	in, err := d.client.ConsoleSignIn(ctx)
	require.NoError(t, err)
	step, cancel := context.WithTimeout(browser, 60*time.Second)
	defer cancel()
	require.NoError(t, chromedp.Do(step, chromedp.Navigate(in.URL)))
	waitJS(t, step, 10*time.Second, `document.querySelector('[data-app="shop"] tr[data-service="api"]') !== null`)
	time.Sleep(1500 * time.Millisecond) // a second live update, with rates
	screenshot(t, step, "console-apps")
	require.NoError(t, chromedp.Do(step, chromedp.Navigate("http://"+d.addrs.UI+"/#/app/shop/service/web")))
	waitJS(t, step, 10*time.Second, `parseInt(document.getElementById('chart-requests').dataset.points || "0") > 10`)
	waitJS(t, step, 10*time.Second, `document.querySelector('#svc-revisions tr[data-rev="2"]').textContent.includes('serves')`)
	screenshot(t, step, "console-service")
	require.NoError(t, chromedp.Do(step, chromedp.Navigate("http://"+d.addrs.UI+"/#/tasks")))
	waitJS(t, step, 10*time.Second, `document.querySelectorAll('tr[data-task]').length >= 2`)
	screenshot(t, step, "console-tasks")
	require.NoError(t, chromedp.Do(step, chromedp.Navigate("http://"+d.addrs.UI+"/#/edge")))
	waitJS(t, step, 10*time.Second, `document.querySelector('[data-entrypoint="www"]') !== null`)
	screenshot(t, step, "console-edge")
	load.finish()
	more.finish()
	apiLoad.finish()
}
