package cli

import (
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berth-dev/berth/internal/api"
)

// revisionsOf answers GET revisions and records the app each asked for.
func revisionsOf(d *fakeDaemon) chan string {
	apps := make(chan string, 10)
	d.handle("GET /v1/apps/{app}/services/{svc}/revisions", func(w http.ResponseWriter, r *http.Request) {
		apps <- r.PathValue("app")
		if r.PathValue("svc") != "web" {
			writeJSON(w, http.StatusNotFound, api.Error{Message: `app shop has no service "` + r.PathValue("svc") + `"`, Code: "not_found"})
			return
		}
		writeJSON(w, http.StatusOK, []api.Revision{{Number: 1, Image: "shop-web:1.4", Status: "active"}})
	})
	return apps
}

func TestServiceAppResolution(t *testing.T) {
	t.Parallel()
	spec := writeSpec(t, shopSpec)
	// A spec the daemon would reject still names its app.
	broken := writeSpec(t, "app: broken\nservices:\n  web: [\n")
	noApp := writeSpec(t, "services: {}\n")
	tests := []struct {
		name    string
		apps    []string // what GET /v1/apps answers; nil: not asked
		args    []string
		wantApp string
		wantErr string
	}{
		{name: "spec file", args: []string{"-f", spec}, wantApp: "shop"},
		{name: "broken spec file", args: []string{"-f", broken}, wantApp: "broken"},
		{name: "app flag", args: []string{"--app", "blog"}, wantApp: "blog"},
		{name: "app flag agrees with file", args: []string{"--app", "shop", "-f", spec}, wantApp: "shop"},
		{name: "app flag conflicts with file", args: []string{"--app", "blog", "-f", spec}, wantErr: "--app blog conflicts with app shop in " + spec + ": pass one of them"},
		{name: "file without app", args: []string{"-f", noApp}, wantErr: noApp + " has no app: line: add one or pass --app APP"},
		{name: "missing file", args: []string{"-f", spec + ".gone"}, wantErr: "cannot read " + spec + ".gone: no such file (check -f FILE)"},
		{name: "only app", apps: []string{"shop"}, wantApp: "shop"},
		{name: "several apps", apps: []string{"blog", "shop"}, wantErr: "several apps (blog, shop): pass --app"},
		{name: "no app", apps: []string{}, wantErr: `no apps deployed yet: run "berth deploy" in the app's directory`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			d := newFakeDaemon(t)
			if tt.apps != nil {
				d.apps(tt.apps...)
			}
			asked := revisionsOf(d)
			res := d.run(append([]string{"revisions", "web"}, tt.args...)...)
			if tt.wantErr != "" {
				assert.Equal(t, 1, res.code)
				assert.Equal(t, "berth: "+tt.wantErr+"\n", res.stderr)
				assert.Empty(t, asked)
				return
			}
			require.Equal(t, 0, res.code, res.stderr)
			assert.Equal(t, tt.wantApp, <-asked)
		})
	}
}

// TestServiceAppFromWorkingDirectory reads ./berth.yaml. Not parallel: it
// changes directory.
func TestServiceAppFromWorkingDirectory(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	d := newFakeDaemon(t)
	d.apps("blog", "shop")
	asked := revisionsOf(d)

	// No berth.yaml: ambiguous, and destroy never guesses.
	res := d.run("revisions", "web")
	assert.Equal(t, 1, res.code)
	assert.Equal(t, "berth: several apps (blog, shop): pass --app\n", res.stderr)
	res = d.run("destroy")
	assert.Equal(t, 1, res.code)
	assert.Equal(t, "berth: no berth.yaml here: pass --app APP (or -f FILE)\n", res.stderr)

	require.NoError(t, os.WriteFile(filepath.Join(dir, "berth.yaml"), []byte(shopSpec), 0o600))
	res = d.run("revisions", "web")
	require.Equal(t, 0, res.code, res.stderr)
	assert.Equal(t, "shop", <-asked)

	// An explicit --app beats the spec in the working directory.
	res = d.run("revisions", "web", "--app", "blog")
	require.Equal(t, 0, res.code, res.stderr)
	assert.Equal(t, "blog", <-asked)

	// destroy takes the app from ./berth.yaml too.
	d.handle("DELETE /v1/apps/{app}", func(w http.ResponseWriter, r *http.Request) {
		assert.Equal(t, "shop", r.PathValue("app"))
		send(w, api.Message{Kind: api.KindPhase, Phase: "drain", Text: "shop: removing 2 container(s)"})
		send(w, api.Message{Kind: api.KindResult, OK: true})
	})
	res = d.run("destroy")
	require.Equal(t, 0, res.code, res.stderr)
	assert.Equal(t, "==> drain    shop: removing 2 container(s)\ndestroyed app shop\n", res.stdout)
}

func TestUnknownServiceIsTheDaemonsMessage(t *testing.T) {
	t.Parallel()
	d := newFakeDaemon(t)
	revisionsOf(d)
	res := d.run("revisions", "db", "--app", "shop")
	assert.Equal(t, 1, res.code)
	assert.Equal(t, "berth: app shop has no service \"db\"\n", res.stderr)
	assert.Empty(t, res.stdout)

	res = d.run("revisions", "db", "--app", "shop", "--json")
	assert.Equal(t, 1, res.code)
	assert.JSONEq(t, `{"error":"app shop has no service \"db\"","code":"not_found"}`, res.stdout)
}

func TestDestroyNeedsAnApp(t *testing.T) {
	t.Parallel()
	d := newFakeDaemon(t)
	d.apps("shop") // destroy must not guess the only app
	res := d.run("destroy", "-f", filepath.Join(t.TempDir(), "berth.yaml"))
	assert.Equal(t, 1, res.code)
	assert.Contains(t, res.stderr, "no such file")
}
