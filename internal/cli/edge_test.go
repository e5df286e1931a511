package cli

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berth-dev/berth/internal/api"
)

func TestEdgeVerbs(t *testing.T) {
	d := newFakeDaemon(t)
	ep := api.Entrypoint{Name: "www", App: "shop", Hosts: []string{"www.example.com"}, URLs: []string{"http://www.example.com:8080"},
		Origin: "https://xyz.awsapprunner.com", SpecOrigin: "https://xyz.awsapprunner.com"}
	var (
		gotSwitch api.SwitchRequest
		gotShift  api.ShiftRequest
		gotMaint  api.MaintenanceRequest
		gotInv    api.InvalidateRequest
	)
	d.handle("GET /v1/edge", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, 200, []api.Entrypoint{ep}) })
	d.handle("GET /v1/edge/www", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, 200, ep) })
	d.handle("GET /v1/edge/nope", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 404, api.Error{Message: `no entrypoint named "nope"; see "berth edge ls"`, Code: "not_found"})
	})
	d.handle("POST /v1/edge/www/switch", func(w http.ResponseWriter, r *http.Request) {
		require.NoError(t, json.NewDecoder(r.Body).Decode(&gotSwitch))
		out := ep
		out.Origin = gotSwitch.Origin
		writeJSON(w, 200, out)
	})
	d.handle("POST /v1/edge/www/shift", func(w http.ResponseWriter, r *http.Request) {
		require.NoError(t, json.NewDecoder(r.Body).Decode(&gotShift))
		out := ep
		out.Shares = []api.Share{{Origin: "web", Percent: gotShift.Shares["web"]}}
		out.Guard = &api.Guard{ErrorRate: 2, Window: "1m0s"}
		writeJSON(w, 200, out)
	})
	d.handle("POST /v1/edge/www/maintenance", func(w http.ResponseWriter, r *http.Request) {
		require.NoError(t, json.NewDecoder(r.Body).Decode(&gotMaint))
		writeJSON(w, 200, ep)
	})
	d.handle("POST /v1/edge/www/invalidate", func(w http.ResponseWriter, r *http.Request) {
		require.NoError(t, json.NewDecoder(r.Body).Decode(&gotInv))
		writeJSON(w, 200, api.InvalidateResult{Removed: 3})
	})

	res := d.run("edge", "ls")
	require.Zero(t, res.code, res.stderr)
	assert.Contains(t, res.stdout, "NAME")
	assert.Contains(t, res.stdout, "www.example.com")
	assert.Contains(t, res.stdout, "serving")

	res = d.run("edge", "show", "www")
	require.Zero(t, res.code, res.stderr)
	assert.Contains(t, res.stdout, "https://xyz.awsapprunner.com")

	res = d.run("edge", "show", "nope")
	assert.Equal(t, 1, res.code)
	assert.Equal(t, "berth: no entrypoint named \"nope\"; see \"berth edge ls\"\n", res.stderr)

	res = d.run("edge", "switch", "www", "--to", "web", "--force")
	require.Zero(t, res.code, res.stderr)
	assert.Equal(t, api.SwitchRequest{Origin: "web", Force: true}, gotSwitch)
	assert.Equal(t, "www: all traffic to web\n", res.stdout)

	res = d.run("edge", "shift", "www", "web=10%", "--sticky", "cookie", "--header", "X-Berth-Origin", "--guard-error-rate", "2%", "--guard-window", "1m")
	require.Zero(t, res.code, res.stderr)
	assert.Equal(t, map[string]float64{"web": 10}, gotShift.Shares)
	assert.Equal(t, "cookie", gotShift.Sticky)
	assert.Equal(t, "X-Berth-Origin", gotShift.Header)
	require.NotNil(t, gotShift.GuardErrorRate)
	assert.Equal(t, 2.0, *gotShift.GuardErrorRate)
	assert.Equal(t, "1m", gotShift.GuardWindow)
	assert.Contains(t, res.stdout, "web=10%")

	res = d.run("edge", "maintenance", "www", "on")
	require.Zero(t, res.code, res.stderr)
	assert.True(t, gotMaint.On)

	res = d.run("edge", "invalidate", "www", "/static/*")
	require.Zero(t, res.code, res.stderr)
	assert.Equal(t, "/static/*", gotInv.Pattern)
	assert.Equal(t, "www: 3 cached response(s) dropped\n", res.stdout)

	res = d.run("--json", "edge", "show", "www")
	require.Zero(t, res.code)
	var got api.Entrypoint
	require.NoError(t, json.Unmarshal([]byte(res.stdout), &got))
	assert.Equal(t, "www", got.Name)
}

func TestEdgeBadInput(t *testing.T) {
	d := newFakeDaemon(t) // any request reaching it fails the test
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"percent above 100", []string{"edge", "shift", "www", "web=150"}, `berth: invalid "web=150": expected ORIGIN=PERCENT with PERCENT from 0 to 100, e.g. web=10` + "\n"},
		{"negative percent", []string{"edge", "shift", "www", "web=-5"}, `berth: invalid "web=-5": expected ORIGIN=PERCENT with PERCENT from 0 to 100, e.g. web=10` + "\n"},
		{"not a percent", []string{"edge", "shift", "www", "web"}, `berth: invalid "web": expected ORIGIN=PERCENT with PERCENT from 0 to 100, e.g. web=10` + "\n"},
		{"bad sticky", []string{"edge", "shift", "www", "web=5", "--sticky", "ip"}, `berth: invalid --sticky "ip": use cookie or none` + "\n"},
		{"bad guard", []string{"edge", "shift", "www", "web=5", "--guard-error-rate", "0"}, `berth: invalid --guard-error-rate "0": a percentage above 0 and at most 100, e.g. 1%` + "\n"},
		{"switch without --to", []string{"edge", "switch", "www"}, "berth: missing --to ORIGIN (usage: berth edge switch ENTRYPOINT --to ORIGIN [flags])\n"},
		{"maintenance maybe", []string{"edge", "maintenance", "www", "maybe"}, `berth: invalid "maybe": expected on or off` + "\n"},
		{"canary 0", []string{"deploy", "--canary", "0"}, `berth: invalid --canary "0": a percentage above 0 and at most 100, e.g. --canary 10` + "\n"},
		{"canary and promote", []string{"deploy", "--canary", "10", "--promote"}, "berth: --canary and --promote exclude each other (usage: berth deploy [SERVICE...] [flags])\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := d.run(tc.args...)
			assert.Equal(t, 1, res.code)
			assert.Equal(t, tc.want, res.stderr)
		})
	}
}

func TestDeployCanaryAndPromoteFlags(t *testing.T) {
	d := newFakeDaemon(t)
	var got []api.DeployRequest
	d.handle("POST /v1/deploy", func(w http.ResponseWriter, r *http.Request) {
		var req api.DeployRequest
		require.NoError(t, json.NewDecoder(r.Body).Decode(&req))
		got = append(got, req)
		w.Header().Set("Content-Type", "application/x-ndjson")
		_ = json.NewEncoder(w).Encode(api.Message{Kind: api.KindResult, OK: true, Deployed: []api.Deploy{{Service: "web", Revision: 2}}})
	})
	dir := t.TempDir()
	file := filepath.Join(dir, "berth.yaml")
	require.NoError(t, os.WriteFile(file, []byte("app: shop\nservices:\n  web: {image: web:1, port: 8080}\n"), 0o644))
	res := d.run("deploy", "-f", file, "--canary", "12.5%")
	require.Zero(t, res.code, res.stderr)
	res = d.run("deploy", "-f", file, "--promote", "web")
	require.Zero(t, res.code, res.stderr)
	require.Len(t, got, 2)
	assert.Equal(t, 12.5, got[0].Canary)
	assert.False(t, got[0].Promote)
	assert.True(t, got[1].Promote)
	assert.Equal(t, []string{"web"}, got[1].Services)
}
