package cli

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berth-dev/berth/internal/api"
)

const shopSpec = "app: shop\nservices:\n  web:\n    image: shop-web:1.4\n    port: 8080\n"

func TestDeploySendsTheSpecAndPrintsPhases(t *testing.T) {
	t.Parallel()
	d := newFakeDaemon(t)
	spec := writeSpec(t, shopSpec)
	d.handle("POST /v1/deploy", func(w http.ResponseWriter, r *http.Request) {
		var req api.DeployRequest
		require.NoError(t, json.NewDecoder(r.Body).Decode(&req))
		assert.Equal(t, api.DeployRequest{
			File:     spec,
			BaseDir:  filepath.Dir(spec),
			YAML:     shopSpec,
			Services: []string{"web"},
			Images:   map[string]string{"web": "shop-web:1.5"},
		}, req)
		send(w, api.Message{Kind: api.KindPhase, Phase: "build", Text: "web: building shop-web from ."})
		send(w, api.Message{Kind: api.KindLog, Source: "build", Text: "Step 1/3 : FROM scratch"})
		send(w, api.Message{Kind: api.KindPhase, Phase: "healthy", Text: "web: revision 3 healthy (2/2 instances)"})
		send(w, api.Message{Kind: api.KindResult, OK: true, Deployed: []api.Deploy{
			{Service: "web", Revision: 3, URLs: []string{"http://web.shop.localhost:8080"}},
			{Service: "worker", Revision: 2},
		}})
	})

	res := d.run("deploy", "-f", spec, "web", "--image", "web=shop-web:1.5")
	require.Equal(t, 0, res.code, res.stderr)
	assert.Empty(t, res.stderr)
	assert.Equal(t, `==> build    web: building shop-web from .
    Step 1/3 : FROM scratch
==> healthy  web: revision 3 healthy (2/2 instances)
web     revision 3  http://web.shop.localhost:8080
worker  revision 2  (no HTTP port)
`, res.stdout)
}

func TestDeployFailure(t *testing.T) {
	t.Parallel()
	d := newFakeDaemon(t)
	spec := writeSpec(t, shopSpec)
	d.handle("POST /v1/deploy", func(w http.ResponseWriter, r *http.Request) {
		send(w, api.Message{Kind: api.KindPhase, Phase: "start", Text: "web: starting 2 instance(s) of revision 4"})
		send(w, api.Message{Kind: api.KindResult, Error: "web: revision 4 never became healthy within 60s; revision 3 still serves", Code: "unhealthy",
			LastLogs: []string{"listening on :9090", "panic: boom"}})
	})

	t.Run("human", func(t *testing.T) {
		res := d.run("deploy", "-f", spec)
		assert.Equal(t, 1, res.code)
		assert.Equal(t, "==> start    web: starting 2 instance(s) of revision 4\n", res.stdout)
		assert.Equal(t, "berth: web: revision 4 never became healthy within 60s; revision 3 still serves\n"+
			"    listening on :9090\n    panic: boom\n", res.stderr)
	})
	t.Run("json", func(t *testing.T) {
		res := d.run("deploy", "-f", spec, "--json")
		assert.Equal(t, 1, res.code)
		msgs := decodeNDJSON(t, res.stdout)
		require.Len(t, msgs, 2, "the stream and nothing else: the result carries the error")
		assert.Equal(t, api.KindResult, msgs[1].Kind)
		assert.Equal(t, "unhealthy", msgs[1].Code)
		assert.Equal(t, "berth: web: revision 4 never became healthy within 60s; revision 3 still serves\n", res.stderr)
	})
}

func TestDeployDetach(t *testing.T) {
	t.Parallel()
	d := newFakeDaemon(t)
	spec := writeSpec(t, shopSpec)
	hungUp := make(chan struct{})
	d.handle("POST /v1/deploy", func(w http.ResponseWriter, r *http.Request) {
		send(w, api.Message{Kind: api.KindPhase, Phase: "prepare", Text: "shop: deploying web"})
		select {
		case <-r.Context().Done():
			close(hungUp)
		case <-time.After(5 * time.Second):
			t.Error("the CLI kept reading after the first phase with --detach")
		}
	})

	res := d.run("deploy", "-f", spec, "--detach")
	require.Equal(t, 0, res.code, res.stderr)
	assert.Contains(t, res.stdout, "==> prepare  shop: deploying web\ndetached: ")
	select {
	case <-hungUp:
	case <-time.After(5 * time.Second):
		t.Fatal("the daemon never saw the client go")
	}
}

func TestDeployBadInput(t *testing.T) {
	t.Parallel()
	d := newFakeDaemon(t) // no deploy handler: nothing may be sent
	spec := writeSpec(t, shopSpec)
	missing := filepath.Join(t.TempDir(), "nope.yaml")
	// A spec padded with comments past the limit: 45MB, as a generated
	// file can be, and one byte over 1MiB.
	huge := writeSpec(t, shopSpec+"#"+strings.Repeat("x", 45_000_000)+"\n")
	over := writeSpec(t, shopSpec+"#"+strings.Repeat("x", 1<<20-len(shopSpec)-1)+"\n")
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"missing file", []string{"-f", missing}, "berth: cannot read " + missing + ": no such file (run berth in the app's directory or pass -f FILE)\n"},
		{"bad image", []string{"-f", spec, "--image", "web"}, `berth: invalid --image "web": expected SERVICE=REF` + "\n"},
		{"image twice", []string{"-f", spec, "--image", "web=a", "--image", "web=b"}, "berth: --image names web twice\n"},
		{"app mismatch", []string{"-f", spec, "--app", "other"}, "berth: --app other conflicts with app shop in " + spec + ": deploy deploys the spec's app\n"},
		{"spec too large", []string{"-f", huge}, "berth: " + huge + ": 42.9MiB is larger than the 1MiB limit for a spec\n"},
		{"spec one byte too large", []string{"-f", over}, "berth: " + over + ": 1048577 bytes is larger than the 1MiB limit for a spec\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := d.run(append([]string{"deploy"}, tt.args...)...)
			assert.Equal(t, 1, res.code)
			assert.Equal(t, tt.want, res.stderr)
			assert.Empty(t, res.stdout)
		})
	}
}

// TestDeployDefaultFile runs in a directory without berth.yaml: the error
// names the file and suggests -f. Not parallel: it changes directory.
func TestDeployDefaultFile(t *testing.T) {
	t.Chdir(t.TempDir())
	res := berth(t, "deploy", "--host", "unix:///nonexistent/berth.sock")
	assert.Equal(t, 1, res.code)
	assert.Equal(t, "berth: cannot read berth.yaml: no such file (run berth in the app's directory or pass -f FILE)\n", res.stderr)

	// With the file there, BaseDir is the working directory.
	require.NoError(t, os.WriteFile("berth.yaml", []byte(shopSpec), 0o600))
	d := newFakeDaemon(t)
	wd, err := os.Getwd()
	require.NoError(t, err)
	d.handle("POST /v1/deploy", func(w http.ResponseWriter, r *http.Request) {
		var req api.DeployRequest
		require.NoError(t, json.NewDecoder(r.Body).Decode(&req))
		assert.Equal(t, "berth.yaml", req.File)
		assert.Equal(t, wd, req.BaseDir)
		assert.Empty(t, req.Services)
		assert.Nil(t, req.Images)
		send(w, api.Message{Kind: api.KindResult, OK: true})
	})
	res = d.run("deploy", "--json")
	require.Equal(t, 0, res.code, res.stderr)
	assert.True(t, strings.HasPrefix(res.stdout, `{"kind":"result"`), res.stdout)
}
