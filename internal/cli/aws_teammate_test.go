package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berth-dev/berth/internal/api"
	"github.com/berth-dev/berth/internal/aws/awstest"
	"github.com/berth-dev/berth/internal/testutil"
)

// machine is a teammate's computer: a home of its own and a working copy
// of the app's berth.yaml, and no berth state at all.
type machine struct {
	t    *testing.T
	home string
	dir  string
}

func newMachine(t *testing.T, yaml string) *machine {
	t.Helper()
	m := &machine{t: t, home: t.TempDir(), dir: t.TempDir()}
	require.NoError(t, os.WriteFile(filepath.Join(m.dir, "berth.yaml"), []byte(yaml), 0o600))
	return m
}

// run runs berth on the machine, in its working copy, against prod.
func (m *machine) run(args ...string) result {
	m.t.Helper()
	m.t.Setenv("HOME", m.home)
	m.t.Chdir(m.dir)
	return berth(m.t, append([]string{"--env", "prod"}, args...)...)
}

func (m *machine) json(v any, args ...string) {
	m.t.Helper()
	r := m.run(append([]string{"--json"}, args...)...)
	require.Equal(m.t, 0, r.code, "%v: %s%s", args, r.stdout, r.stderr)
	require.NoError(m.t, json.Unmarshal([]byte(r.stdout), v), r.stdout)
}

const teammateYAML = `app: APP
environments:
  prod:
    engine: aws
services:
  web:
    image: IMAGE
    port: 8080
    health:
      path: /health
      interval: 5s
`

// A teammate on another machine, with the same credentials and nothing
// of berth's on disk, sees what the first deployed (status, revisions)
// and rolls it back; the first then sees the rollback.
func TestTeammateOnAWS(t *testing.T) {
	p := awstest.UseProxy(t)
	awstest.SimulateECS(t, p)
	t.Setenv("BERTH_HOST", "unix:///nonexistent/berth.sock")
	yaml := strings.NewReplacer("APP", testutil.UniqueName(t, "c"), "IMAGE", testutil.TestAppImage(t)).Replace(teammateYAML)
	alice, bob := newMachine(t, yaml), newMachine(t, yaml)

	for range 2 {
		r := alice.run("deploy")
		require.Equal(t, 0, r.code, r.stdout+r.stderr)
	}
	var aliceSt, bobSt api.Status
	alice.json(&aliceSt, "status")
	bob.json(&bobSt, "status")
	require.Len(t, bobSt.Apps, 1)
	assert.Equal(t, summary(aliceSt), summary(bobSt))
	assert.Equal(t, "web r2 running", summary(bobSt))
	var aliceRevs, bobRevs []api.Revision
	alice.json(&aliceRevs, "revisions", "web")
	bob.json(&bobRevs, "revisions", "web")
	assert.Equal(t, aliceRevs, bobRevs)
	r := bob.run("revisions", "web")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, r.stdout, "active")
	assert.Contains(t, r.stdout, "previous")

	r = bob.run("rollback", "web")
	require.Equal(t, 0, r.code, r.stdout+r.stderr)
	assert.Contains(t, r.stdout, "revision 1")
	alice.json(&aliceSt, "status")
	assert.Equal(t, "web r1 running", summary(aliceSt))
	alice.json(&aliceRevs, "revisions", "web")
	states := map[int]string{}
	for _, rv := range aliceRevs {
		states[rv.Number] = rv.Status
	}
	assert.Equal(t, map[int]string{1: "active", 2: "previous"}, states)
}

func summary(st api.Status) string {
	var out []string
	for _, a := range st.Apps {
		for _, s := range a.Services {
			out = append(out, s.Name+" r"+itoa(s.Revision)+" "+s.State)
		}
	}
	return strings.Join(out, ", ")
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

// Two deploys of one app at once from two berths: one deploys, the other
// fails at once with exit code 1 naming who holds the lock, and nothing of
// it is applied. With --lock-wait the second waits its turn and deploys
// after the first.
func TestConcurrentDeploysOnAWS(t *testing.T) {
	p := awstest.UseProxy(t)
	awstest.SimulateECS(t, p)
	t.Setenv("BERTH_HOST", "unix:///nonexistent/berth.sock")
	t.Setenv("HOME", t.TempDir())
	yaml := strings.NewReplacer("APP", testutil.UniqueName(t, "c"), "IMAGE", testutil.TestAppImage(t)).Replace(teammateYAML)
	files := []string{writeSpec(t, yaml), writeSpec(t, yaml)}
	host, err := os.Hostname()
	require.NoError(t, err)

	both := func(extra ...string) [2]result {
		var out [2]result
		var wg sync.WaitGroup
		for i := range out {
			wg.Go(func() {
				out[i] = berth(t, append([]string{"--env", "prod", "deploy", "-f", files[i]}, extra...)...)
			})
		}
		wg.Wait()
		return out
	}
	rs := both()
	ok, busy := rs[0], rs[1]
	if ok.code != 0 {
		ok, busy = busy, ok
	}
	require.Equal(t, 0, ok.code, ok.stdout+ok.stderr)
	require.Equal(t, 1, busy.code, "the second deploy: %s%s", busy.stdout, busy.stderr)
	assert.Regexp(t, `^berth: app \S+ \(prod\) is locked by \S+@`+host+` \(deploy, since .*\); wait for it, or run with --lock-wait 5m\n$`, busy.stderr)
	var revs []api.Revision
	r := berth(t, "--env", "prod", "--json", "revisions", "web", "-f", files[0])
	require.Equal(t, 0, r.code, r.stderr)
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &revs))
	assert.Len(t, revs, 1, "the refused deploy recorded a revision")

	rs = both("--lock-wait", "2m")
	for i, r := range rs {
		require.Equal(t, 0, r.code, "deploy %d with --lock-wait: %s%s", i, r.stdout, r.stderr)
	}
	r = berth(t, "--env", "prod", "--json", "revisions", "web", "-f", files[1])
	require.Equal(t, 0, r.code, r.stderr)
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &revs))
	states := map[int]string{}
	for _, rv := range revs {
		states[rv.Number] = rv.Status
	}
	assert.Equal(t, map[int]string{1: "retired", 2: "previous", 3: "active"}, states)
}
