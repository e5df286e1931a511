package controlplane_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berth-dev/berth/internal/api"
	"github.com/berth-dev/berth/internal/spec"
	"github.com/berth-dev/berth/internal/store"
	"github.com/berth-dev/berth/internal/testutil"
)

// refused deploys yaml, requires it to be refused, and returns the reason.
func (d *daemon) refused(yaml string) string {
	d.t.Helper()
	res, msgs, err := d.deploy(yaml)
	require.Error(d.t, err, "deploy was not refused; messages: %v", msgs)
	assert.False(d.t, res.OK)
	for _, m := range msgs {
		// Refused at admission: nothing was built, started or switched.
		assert.NotEqual(d.t, api.KindPhase, m.Kind, "a refused deploy reported a phase: %v", m)
	}
	return err.Error()
}

// requireNoApp checks that a refused first deploy left no trace of the app.
func (d *daemon) requireNoApp(app string) {
	d.t.Helper()
	_, err := d.client.Status(context.Background(), app)
	require.Error(d.t, err, "app %s exists after a refused deploy", app)
	assert.Contains(d.t, err.Error(), "no app named")
}

// TestHostOwnership: a host belongs to one route. An app cannot take
// another's address (SERVICE.APP.DOMAIN), its domains or its entrypoints'
// hosts; the refusal names the holder and changes nothing, and the holder
// goes on serving.
func TestHostOwnership(t *testing.T) {
	t.Parallel()
	d := startFakeDaemon(t, "")
	img := d.image()
	owner := testutil.UniqueName(t, "hown")
	squat := testutil.UniqueName(t, "hsq")
	// Names under the base domain (no app's: one label before it), which
	// the edge serves over plain HTTP without a redirect to HTTPS.
	domain := owner + "-d.localhost"
	epHost := owner + "-edge.localhost"

	ownerEdge := fmt.Sprintf("edge:\n  %s-e:\n    hosts: [%s]\n    origin: web\n", owner, epHost)
	d.mustDeploy(appSpec(owner, img, "    env: {VERSION: owner}\n    domains: ["+domain+"]\n") + ownerEdge)
	serves := func(host string) {
		t.Helper()
		code, body, err := d.hostGet(host, "/")
		require.NoError(t, err)
		assert.Equal(t, http.StatusOK, code, host)
		assert.Equal(t, "hello from owner", body, host)
	}
	serves("web." + owner + ".localhost")
	serves(domain)
	serves(epHost)

	tests := []struct {
		name, extra, want string
	}{
		{"the other app's address", "    domains: [web." + owner + ".localhost]\n",
			`berth.yaml:8: services.web.domains[0]: host "web.` + owner + `.localhost" is an address of app "` + owner + `": names under .` + owner + `.localhost belong to that app alone; pick a name outside them`},
		{"a name under the other app, not deployed", "    domains: [api." + owner + ".localhost]\n",
			`host "api.` + owner + `.localhost" is an address of app "` + owner + `"`},
		{"the other app's internal name", "    domains: [web." + owner + ".internal]\n",
			`host "web.` + owner + `.internal" is an address of app "` + owner + `"`},
		{"the other app's domain", "    domains: [x." + squat + ".localhost, " + domain + "]\n",
			`berth.yaml:8: services.web.domains[1]: host "` + domain + `" is already served by app "` + owner + `" service "web"; remove it there first`},
		{"the other app's entrypoint host", "    domains: [" + epHost + "]\n",
			`services.web.domains[0]: host "` + epHost + `" is already served by app "` + owner + `" entrypoint "` + owner + `-e"; remove it there first`},
		{"the other app's domain through edge:", "edge:\n  " + squat + "-e:\n    hosts: [" + domain + "]\n    origin: web\n",
			`berth.yaml:10: edge.` + squat + `-e.hosts[0]: host "` + domain + `" is already served by app "` + owner + `" service "web"; remove it there first`},
		{"the other app's address through edge:", "edge:\n  " + squat + "-e:\n    hosts: [web." + owner + ".localhost]\n    origin: web\n",
			`edge.` + squat + `-e.hosts[0]: host "web.` + owner + `.localhost" is an address of app "` + owner + `"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msg := d.refused(appSpec(squat, img, "    env: {VERSION: squatter}\n") + tt.extra)
			assert.Contains(t, msg, tt.want)
			assert.NotContains(t, msg, "\n")
			d.requireNoApp(squat)
			serves("web." + owner + ".localhost")
			serves(domain)
			serves(epHost)
		})
	}

	// Within an app too, a domain cannot be another service's address.
	msg := d.refused(appSpec(squat, img, "    domains: [api."+squat+".localhost]\n") +
		"  api:\n    image: " + img + "\n    port: 8080\n")
	assert.Contains(t, msg, `berth.yaml:7: services.web.domains[0]: host "api.`+squat+`.localhost" is also claimed by app "`+squat+`" service "api" in this spec; a host belongs to one route`)
	d.requireNoApp(squat)

	// Deployed, the other app cannot take a host either, and keeps its own.
	d.mustDeploy(appSpec(squat, img, "    env: {VERSION: squatter}\n"))
	msg = d.refused(appSpec(squat, img, "    env: {VERSION: squatter2}\n    domains: ["+domain+"]\n"))
	assert.Contains(t, msg, `is already served by app "`+owner+`" service "web"`)
	serves(domain)
	code, body, err := d.hostGet("web."+squat+".localhost", "/")
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, code)
	assert.Equal(t, "hello from squatter", body, "the refused deploy changed nothing")
	revs, err := d.client.Revisions(context.Background(), squat, "web")
	require.NoError(t, err)
	assert.Len(t, revs, 1, "a refused deploy records no revision")

	// The owner lets go of its domain; then the other app may take it.
	d.mustDeploy(appSpec(owner, img, "    env: {VERSION: owner}\n") + ownerEdge)
	d.mustDeploy(appSpec(squat, img, "    env: {VERSION: squatter}\n    domains: ["+domain+"]\n"))
	code, body, err = d.hostGet(domain, "/")
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, code)
	assert.Equal(t, "hello from squatter", body)

	// Rolling the owner back to the revision that listed the domain would
	// take it back: refused as well.
	_, err = d.client.Rollback(context.Background(), owner, "web", api.RollbackRequest{}, nil)
	require.Error(t, err)
	assert.Equal(t, `revision 1 of web: services.web.domains[0]: host "`+domain+`" is already served by app "`+squat+`" service "web"; remove it there first; deploy a new revision instead`, err.Error())
	_, body, err = d.hostGet(domain, "/")
	require.NoError(t, err)
	assert.Equal(t, "hello from squatter", body)

	// Status shows each host with the service or entrypoint that holds it.
	st, err := d.client.Status(context.Background(), "")
	require.NoError(t, err)
	hosts := map[string]string{}
	for _, a := range st.Apps {
		for _, s := range a.Services {
			for _, h := range s.Hosts {
				hosts[h] = a.Name + "/" + s.Name
			}
		}
		for _, ep := range a.Entrypoints {
			for _, h := range ep.Hosts {
				hosts[h] = a.Name + " entrypoint " + ep.Name
			}
		}
	}
	assert.Equal(t, squat+"/web", hosts[domain])
	assert.Equal(t, owner+"/web", hosts["web."+owner+".localhost"])
	assert.Equal(t, squat+"/web", hosts["web."+squat+".localhost"])
	assert.Equal(t, owner+" entrypoint "+owner+"-e", hosts[epHost])
}

// TestHostClaimsRace: two apps deployed at once claiming one host: exactly
// one deploy wins, the other is refused naming it, and the host serves the
// winner.
func TestHostClaimsRace(t *testing.T) {
	t.Parallel()
	d := startFakeDaemon(t, "")
	img := d.image()
	apps := []string{testutil.UniqueName(t, "hra"), testutil.UniqueName(t, "hrb")}
	host := apps[0] + "-race.localhost"
	for round := range 3 {
		var (
			wg    sync.WaitGroup
			start = make(chan struct{})
			errs  = make([]error, len(apps))
		)
		for i, a := range apps {
			wg.Go(func() {
				<-start
				ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
				defer cancel()
				_, errs[i] = d.client.Deploy(ctx, api.DeployRequest{File: "berth.yaml", BaseDir: d.dataDir,
					YAML: appSpec(a, img, fmt.Sprintf("    env: {VERSION: %s}\n    domains: [%s]\n", a, host))}, nil)
			})
		}
		close(start)
		wg.Wait()
		var winner string
		for i, err := range errs {
			if err == nil {
				require.Empty(t, winner, "round %d: both deploys claimed %s", round, host)
				winner = apps[i]
			} else {
				assert.Contains(t, err.Error(), `host "`+host+`" is already served by app "`)
			}
		}
		require.NotEmpty(t, winner, "round %d: neither deploy won: %v", round, errs)
		code, body, err := d.hostGet(host, "/")
		require.NoError(t, err)
		assert.Equal(t, http.StatusOK, code)
		assert.Equal(t, "hello from "+winner, body)
		// Free the host for the next round.
		for _, a := range apps {
			_, _ = d.client.Destroy(context.Background(), a, nil)
		}
	}
}

// TestDeployRefusals: what a deploy would report as done though it could
// not be (a paused service, a secret never set, a memory limit the machine
// does not have) is refused before anything starts, saying what to do.
func TestDeployRefusals(t *testing.T) {
	t.Parallel()
	d := startFakeDaemon(t, "")
	img := d.image()
	ctx := context.Background()

	t.Run("paused", func(t *testing.T) {
		app := testutil.UniqueName(t, "rpau")
		d.mustDeploy(appSpec(app, img, "    env: {VERSION: v1}\n"))
		_, err := d.client.Pause(ctx, app, "web")
		require.NoError(t, err)
		msg := d.refused(appSpec(app, img, "    env: {VERSION: v2}\n"))
		assert.Contains(t, msg, "web is paused: run `berth resume web` first")
		st := d.status(app)
		assert.Equal(t, "paused", st.State)
		assert.Equal(t, 1, st.Revision)
		revs, err := d.client.Revisions(ctx, app, "web")
		require.NoError(t, err)
		assert.Len(t, revs, 1)
		// Resumed, it deploys.
		_, err = d.client.Resume(ctx, app, "web", nil)
		require.NoError(t, err)
		d.mustDeploy(appSpec(app, img, "    env: {VERSION: v2}\n"))
		_, body, err := d.get(app, "web", "/")
		require.NoError(t, err)
		assert.Equal(t, "hello from v2", strings.TrimSpace(body))
	})

	t.Run("secret never set", func(t *testing.T) {
		app := testutil.UniqueName(t, "rsec")
		yaml := appSpec(app, img, "    env: {VERSION: v1}\n    secrets: [API_KEY, DB_URL]\n") +
			"tasks:\n  show:\n    service: web\n    command: [\"sh\", \"-c\", \"echo $API_KEY\"]\n"
		msg := d.refused(yaml)
		assert.Equal(t, "berth.yaml:8: services.web.secrets[0]: secrets API_KEY, DB_URL are listed but never set: run `berth secret set web API_KEY=... DB_URL=...` first", msg)
		d.requireNoApp(app)

		_, err := d.client.SecretSet(ctx, app, "web", map[string]string{"API_KEY": "a\x00b"})
		require.Error(t, err)
		assert.Contains(t, err.Error(), "secret API_KEY contains a NUL byte")
		_, err = d.client.SecretSet(ctx, app, "web", map[string]string{"API_KEY": "k"})
		require.NoError(t, err)
		msg = d.refused(yaml)
		assert.Contains(t, msg, "services.web.secrets[1]: secret DB_URL is listed but never set: run `berth secret set web DB_URL=...` first")

		_, err = d.client.SecretSet(ctx, app, "web", map[string]string{"DB_URL": "postgres://db"})
		require.NoError(t, err)
		d.mustDeploy(yaml)

		// A task's command, sent over the API, cannot hold a NUL either.
		_, err = d.client.RunTask(ctx, app, api.TaskRunRequest{Command: []string{"echo", "a\x00b"}}, nil)
		require.Error(t, err)
		assert.Contains(t, err.Error(), "command argument 2 contains a NUL byte")

		// A task of the service needs them too.
		require.NoError(t, d.client.SecretDelete(ctx, app, "web", "API_KEY"))
		_, err = d.client.RunTask(ctx, app, api.TaskRunRequest{Name: "show"}, nil)
		require.Error(t, err)
		assert.Contains(t, err.Error(), "secret API_KEY is listed but never set: run `berth secret set web API_KEY=...` first")
	})

	t.Run("memory above the machine's", func(t *testing.T) {
		app := testutil.UniqueName(t, "rmem")
		msg := d.refused(appSpec(app, img, "    memory: 99999TiB\n"))
		assert.Regexp(t, `^berth.yaml:7: services.web.memory: 99999TiB is more than this machine's [0-9.]+[KMGT]iB$`, msg)
		d.requireNoApp(app)
	})
}

// TestHostCollisionFromOlderState: a state kept from before hosts had one
// owner (two services listing one domain) resolves to the app deployed
// first, not to the one whose name sorts first.
func TestHostCollisionFromOlderState(t *testing.T) {
	t.Parallel()
	d := startFakeDaemon(t, "")
	img := d.image()
	owner := testutil.UniqueName(t, "hlz") // sorts after the squatter
	squat := testutil.UniqueName(t, "hla")
	domain := owner + "-d.localhost"
	d.mustDeploy(appSpec(owner, img, "    env: {VERSION: owner}\n    domains: ["+domain+"]\n"))
	d.mustDeploy(appSpec(squat, img, "    env: {VERSION: squatter}\n"))

	// As an older berth let it: the squatter's serving revision lists the
	// owner's domain too.
	d.stop()
	st, err := store.Open(d.dataDir)
	require.NoError(t, err)
	ctx := context.Background()
	rev, err := st.GetRevision(ctx, squat, "web", 1)
	require.NoError(t, err)
	var sv spec.Service
	require.NoError(t, json.Unmarshal(rev.Spec, &sv))
	sv.Domains = []string{domain}
	rev.Spec, err = json.Marshal(sv)
	require.NoError(t, err)
	require.NoError(t, st.PutRevision(ctx, rev))
	require.NoError(t, st.Close())

	d2 := d.again()
	eventually(t, 20*time.Second, "both apps serve again", func() bool {
		c1, _, _ := d2.hostGet("web."+owner+".localhost", "/")
		c2, _, _ := d2.hostGet("web."+squat+".localhost", "/")
		return c1 == http.StatusOK && c2 == http.StatusOK
	})
	code, body, err := d2.hostGet(domain, "/")
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, code)
	assert.Equal(t, "hello from owner", body, "the app deployed first keeps its domain")
	assert.Contains(t, d2.logs.String(), "host claimed by two routes")
}
