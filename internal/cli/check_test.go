package cli

import (
	"encoding/json"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const checkARN = "arn:aws:apprunner:eu-west-1:123456789012:service/shop-web/0123456789abcdef0123456789abcdef"

// checkIn writes spec as berth.yaml in a new directory and runs berth check
// there, as a user (or CI) runs it in the app's directory, with no daemon
// and no AWS reachable: check must need neither.
func checkIn(t *testing.T, spec string, args ...string) result {
	t.Helper()
	t.Chdir(filepath.Dir(writeSpec(t, spec)))
	t.Setenv("BERTH_HOST", "unix:///nonexistent/berth.sock")
	t.Setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:1")
	t.Setenv("AWS_ACCESS_KEY_ID", "")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "")
	return berth(t, append([]string{"check"}, args...)...)
}

// lineNo is the line of spec that contains s.
func lineNo(t *testing.T, spec, s string) string {
	t.Helper()
	for i, l := range strings.Split(spec, "\n") {
		if strings.Contains(l, s) {
			return strconv.Itoa(i + 1)
		}
	}
	t.Fatalf("no line with %q", s)
	return ""
}

const checkFits = `app: shop
environments:
  prod: {engine: aws}
services:
  web:
    image: web:1
    port: 8080
    apprunner: ` + checkARN + `
    cpu: 0.3
  api:
    image: api:1
    port: 9000
    sidecars:
      proxy: {image: envoy:1}
`

func TestCheckExitsZeroWhenAppRunnerServicesFit(t *testing.T) {
	r := checkIn(t, checkFits, "--env", "prod")
	require.Equal(t, 0, r.code, "stdout %s\nstderr %s", r.stdout, r.stderr)
	assert.Empty(t, r.stderr)
	assert.Equal(t, "berth.yaml:"+lineNo(t, checkFits, "cpu: 0.3")+": services.web.cpu: cpu 0.3 is not an App Runner size; App Runner would run it as 0.5 vCPU / 1 GB, the smallest size that holds it (nearest others: 0.25 vCPU / 1 GB, 1 vCPU / 2 GB) (note) — https://docs.aws.amazon.com/apprunner/latest/api/API_InstanceConfiguration.html\n"+
		"web: fits App Runner, 1 note\n", r.stdout)

	// --all asks the same of the services that are not on App Runner, and
	// their constraints do not fail the check.
	r = berth(t, "check", "--env", "prod", "--all")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, r.stdout, "berth.yaml:"+lineNo(t, checkFits, "sidecars:")+": services.api.sidecars: App Runner runs one container per instance, no sidecars")
	assert.Contains(t, r.stdout, "api: could not run on App Runner: 1 constraint (sidecars)\n")
}

func TestCheckExitsOneWhenAConstraintForcesFargate(t *testing.T) {
	spec := checkFits + `    timeout: 300s
tasks:
  migrate:
    service: web
    command: [/app, migrate]
`
	spec = strings.Replace(spec, "    cpu: 0.3\n", "    cpu: 0.3\n    sidecars:\n      log: {image: fluentbit:1}\n", 1)
	r := checkIn(t, spec, "--env", "prod", "web")
	require.Equal(t, 1, r.code, r.stdout)
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	require.Len(t, lines, 4, r.stdout)
	assert.True(t, strings.HasPrefix(lines[0], "berth.yaml:"+lineNo(t, spec, "cpu: 0.3")+": services.web.cpu: "), lines[0])
	assert.Equal(t, "berth.yaml:"+lineNo(t, spec, "sidecars:")+": services.web.sidecars: App Runner runs one container per instance, no sidecars; web has 1 (log); Fargate runs them in the same task (forces Fargate) — https://github.com/aws/apprunner-roadmap/issues/71", lines[1])
	assert.True(t, strings.HasPrefix(lines[2], "berth.yaml:"+lineNo(t, spec, "service: web")+": tasks.migrate.service: App Runner runs no one-off or scheduled tasks; task migrate runs on ECS cluster berth-shop"), lines[2])
	assert.Equal(t, "web: must move to Fargate: 1 constraint (sidecars), 2 notes", lines[3])
	assert.Equal(t, "berth: a constraint forces web off App Runner to Fargate\n", r.stderr)
	// api's timeout is not web's: only web was checked.
	assert.NotContains(t, r.stdout, "timeout")

	// --json: the same findings for a script, and the same exit code.
	r = berth(t, "check", "--env", "prod", "--json")
	require.Equal(t, 1, r.code)
	assert.Empty(t, r.stderr)
	var rep checkReport
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &rep), r.stdout)
	assert.False(t, rep.Fits)
	assert.Equal(t, "prod", rep.Env)
	require.Len(t, rep.Services, 1)
	s := rep.Services[0]
	assert.Equal(t, checkARN, s.AppRunner)
	assert.Equal(t, [2]int{1, 2}, [2]int{s.Constraints, s.Notes})
	require.Len(t, s.Findings, 3)
	assert.Equal(t, "services.web.sidecars", s.Findings[1].Key)
	assert.True(t, s.Findings[1].Constraint)
	assert.Equal(t, lineNo(t, spec, "sidecars:"), strconv.Itoa(s.Findings[1].Line))
	assert.Equal(t, "https://github.com/aws/apprunner-roadmap/issues/71", s.Findings[1].Source)
}

// What the spec cannot say is passed as an observation, and forces the
// move as a spec key would.
func TestCheckObserved(t *testing.T) {
	r := checkIn(t, checkFits, "--env", "prod", "--observed", "web=websockets")
	require.Equal(t, 1, r.code, r.stdout)
	assert.Contains(t, r.stdout, "berth.yaml:"+lineNo(t, checkFits, "web:")+": services.web: App Runner has no WebSockets; clients open WebSocket connections; Fargate behind an ALB serves it [observed: given with --observed] (forces Fargate) — https://github.com/aws/apprunner-roadmap/issues/13\n")
	assert.Contains(t, r.stdout, "web: must move to Fargate: 1 constraint (observed websockets)")
}

func TestCheckRefusals(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no environment", nil, "berth: check needs an environment of berth.yaml: pass --env ENV (or set BERTH_ENV)\n"},
		{"unknown environment", []string{"--env", "staging"}, `no environment "staging"; environments are: prod`},
		{"unknown service", []string{"--env", "prod", "wbe"}, `berth: no service "wbe" in berth.yaml; services are: web, api` + "\n"},
		{"unknown need", []string{"--env", "prod", "--observed", "web=ssh"}, `unknown need "ssh": use one of websockets`},
		{"need of an unchecked service", []string{"--env", "prod", "--observed", "api=exec"}, "api is not checked (it has no apprunner: in berth.yaml); name it, or pass --all"},
		{"malformed need", []string{"--env", "prod", "--observed", "websockets"}, "write SERVICE=NEED"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := checkIn(t, checkFits, tt.args...)
			assert.Equal(t, 1, r.code)
			assert.Contains(t, r.stderr, tt.want)
			assert.Equal(t, 1, strings.Count(r.stderr, "\n"), r.stderr)
		})
	}
}

func TestCheckWithoutAppRunnerServices(t *testing.T) {
	r := checkIn(t, "app: shop\nenvironments:\n  prod: {engine: aws}\nservices:\n  web:\n    image: web:1\n    port: 8080\n", "--env", "prod")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Equal(t, "no service of shop runs on App Runner (apprunner: in berth.yaml); berth check --env prod --all tells which could\n", r.stdout)
}
