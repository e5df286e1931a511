package apprunnercheck

import (
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berth-dev/berth/internal/spec"
)

const arn = "arn:aws:apprunner:eu-west-1:123456789012:service/shop-web/0123456789abcdef0123456789abcdef"

// parse parses a berth.yaml for a test, failing it on an invalid spec.
func parse(t testing.TB, yaml string) *spec.Spec {
	t.Helper()
	sp, err := spec.Parse("berth.yaml", []byte(yaml))
	require.NoError(t, err)
	return sp
}

// lineOf is the 1-based line of the first line of yaml that contains s:
// where the user wrote the key a finding must point at.
func lineOf(t testing.TB, yaml, s string) int {
	t.Helper()
	for i, l := range strings.Split(yaml, "\n") {
		if strings.Contains(l, s) {
			return i + 1
		}
	}
	t.Fatalf("no line with %q", s)
	return 0
}

// everything is a spec whose App Runner service asks for nearly everything
// App Runner lacks.
const everything = `app: shop
environments:
  prod:
    engine: aws
    cluster: ops
services:
  web:
    image: web:1
    port: 8080
    apprunner: ` + arn + `
    platform: linux/arm64
    cpu: 8
    timeout: 300s
    sticky: true
    slow_start: 10s
    drain: 30s
    pids: 256
    max_concurrency: 50
    scale: {min: 0, max: 40, concurrency: 300}
    health:
      path: /health
      interval: 30s
      timeout: 25s
      unhealthy: 30
    env:
      API_URL: http://api:9000/v1
    routes:
      - {path: /api, service: api}
    sidecars:
      proxy:
        image: envoy:1
    release: [/app, migrate]
  api:
    image: api:1
    port: 9000
    env:
      WEB_HOOK: http://web.shop.internal/hook
      ROLE: web
  worker:
    image: worker:1
    apprunner: ` + arn + `
tasks:
  migrate:
    service: web
    command: [/app, migrate]
`

func TestCheckFindsEveryKeyAppRunnerCannotServe(t *testing.T) {
	sp := parse(t, everything)
	got := Check(sp, "prod")
	byKey := map[string]Finding{}
	for _, f := range got {
		_, dup := byKey[f.Key]
		assert.False(t, dup, "two findings for %s", f.Key)
		byKey[f.Key] = f
	}
	tests := []struct {
		key        string
		service    string
		line       string // the text of the line the finding points at
		constraint bool
		limit      LimitID
		says       string
	}{
		{"services.web.platform", "web", "platform: linux/arm64", true, LimitArchitecture, "linux/amd64 images only"},
		{"services.web.cpu", "web", "cpu: 8", true, LimitInstanceSizes, "largest instance is 4 vCPU / 12 GB"},
		{"services.web.timeout", "web", "timeout: 300s", true, LimitRequestTimeout, "after 120s"},
		{"services.web.sticky", "web", "sticky: true", true, LimitStateless, "no sticky sessions"},
		{"services.web.slow_start", "web", "slow_start: 10s", false, LimitNoLBControls, "no slow start"},
		{"services.web.drain", "web", "drain: 30s", false, LimitNoLBControls, "no drain"},
		{"services.web.pids", "web", "pids: 256", false, LimitNoLBControls, "no process limit"},
		{"services.web.max_concurrency", "web", "max_concurrency: 50", false, LimitNoLBControls, "neither caps nor queues"},
		{"services.web.scale.min", "web", "scale: {min: 0", false, LimitMinSize, "cannot scale to zero"},
		{"services.web.scale.max", "web", "scale: {min: 0", false, LimitMaxSize, "max 40"},
		{"services.web.scale.concurrency", "web", "scale: {min: 0", true, LimitMaxConcurrency, "concurrency: 200"},
		{"services.web.health.interval", "web", "interval: 30s", false, LimitHealthCheck, "would use 20s"},
		{"services.web.health.timeout", "web", "timeout: 25s", true, LimitHealthCheck, "20s at most"},
		{"services.web.health.unhealthy", "web", "unhealthy: 30", false, LimitHealthCheck, "unhealthy: 20"},
		{"services.web.env.API_URL", "web", "API_URL:", false, LimitVPCEgress, "VPC connector"},
		{"services.web.routes[0]", "web", "{path: /api, service: api}", true, LimitNoRouting, "/api to api"},
		{"services.web.sidecars", "web", "sidecars:", true, LimitOneContainer, "no sidecars"},
		{"services.web.release", "web", "release:", false, LimitNoTasks, "ECS task on cluster ops"},
		{"services.api.env.WEB_HOOK", "web", "WEB_HOOK:", true, LimitNoPrivateName, "api calls web by name"},
		{"tasks.migrate.service", "web", "service: web", false, LimitNoTasks, "task migrate runs on ECS cluster ops"},
		{"services.worker.port", "worker", "worker:", true, LimitWebOnly, "only web services"},
	}
	for _, tt := range tests {
		t.Run(tt.key, func(t *testing.T) {
			f, ok := byKey[tt.key]
			require.True(t, ok, "no finding for %s in %v", tt.key, got)
			assert.Equal(t, tt.service, f.Service)
			assert.Equal(t, "berth.yaml", f.File)
			assert.Equal(t, lineOf(t, everything, tt.line), f.Line, f.String())
			assert.Equal(t, tt.constraint, f.Constraint, f.String())
			assert.Equal(t, tt.limit, f.Limit)
			assert.Equal(t, LimitOf(tt.limit).Source, f.Source)
			assert.Contains(t, f.String(), tt.says)
		})
	}
	// ROLE: web is a word, not a call to web; api is not on App Runner, so
	// its own keys are not checked without --all.
	assert.Len(t, got, len(tests), "findings beyond the table: %v", got)
	assert.False(t, Fits(got, "web"))
	assert.False(t, Fits(got, "worker"))
}

func TestFindingLine(t *testing.T) {
	sp := parse(t, everything)
	for _, f := range Check(sp, "prod") {
		if f.Key == "services.web.sidecars" {
			want := "berth.yaml:" + strconv.Itoa(lineOf(t, everything, "sidecars:")) + ": services.web.sidecars: App Runner runs one container per instance, no sidecars; web has 1 (proxy); Fargate runs them in the same task (forces Fargate) — https://github.com/aws/apprunner-roadmap/issues/71"
			assert.Equal(t, want, f.String())
			return
		}
	}
	t.Fatal("no sidecars finding")
}

// A service that App Runner runs as it is gets no finding.
func TestCheckFittingServiceHasNoFinding(t *testing.T) {
	sp := parse(t, `app: shop
environments:
  prod: {engine: aws}
services:
  web:
    image: web:1
    port: 8080
    apprunner: `+arn+`
    cpu: 1
    memory: 2GiB
    timeout: 120s
    scale: {min: 1, max: 25, concurrency: 200}
    health: {path: /health, interval: 5s, timeout: 2s, healthy: 1, unhealthy: 5}
    env:
      ROLE: web
      DATABASE_URL: postgres://db.example.com:5432/shop
  api:
    image: api:1
    port: 9000
    sidecars:
      proxy: {image: envoy:1}
`)
	got := Check(sp, "prod")
	assert.Empty(t, got)
	assert.True(t, Fits(got, "web"))
}

func TestCheckSizes(t *testing.T) {
	tests := []struct {
		name, size string
		key        string
		constraint bool
		says       string
	}{
		{"cpu between sizes is rounded up", "cpu: 0.3", "services.web.cpu", false, "would run it as 0.5 vCPU / 1 GB"},
		{"memory between sizes is rounded up", "cpu: 1\n    memory: 5GiB", "services.web.memory", false, "would run it as 2 vCPU / 6 GB"},
		{"memory alone picks the smallest cpu", "memory: 3GiB", "", false, ""},
		{"cpu alone", "cpu: 2", "", false, ""},
		{"too much memory", "memory: 16GiB", "services.web.memory", true, "largest instance is 4 vCPU / 12 GB"},
		{"too many vCPUs with memory", "cpu: 8\n    memory: 8GiB", "services.web.cpu", true, "cpu 8 with memory 8 GiB needs Fargate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sp := parse(t, "app: shop\nenvironments:\n  prod: {engine: aws}\nservices:\n  web:\n    image: web:1\n    port: 8080\n    apprunner: "+arn+"\n    "+tt.size+"\n")
			got := Check(sp, "prod")
			if tt.key == "" {
				assert.Empty(t, got)
				return
			}
			require.Len(t, got, 1, "%v", got)
			assert.Equal(t, tt.key, got[0].Key)
			assert.Equal(t, tt.constraint, got[0].Constraint)
			assert.Equal(t, LimitInstanceSizes, got[0].Limit)
			assert.Contains(t, got[0].String(), tt.says)
			assert.Positive(t, got[0].Line)
		})
	}
}

func TestFit(t *testing.T) {
	tests := []struct {
		cpu     float64
		memory  int64
		want    string
		exact   bool
		fitting bool
	}{
		{0, 0, "1 vCPU / 2 GB", true, true},
		{0.25, 512 << 20, "0.25 vCPU / 0.5 GB", true, true},
		{0.25, 0, "0.25 vCPU / 0.5 GB", true, true},
		{0.26, 0, "0.5 vCPU / 1 GB", false, true},
		{0.5, 2 << 30, "1 vCPU / 2 GB", false, true},
		{0, 4 << 30, "1 vCPU / 4 GB", true, true},
		{4, 12 << 30, "4 vCPU / 12 GB", true, true},
		{4, 13 << 30, "", false, false},
		{16, 0, "", false, false},
	}
	for _, tt := range tests {
		s, exact, ok := Fit(tt.cpu, tt.memory)
		assert.Equal(t, tt.fitting, ok, "%v %v", tt.cpu, tt.memory)
		if ok {
			assert.Equal(t, tt.want, s.String(), "%v %v", tt.cpu, tt.memory)
		}
		assert.Equal(t, tt.exact, exact, "%v %v", tt.cpu, tt.memory)
	}
}

// An edge entrypoint that lets requests to the service run past 120s is a
// constraint at the entrypoint's line.
func TestCheckEdgeTimeout(t *testing.T) {
	yaml := `app: shop
environments:
  prod: {engine: aws}
edge:
  www:
    hosts: [www.example.com]
    origin: web
    timeout: 60s
    routes:
      - {path: /export, timeout: 600s}
      - {path: /other, origin: https://other.example.com, timeout: 600s}
services:
  web:
    image: web:1
    port: 8080
    apprunner: ` + arn + `
`
	got := Check(parse(t, yaml), "prod")
	require.Len(t, got, 1, "%v", got)
	assert.Equal(t, "edge.www.routes[0].timeout", got[0].Key)
	assert.Equal(t, lineOf(t, yaml, "/export"), got[0].Line)
	assert.True(t, got[0].Constraint)
	assert.Contains(t, got[0].Why, "/export run 600s")
}

// Observed needs become findings at the service's line, with their
// evidence; an unknown need is a note that names the known ones.
func TestCheckObserved(t *testing.T) {
	yaml := "app: shop\nenvironments:\n  prod: {engine: aws}\nservices:\n  web:\n    image: web:1\n    port: 8080\n    apprunner: " + arn + "\n  api:\n    image: api:1\n    port: 9000\n"
	sp := parse(t, yaml)
	obs := []Observed{{Service: "web", Need: NeedWebSockets, Evidence: "CloudWatch: 1204 upgrades in 7d"}, {Service: "api", Need: NeedExec}}
	for _, n := range Needs {
		obs = append(obs, Observed{Service: "web", Need: n})
	}
	obs = append(obs, Observed{Service: "web", Need: "telepathy"})
	got := CheckWith(sp, "prod", Options{Observed: obs})
	require.Len(t, got, 2+len(Needs), "%v", got) // api is not on App Runner
	for _, f := range got {
		assert.Equal(t, "web", f.Service)
		assert.Equal(t, "services.web", f.Key)
		assert.Equal(t, lineOf(t, yaml, "web:"), f.Line)
	}
	assert.Equal(t, LimitWebSockets, got[0].Limit)
	assert.True(t, got[0].Constraint)
	assert.Contains(t, got[0].String(), "[observed: CloudWatch: 1204 upgrades in 7d]")
	last := got[len(got)-1]
	assert.False(t, last.Constraint)
	assert.Contains(t, last.String(), `unknown observed need "telepathy"`)
	assert.Contains(t, last.String(), "websockets, long-requests")
	for _, f := range got[:len(got)-1] {
		assert.True(t, f.Constraint, f.String())
	}

	n, err := ParseNeed("exec")
	require.NoError(t, err)
	assert.Equal(t, NeedExec, n)
	_, err = ParseNeed("ssh")
	assert.ErrorContains(t, err, "use one of websockets")
}

func TestSelected(t *testing.T) {
	sp := parse(t, "app: shop\nservices:\n  a:\n    image: a:1\n    port: 80\n  b:\n    image: b:1\n    port: 80\n    apprunner: "+arn+"\n  c:\n    image: c:1\n")
	assert.Equal(t, []string{"b"}, Selected(sp, Options{}))
	assert.Equal(t, []string{"a", "b", "c"}, Selected(sp, Options{All: true}))
	assert.Equal(t, []string{"a", "c"}, Selected(sp, Options{Services: []string{"c", "a"}}))
	// --all asks of the services not on App Runner whether they could be.
	got := CheckWith(sp, "", Options{All: true})
	require.Len(t, got, 1)
	assert.Equal(t, "services.c.port", got[0].Key)
	// Without environment, tasks are said to run on berth's own cluster.
	sp = parse(t, "app: shop\nservices:\n  b:\n    image: b:1\n    port: 80\n    apprunner: "+arn+"\ntasks:\n  t:\n    service: b\n    command: [x]\n    schedule: '@daily'\n")
	got = Check(sp, "")
	require.Len(t, got, 1)
	assert.Contains(t, got[0].Why, "runs on its schedule (EventBridge Scheduler) on ECS cluster berth-shop")
}

// What counts as calling web by its private name, and what does not.
func TestNameRE(t *testing.T) {
	re := nameRE("web", "shop")
	for _, v := range []string{"http://web", "http://web:8080/x", "https://web/", "web:8080", "redis://u:p@web:6379/0", "http://web.shop.internal/hook", "web.shop.internal", "a,web:80", "URL=http://web?x=1"} {
		assert.True(t, re.MatchString(v), v)
	}
	for _, v := range []string{"web", "ROLE=web", "https://web.example.com", "http://webhook:80", "http://myweb:80", "web.other.internal", "webmaster@example.com", "web-1:80"} {
		assert.False(t, re.MatchString(v), v)
	}
}
