package awsdaemon_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"os"
	"regexp"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berth-dev/berth/internal/api"
	"github.com/berth-dev/berth/internal/aws/awsdaemon"
	"github.com/berth-dev/berth/internal/aws/awsenv"
	"github.com/berth-dev/berth/internal/aws/awstest"
	"github.com/berth-dev/berth/internal/client"
	"github.com/berth-dev/berth/internal/controlplane"
	"github.com/berth-dev/berth/internal/runtime/fake"
	"github.com/berth-dev/berth/internal/spec"
	"github.com/berth-dev/berth/internal/testutil"
)

// daemon is a berth server in-process on the fake engine, with its console
// and the AWS environments wired in as berth server wires them.
type daemon struct {
	client *client.Client
	ui     string
}

func startDaemon(t *testing.T, image string) *daemon {
	t.Helper()
	eng := fake.New()
	t.Cleanup(func() { eng.Close() })
	img := fake.Image{Cmd: []string{"/testapp"}, Env: map[string]string{"PORT": "8080"}}
	eng.AddImage(image, img)
	id, err := eng.ImageID(context.Background(), image)
	require.NoError(t, err)
	eng.AddImage(id, img)

	dir, err := os.MkdirTemp("", "berth-aws-") // a short socket path
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(dir) })
	ready := make(chan controlplane.Addrs, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	cfg := controlplane.Config{
		DataDir:      dir,
		HTTPAddr:     "127.0.0.1:0",
		UIAddr:       "127.0.0.1:0",
		Domain:       "localhost",
		Engine:       eng,
		Logger:       slog.New(slog.NewTextHandler(io.Discard, nil)),
		Environments: awsdaemon.Environments{Options: awsenv.Options{DeployTimeout: 90 * time.Second}},
		Ready:        func(a controlplane.Addrs) { ready <- a },
	}
	go func() { done <- controlplane.Run(ctx, cfg) }()
	var addrs controlplane.Addrs
	select {
	case addrs = <-ready:
	case err := <-done:
		cancel()
		t.Fatalf("daemon did not start: %v", err)
	case <-time.After(30 * time.Second):
		cancel()
		t.Fatal("daemon did not start in 30s")
	}
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			t.Error("daemon did not stop in 20s")
		}
	})
	c, err := client.New(addrs.API, "", "")
	require.NoError(t, err)
	return &daemon{client: c, ui: addrs.UI}
}

// browser is a console session: signed in with berth ui's URL, holding
// the page's CSRF token as app.js does.
type browser struct {
	t    *testing.T
	http *http.Client
	base string
	csrf string
}

func (d *daemon) signIn(t *testing.T) *browser {
	t.Helper()
	in, err := d.client.ConsoleSignIn(context.Background())
	require.NoError(t, err)
	jar, err := cookiejar.New(nil)
	require.NoError(t, err)
	b := &browser{t: t, http: &http.Client{Jar: jar}, base: "http://" + d.ui}
	resp, err := b.http.Get(in.URL) // redirected to the page
	require.NoError(t, err)
	page, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	m := regexp.MustCompile(`name="berth-csrf" content="([0-9a-f]+)"`).FindSubmatch(page)
	require.NotNil(t, m, "no CSRF token in the console's page:\n%s", page)
	b.csrf = string(m[1])
	return b
}

// call sends a request to the console's /api/ as app.js does and returns
// the status and body.
func (b *browser) call(method, path string, body any) (int, []byte) {
	b.t.Helper()
	var rd io.Reader
	if body != nil {
		j, err := json.Marshal(body)
		require.NoError(b.t, err)
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, b.base+"/api"+path, rd)
	require.NoError(b.t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Berth-CSRF", b.csrf)
	resp, err := b.http.Do(req)
	require.NoError(b.t, err)
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	require.NoError(b.t, err)
	return resp.StatusCode, out
}

func (b *browser) status(app string) api.ServiceStatus {
	b.t.Helper()
	code, body := b.call("GET", "/v1/apps/"+app+"/envs/prod/status", nil)
	require.Equal(b.t, http.StatusOK, code, "%s", body)
	var st api.Status
	require.NoError(b.t, json.Unmarshal(body, &st), "%s", body)
	require.Len(b.t, st.Apps, 1, "%s", body)
	require.NotEmpty(b.t, st.Apps[0].Services, "%s", body)
	return st.Apps[0].Services[0]
}

// lastResult is the result message of an NDJSON stream.
func lastResult(t *testing.T, body []byte) api.Message {
	t.Helper()
	var res api.Message
	for _, line := range bytes.Split(bytes.TrimSpace(body), []byte("\n")) {
		var m api.Message
		require.NoError(t, json.Unmarshal(line, &m), "%s", line)
		if m.Kind == api.KindResult {
			res = m
		}
	}
	require.Equal(t, api.KindResult, res.Kind, "no result in the stream:\n%s", body)
	return res
}

// TestConsoleSteersAnAWSEnvironment: an app deployed to the fake AWS (moto)
// and to the daemon, whose deployed berth.yaml names that environment; the
// console's own API reads the environment's status, revisions and events,
// and after a second deploy rolls it back to revision 1.
func TestConsoleSteersAnAWSEnvironment(t *testing.T) {
	p := awstest.UseProxy(t)
	awstest.SimulateECS(t, p)
	image := testutil.TestAppImage(t)
	app := testutil.UniqueName(t, "u")
	yaml := `app: ` + app + `
environments:
  prod:
    engine: aws
services:
  web:
    image: ` + image + `
    port: 8080
    health:
      path: /healthz
      interval: 5s
`
	sp, err := spec.Parse("berth.yaml", []byte(yaml))
	require.NoError(t, err)
	ctx := context.Background()
	deployAWS := func() {
		t.Helper()
		e, err := awsenv.Open(ctx, sp, "prod", awsenv.Options{DeployTimeout: 90 * time.Second})
		require.NoError(t, err)
		res := e.Deploy(ctx, sp, nil, nil, nil)
		require.True(t, res.OK, "deploy to AWS: %s", res.Error)
	}
	deployAWS()

	d := startDaemon(t, image)
	res, err := d.client.Deploy(ctx, api.DeployRequest{File: "berth.yaml", YAML: yaml}, nil)
	require.NoError(t, err)
	require.True(t, res.OK, res.Error)
	b := d.signIn(t)

	// The apps list names the environment; its status is AWS's.
	code, body := b.call("GET", "/v1/apps", nil)
	require.Equal(t, http.StatusOK, code)
	assert.Contains(t, string(body), `"engine":"aws"`)
	s := b.status(app)
	assert.Equal(t, "web", s.Name)
	assert.Equal(t, 1, s.Revision)
	assert.Equal(t, "running", s.State)

	deployAWS()
	assert.Equal(t, 2, b.status(app).Revision)
	code, body = b.call("GET", "/v1/apps/"+app+"/envs/prod/services/web/revisions", nil)
	require.Equal(t, http.StatusOK, code, "%s", body)
	var revs []api.Revision
	require.NoError(t, json.Unmarshal(body, &revs))
	require.Len(t, revs, 2)

	// Roll back from the console: a stream that ends in success, then
	// revision 1 serves again.
	code, body = b.call("POST", "/v1/apps/"+app+"/envs/prod/services/web/rollback", api.RollbackRequest{})
	require.Equal(t, http.StatusOK, code, "%s", body)
	res = lastResult(t, body)
	require.True(t, res.OK, "rollback: %s", res.Error)
	assert.Equal(t, 1, b.status(app).Revision)

	code, body = b.call("GET", "/v1/apps/"+app+"/envs/prod/events", nil)
	require.Equal(t, http.StatusOK, code, "%s", body)
	var evs []api.Event
	require.NoError(t, json.Unmarshal(body, &evs))
	kinds := []string{}
	for _, e := range evs {
		kinds = append(kinds, e.Kind)
	}
	assert.Contains(t, kinds, "rollback")

	// Scale, pause and resume from the console.
	code, body = b.call("POST", "/v1/apps/"+app+"/envs/prod/scale", api.ScaleRequest{Counts: map[string]int{"web": 2}})
	require.Equal(t, http.StatusOK, code, "%s", body)
	assert.Equal(t, 2, b.status(app).Desired)
	code, body = b.call("POST", "/v1/apps/"+app+"/envs/prod/services/web/pause", nil)
	require.Equal(t, http.StatusOK, code, "%s", body)
	assert.Equal(t, "paused", b.status(app).State)
	code, body = b.call("POST", "/v1/apps/"+app+"/envs/prod/services/web/resume", nil)
	require.Equal(t, http.StatusOK, code, "%s", body)
	res = lastResult(t, body)
	require.True(t, res.OK, "resume: %s", res.Error)
	s = b.status(app)
	assert.Equal(t, "running", s.State)
	assert.Equal(t, 1, s.Revision)

	// Bad input: an environment the spec does not name, a service the
	// environment does not have; a change without the CSRF token.
	code, body = b.call("GET", "/v1/apps/"+app+"/envs/staging/status", nil)
	assert.Equal(t, http.StatusNotFound, code)
	assert.Contains(t, string(body), `no environment \"staging\"`)
	code, body = b.call("GET", "/v1/apps/"+app+"/envs/prod/services/nope/revisions", nil)
	assert.Equal(t, http.StatusNotFound, code, "%s", body)
	assert.Contains(t, string(body), "no service nope")
	b.csrf = "forged"
	code, _ = b.call("POST", "/v1/apps/"+app+"/envs/prod/services/web/pause", nil)
	assert.Equal(t, http.StatusForbidden, code)
	assert.Equal(t, "running", b.status(app).State)

	t.Run("browser", func(t *testing.T) { inABrowser(t, d, app) })
}

// inABrowser picks the environment in a real browser's console, sees
// the AWS status there and rolls web back (to revision 2) from the page.
func inABrowser(t *testing.T, d *daemon, app string) {
	browser := testutil.Browser(t)
	in, err := d.client.ConsoleSignIn(context.Background())
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(browser, 60*time.Second)
	defer cancel()
	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(in.URL)))
	waitJS(t, ctx, `[...document.querySelectorAll('#env option')].some(o => o.value === 'prod')`)
	require.NoError(t, chromedp.Do(ctx, chromedp.SetValue(chromedp.CSS(`#env`), "prod")))
	_, err = chromedp.Run(ctx, chromedp.Evaluate[bool](`document.getElementById('env').dispatchEvent(new Event('change'))`))
	require.NoError(t, err)
	row := `document.querySelector('[data-env-app="` + app + `"] tr[data-service="web"]')`
	waitJS(t, ctx, row+` !== null && `+row+`.dataset.revision === "1" && `+row+`.dataset.state === "running"`)
	waitJS(t, ctx, `document.querySelectorAll('[data-env-app="`+app+`"] .env-revisions tr[data-rev]').length === 2`)
	waitJS(t, ctx, `document.querySelector('[data-env-app="`+app+`"] .env-events').textContent.includes('rollback')`)
	if dir := os.Getenv("BERTH_SCREENSHOTS"); dir != "" { // scripts/screenshots.sh
		png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(dir+"/console-aws.png", png, 0o644))
	}
	require.NoError(t, chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(`[data-env-app="`+app+`"] tr[data-service="web"] .env-rollback`)),
		chromedp.WaitVisible(chromedp.CSS(`#confirm-ok`)), chromedp.Click(chromedp.CSS(`#confirm-ok`))))
	waitJS(t, ctx, `document.getElementById('toasts').textContent.includes('Rolled back')`)
	waitJS(t, ctx, row+`.dataset.revision === "2"`)
}

// waitJS polls expr in the page until it is true.
func waitJS(t *testing.T, ctx context.Context, expr string) {
	t.Helper()
	c, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if _, err := chromedp.Run(c, chromedp.Poll[bool](expr, chromedp.WithPollingInterval(100*time.Millisecond), chromedp.WithPollingTimeout(20*time.Second))); err != nil {
		page, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById('toasts').textContent + ' | ' + document.getElementById('main').innerText.slice(0, 800)`))
		t.Fatalf("waiting in the browser for: %s: %v; the page shows: %s", expr, err, page)
	}
}

// TestNoCredentialsIsOneLine: a daemon started without AWS credentials
// answers the console with one line that says how to give it some.
func TestNoCredentialsIsOneLine(t *testing.T) {
	home := t.TempDir()
	for _, k := range []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI"} {
		t.Setenv(k, "")
		os.Unsetenv(k)
	}
	t.Setenv("HOME", home)
	t.Setenv("AWS_CONFIG_FILE", home+"/none")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", home+"/none")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	t.Setenv("AWS_REGION", "eu-west-1")
	t.Setenv("AWS_DEFAULT_REGION", "")
	t.Setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9") // never a real AWS
	app := testutil.UniqueName(t, "n")
	d := startDaemon(t, fake.TestApp)
	yaml := "app: " + app + "\nenvironments:\n  prod: {engine: aws}\nservices:\n  web:\n    image: " + fake.TestApp + "\n    port: 8080\n    health: {path: /healthz}\n"
	res, err := d.client.Deploy(context.Background(), api.DeployRequest{File: "berth.yaml", YAML: yaml}, nil)
	require.NoError(t, err)
	require.True(t, res.OK, res.Error)
	b := d.signIn(t)
	code, body := b.call("GET", "/v1/apps/"+app+"/envs/prod/status", nil)
	assert.Equal(t, http.StatusInternalServerError, code)
	var e api.Error
	require.NoError(t, json.Unmarshal(body, &e), "%s", body)
	assert.Equal(t, "berth server has no AWS credentials: start it with AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, in its environment (or on a machine with an instance role)", e.Message)

	// Nor a region: the spec's environment names none, and neither does
	// the daemon's environment.
	os.Unsetenv("AWS_REGION")
	os.Unsetenv("AWS_DEFAULT_REGION")
	code, body = b.call("GET", "/v1/apps/"+app+"/envs/prod/status", nil)
	assert.Equal(t, http.StatusBadRequest, code)
	require.NoError(t, json.Unmarshal(body, &e), "%s", body)
	assert.Contains(t, e.Message, "AWS_REGION in berth server's environment")
}
