package cli

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berth-dev/berth/internal/api"
)

func TestScale(t *testing.T) {
	t.Parallel()
	d := newFakeDaemon(t)
	d.handle("POST /v1/apps/{app}/scale", func(w http.ResponseWriter, r *http.Request) {
		var req api.ScaleRequest
		require.NoError(t, json.NewDecoder(r.Body).Decode(&req))
		assert.Equal(t, "shop", r.PathValue("app"))
		assert.Equal(t, map[string]int{"web": 3, "worker": 0}, req.Counts)
		writeJSON(w, http.StatusOK, api.Status{Apps: []api.AppStatus{{Name: "shop", Services: []api.ServiceStatus{
			{Name: "web", State: "running", Revision: 3, Desired: 3, Running: 2},
			{Name: "worker", State: "stopped", Revision: 1},
			{Name: "api", State: "running", Revision: 1, Desired: 1, Running: 1},
		}}}})
	})

	res := d.run("scale", "web=3", "worker=0", "--app", "shop")
	require.Equal(t, 0, res.code, res.stderr)
	assert.Equal(t, `APP   SERVICE  STATE    REV  INSTANCES  URL
shop  web      running  3    2/3        -
shop  worker   stopped  1    0/0        -
`, res.stdout)

	for _, bad := range []string{"web", "web=", "=3", "web=-1", "web=two"} {
		t.Run(bad, func(t *testing.T) {
			res := d.run("scale", bad, "--app", "shop")
			assert.Equal(t, 1, res.code)
			assert.Equal(t, "berth: invalid \""+bad+"\": expected SERVICE=N with N a number of instances (0 or more)\n", res.stderr)
		})
	}
	res = d.run("scale", "web=1", "web=2", "--app", "shop", "--json")
	assert.Equal(t, 1, res.code)
	assert.JSONEq(t, `{"error":"web is scaled twice","code":"invalid"}`, res.stdout)
}

func TestSecrets(t *testing.T) {
	t.Parallel()
	d := newFakeDaemon(t)
	d.handle("PUT /v1/apps/shop/services/web/secrets", func(w http.ResponseWriter, r *http.Request) {
		var req api.SecretSetRequest
		require.NoError(t, json.NewDecoder(r.Body).Decode(&req))
		assert.Equal(t, map[string]string{"DATABASE_URL": "postgres://u:hunter2@db/shop", "EMPTY": ""}, req.Values)
		writeJSON(w, http.StatusOK, []api.SecretKey{{Key: "DATABASE_URL"}, {Key: "EMPTY"}})
	})
	d.handle("GET /v1/apps/shop/services/web/secrets", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, []api.SecretKey{{Key: "DATABASE_URL"}})
	})
	d.handle("DELETE /v1/apps/shop/services/web/secrets/{key}", func(w http.ResponseWriter, r *http.Request) {
		if r.PathValue("key") != "DATABASE_URL" {
			writeJSON(w, http.StatusNotFound, api.Error{Message: `web has no secret "` + r.PathValue("key") + `"`, Code: "not_found"})
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})

	res := d.run("secret", "set", "web", "DATABASE_URL=postgres://u:hunter2@db/shop", "EMPTY=", "--app", "shop")
	require.Equal(t, 0, res.code, res.stderr)
	assert.Equal(t, "set DATABASE_URL, EMPTY for shop/web (applied on the next deploy)\n", res.stdout)

	res = d.run("secret", "ls", "web", "--app", "shop")
	require.Equal(t, 0, res.code, res.stderr)
	assert.True(t, strings.HasPrefix(res.stdout, "KEY           UPDATED\nDATABASE_URL  "), res.stdout)

	res = d.run("secret", "rm", "web", "DATABASE_URL", "--app", "shop")
	require.Equal(t, 0, res.code, res.stderr)
	assert.Equal(t, "removed DATABASE_URL from shop/web (applied on the next deploy)\n", res.stdout)

	res = d.run("secret", "rm", "web", "OTHER", "--app", "shop")
	assert.Equal(t, 1, res.code)
	assert.Equal(t, "berth: web has no secret \"OTHER\"\n", res.stderr)

	tests := []struct {
		name string
		args []string
		want string
	}{
		{"bad name", []string{"1DB=hunter2"}, `invalid secret name "1DB": use letters, digits and _, not starting with a digit`},
		{"dash in name", []string{"DB-URL=hunter2"}, `invalid secret name "DB-URL": use letters, digits and _, not starting with a digit`},
		{"no value", []string{"DB"}, "secret DB has no value: expected KEY=VALUE"},
		{"value without key", []string{"hunter2!"}, "argument 2 is not KEY=VALUE"},
		{"twice", []string{"DB=hunter2", "DB=hunter2"}, "secret DB is given twice"},
		{"none", nil, `missing KEY=VALUE (usage: berth secret set SERVICE KEY=VALUE... [flags])`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := d.run(append([]string{"secret", "set", "web", "--app", "shop"}, tt.args...)...)
			assert.Equal(t, 1, res.code)
			assert.Equal(t, "berth: "+tt.want+"\n", res.stderr)
			assert.NotContains(t, res.stdout+res.stderr, "hunter2", "a secret value was echoed")
		})
	}
}

func TestLogs(t *testing.T) {
	t.Parallel()
	d := newFakeDaemon(t)
	d.handle("GET /v1/status", func(w http.ResponseWriter, r *http.Request) {
		assert.Equal(t, "shop", r.URL.Query().Get("app"))
		writeJSON(w, http.StatusOK, api.Status{Apps: []api.AppStatus{{Name: "shop", Services: []api.ServiceStatus{
			{Name: "web", Revision: 3, Instances: []api.InstanceStatus{{ID: "web-1", Revision: 3}, {ID: "web-12", Revision: 3}}},
			{Name: "api", Revision: 1, Instances: []api.InstanceStatus{{ID: "api-1", Revision: 1}}},
		}}}})
	})
	d.handle("GET /v1/apps/shop/services/{svc}/logs", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if r.PathValue("svc") == "web" && q.Get("instance") == "" {
			assert.Equal(t, "since=10m&tail=50", r.URL.RawQuery)
		}
		src := q.Get("instance")
		for i, text := range []string{"GET /", "GET /healthz"} {
			if src == "" {
				src = []string{r.PathValue("svc") + "-1", r.PathValue("svc") + "-12"}[i%2]
				if r.PathValue("svc") == "api" {
					src = "api-1"
				}
			}
			send(w, api.Message{Kind: api.KindLog, Source: src, Stream: "stdout", Text: text})
			src = q.Get("instance")
		}
	})

	res := d.run("logs", "web", "--app", "shop", "--since", "10m", "--tail", "50")
	require.Equal(t, 0, res.code, res.stderr)
	assert.Equal(t, "web-1  | GET /\nweb-12 | GET /healthz\n", res.stdout)

	res = d.run("logs", "web", "--app", "shop", "--instance", "web-12")
	require.Equal(t, 0, res.code, res.stderr)
	assert.Equal(t, "GET /\nGET /healthz\n", res.stdout)

	res = d.run("logs", "api", "--app", "shop")
	require.Equal(t, 0, res.code, res.stderr)
	assert.Equal(t, "GET /\nGET /healthz\n", res.stdout)

	res = d.run("logs", "api", "--app", "shop", "--json")
	require.Equal(t, 0, res.code, res.stderr)
	msgs := decodeNDJSON(t, res.stdout)
	require.Len(t, msgs, 2)
	assert.Equal(t, "api-1", msgs[0].Source)

	for _, args := range [][]string{{"--since", "yesterday"}, {"--since", "-5m"}, {"--tail", "0"}} {
		res := d.run(append([]string{"logs", "web", "--app", "shop"}, args...)...)
		assert.Equal(t, 1, res.code, args)
		assert.Contains(t, res.stderr, "berth: invalid "+args[0])
	}
}

func TestRollbackPauseResumeEvents(t *testing.T) {
	t.Parallel()
	d := newFakeDaemon(t)
	d.handle("POST /v1/apps/shop/services/web/rollback", func(w http.ResponseWriter, r *http.Request) {
		var req api.RollbackRequest
		require.NoError(t, json.NewDecoder(r.Body).Decode(&req))
		assert.Equal(t, 2, req.To)
		send(w, api.Message{Kind: api.KindPhase, Phase: "switch", Text: "web: all traffic on revision 2"})
		send(w, api.Message{Kind: api.KindResult, OK: true, Deployed: []api.Deploy{{Service: "web", Revision: 2, URLs: []string{"http://web.shop.localhost:8080"}}}})
	})
	d.handle("POST /v1/apps/shop/services/web/pause", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, api.ServiceStatus{App: "shop", Name: "web", State: "paused", Revision: 2})
	})
	d.handle("POST /v1/apps/shop/services/web/resume", func(w http.ResponseWriter, r *http.Request) {
		send(w, api.Message{Kind: api.KindPhase, Phase: "done", Text: "web: resumed with 2 instance(s)"})
		send(w, api.Message{Kind: api.KindResult, OK: true})
	})
	d.handle("GET /v1/events", func(w http.ResponseWriter, r *http.Request) {
		assert.Equal(t, "app=shop", r.URL.RawQuery)
		send(w, api.Message{Kind: api.KindEvent, Event: &api.Event{ID: 1, App: "shop", Service: "web", Kind: "pause", Message: "paused"}})
	})

	res := d.run("rollback", "web", "--to", "2", "--app", "shop")
	require.Equal(t, 0, res.code, res.stderr)
	assert.Equal(t, "==> switch   web: all traffic on revision 2\nweb  revision 2  http://web.shop.localhost:8080\n", res.stdout)

	res = d.run("pause", "web", "--app", "shop")
	require.Equal(t, 0, res.code, res.stderr)
	assert.Equal(t, "paused shop/web: \"berth resume web\" starts revision 2 again\n", res.stdout)

	res = d.run("pause", "web", "--app", "shop", "--json")
	require.Equal(t, 0, res.code, res.stderr)
	assert.JSONEq(t, `{"app":"shop","name":"web","state":"paused","revision":2,"image":"","desired":0,"running":0,"instances":null}`, res.stdout)

	res = d.run("resume", "web", "--app", "shop")
	require.Equal(t, 0, res.code, res.stderr)
	assert.Equal(t, "==> done     web: resumed with 2 instance(s)\nresumed shop/web\n", res.stdout)

	res = d.run("events", "--app", "shop")
	require.Equal(t, 0, res.code, res.stderr)
	assert.Contains(t, res.stdout, "  shop/web  pause: paused\n")
}

func TestDaemonNotRunning(t *testing.T) {
	t.Parallel()
	host := "unix:///nonexistent-berth-dir/berth.sock"
	want := `berth: cannot reach the berth daemon at ` + host + `: is it running? Start it with "berth server"` + "\n"
	for _, args := range [][]string{
		{"status"},
		{"revisions", "web"},
		{"logs", "web", "--app", "shop"},
		{"events", "-f"},
	} {
		t.Run(args[0], func(t *testing.T) {
			res := berth(t, append([]string{"--host", host}, args...)...)
			assert.Equal(t, 1, res.code)
			assert.Equal(t, want, res.stderr)
			assert.Empty(t, res.stdout)
		})
	}
	res := berth(t, "--host", host, "status", "--json")
	assert.Equal(t, 1, res.code)
	var e api.Error
	require.NoError(t, json.Unmarshal([]byte(res.stdout), &e))
	assert.Equal(t, "unreachable", e.Code)
	assert.Equal(t, want, "berth: "+e.Message+"\n")
}

func TestUsageErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"dploy"}, `unknown command "dploy" (did you mean "deploy"?): see "berth --help"`},
		{[]string{"revisions"}, "missing SERVICE (usage: berth revisions SERVICE [flags])"},
		{[]string{"rollback", "web", "api"}, `unexpected argument "api" (usage: berth rollback SERVICE [flags])`},
		{[]string{"status", "--bogus"}, `unknown flag: --bogus: see "berth status --help"`},
		{[]string{"scale"}, "missing SERVICE=N (usage: berth scale SERVICE=N... [flags])"},
		{[]string{"secret", "rm", "web"}, "missing KEY (usage: berth secret rm SERVICE KEY [flags])"},
		{[]string{"--host", "localhost:1", "status"}, `invalid host "localhost:1": expected unix:///path/berth.sock or tcp://HOST:PORT`},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			res := berth(t, tt.args...)
			assert.Equal(t, 1, res.code)
			assert.Equal(t, "berth: "+tt.want+"\n", res.stderr)
		})
	}

	res := berth(t)
	assert.Equal(t, 0, res.code)
	assert.Contains(t, res.stdout, "Available Commands:")
}
