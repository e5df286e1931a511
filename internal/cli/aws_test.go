package cli

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-dev/berth/internal/api"
	"github.com/berth-dev/berth/internal/aws/awstest"
	"github.com/berth-dev/berth/internal/testutil"
)

// The same verbs on an AWS environment (moto behind the test proxy, ECS's
// missing behaviour simulated): plan, secret set, deploy, status,
// revisions, task run with its exit code, logs, rollback, destroy, each
// as a user types it, with no berth server running.
func TestVerbsOnAWS(t *testing.T) {
	p := awstest.UseProxy(t)
	sim := awstest.SimulateECS(t, p)
	t.Setenv("BERTH_HOST", "unix:///nonexistent/berth.sock") // no daemon: a verb that needed one would fail
	app := testutil.UniqueName(t, "c")
	file := (writeSpec(t, `app: `+app+`
environments:
  prod:
    engine: aws
services:
  web:
    image: `+testutil.TestAppImage(t)+`
    port: 8080
    secrets: [DATABASE_URL]
    health:
      path: /health
      interval: 5s
tasks:
  migrate:
    service: web
    command: [/testapp, migrate]
`))
	t.Chdir(filepath.Dir(file)) // as a user runs berth in the app's directory
	run := func(args ...string) result {
		t.Helper()
		return berth(t, append([]string{"--env", "prod"}, args...)...)
	}

	// Without the secret the deploy is refused before anything changes,
	// naming the command that sets it.
	r := run("deploy")
	if r.code != 1 || !strings.Contains(r.stderr, "berth secret set --env prod web DATABASE_URL=") {
		t.Fatalf("deploy without its secret: code %d, stderr %q", r.code, r.stderr)
	}
	if r := run("plan"); r.code != 1 || !strings.Contains(r.stderr, "DATABASE_URL") {
		t.Fatalf("plan without the secret: %d %q", r.code, r.stderr)
	}
	if r := run("secret", "set", "web", "DATABASE_URL=postgres://u:hunter2@db/shop"); r.code != 0 || strings.Contains(r.stdout+r.stderr, "hunter2") {
		t.Fatalf("secret set: %d %q %q", r.code, r.stdout, r.stderr)
	}
	r = run("plan")
	if r.code != 0 || !strings.Contains(r.stdout, "create  load balancer") || !strings.Contains(r.stdout, "task definition web revision 1") {
		t.Fatalf("plan: %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r := run("deploy"); r.code != 0 || !strings.Contains(r.stdout, "revision 1 serves") {
		t.Fatalf("deploy: %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	r = run("deploy")
	t.Logf("berth deploy --env prod:\n%s", r.stdout)
	if r.code != 0 {
		t.Fatalf("second deploy: %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	r = run("--json", "status")
	var st api.Status
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &st) != nil || len(st.Apps) != 1 || st.Apps[0].Services[0].Revision != 2 || st.Apps[0].Services[0].State != "running" {
		t.Fatalf("status --json: %d %q %q", r.code, r.stdout, r.stderr)
	}
	r = run("revisions", "web")
	if r.code != 0 || !strings.Contains(r.stdout, "active") || !strings.Contains(r.stdout, "previous") {
		t.Fatalf("revisions: %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	sim.OnRun(func(cmd []string) (int, []string) { return 5, []string{"migrating " + strings.Join(cmd[1:], " ")} })
	r = run("task", "run", "migrate")
	if r.code != 5 || !strings.Contains(r.stdout, "migrating migrate") {
		t.Fatalf("task run: exit %d (want the task's 5)\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r := run("task", "ls"); r.code != 0 || !strings.Contains(r.stdout, "migrate") {
		t.Fatalf("task ls: %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r := run("logs", "web"); r.code != 0 || !strings.Contains(r.stdout, "migrating migrate") {
		t.Fatalf("logs: %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	r = run("rollback", "web")
	t.Logf("berth rollback --env prod web:\n%s", r.stdout)
	if r.code != 0 {
		t.Fatalf("rollback: %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	r = run("--json", "status")
	if json.Unmarshal([]byte(r.stdout), &st) != nil || st.Apps[0].Services[0].Revision != 1 {
		t.Fatalf("status after rollback: %q", r.stdout)
	}
	if r := run("events"); r.code != 0 || !strings.Contains(r.stdout, "rollback") {
		t.Fatalf("events: %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r := run("destroy"); r.code != 0 {
		t.Fatalf("destroy: %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	r = run("--json", "status")
	if json.Unmarshal([]byte(r.stdout), &st) != nil || len(st.Apps) != 0 {
		t.Fatalf("status after destroy: %q %q", r.stdout, r.stderr)
	}
}
