package fargate

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berth-dev/berth/internal/spec"
)

// parse parses a berth.yaml for the tests; it must be a valid spec.
func parse(t testing.TB, yaml string) *spec.Spec {
	t.Helper()
	sp, err := spec.Parse("berth.yaml", []byte(yaml))
	require.NoError(t, err)
	return sp
}

// messages renders errors one per line, as the CLI would print them.
func messages(errs []error) []string {
	out := make([]string, 0, len(errs))
	for _, err := range errs {
		out = append(out, err.Error())
	}
	return out
}

const prodEnv = `environments:
  prod:
    engine: aws
    region: eu-west-1
`

func TestCheckAcceptsWhatFargateRuns(t *testing.T) {
	sp := parse(t, `app: shop
`+prodEnv+`services:
  web:
    image: web:1
    port: 8080
    cpu: 0.5
    memory: 1GiB
    platform: linux/arm64
    scale: {min: 1, max: 4}
    health: {path: /healthz, interval: 10s, timeout: 5s, healthy: 2, unhealthy: 3}
    sticky: true
    drain: 45s
    slow_start: 30s
    domains: [shop.example.com]
    routes: [{path: /api, service: api}]
    release: ["./web", "migrate"]
    secrets: [DATABASE_URL]
    sidecars:
      migrate: {image: web:1, command: ["./web", "migrate"], essential: false}
    depends_on: {migrate: success}
  api:
    image: api:1
    port: 9090
  worker:
    image: worker:1
    instances: 2
tasks:
  nightly: {service: worker, command: ["./worker", "sweep"], schedule: "0 3 * * 1-5"}
  weekly: {service: worker, command: ["./worker", "report"], schedule: "@weekly"}
`)
	assert.Empty(t, messages(Check(sp, "prod")))
	assert.Empty(t, Warnings(sp))
}

func TestCheckRefusals(t *testing.T) {
	// Each case is one service (or block) written into a spec; the
	// refusal must name the key and the line the user wrote it on.
	tests := []struct {
		name    string
		service string // under services:, from line 7
		extra   string // after the services
		want    []string
	}{
		{"scale to zero", `
  web:
    image: web:1
    port: 8080
    scale: {min: 0, max: 3}
`, "", []string{"berth.yaml:10: services.web.scale.min: Fargate cannot hold a first request while a task starts, so a service cannot scale to zero; use scale.min: 1 (or pause the service)"}},
		{"a size Fargate does not sell", `
  web:
    image: web:1
    port: 8080
    cpu: 0.25
    memory: 3GiB
`, "", []string{"berth.yaml:11: services.web.memory: Fargate has no 0.25 vCPU task with 3 GiB; nearest sizes: cpu 0.5 with 3 GiB, cpu 1 with 3 GiB"}},
		{"a sidecar's size makes the sum", `
  web:
    image: web:1
    cpu: 0.5
    sidecars:
      envoy:
        image: envoy:1
        cpu: 0.25
`, "", []string{"berth.yaml:9: services.web.cpu: Fargate has no 0.75 vCPU task (web 0.5 + envoy 0.25); nearest sizes: cpu 1 with 2 GiB, cpu 0.5 with 1 GiB"}},
		{"platform", `
  web:
    image: web:1
    platform: linux/arm/v7
`, "", []string{"berth.yaml:9: services.web.platform: Fargate runs linux/amd64 and linux/arm64 only, not linux/arm/v7; use platform: linux/amd64 or linux/arm64"}},
		{"max_concurrency", `
  web:
    image: web:1
    port: 8080
    max_concurrency: 50
`, "", []string{"berth.yaml:10: services.web.max_concurrency: an ALB cannot cap or queue the requests in flight per task; remove max_concurrency, and use scale: {concurrency: N} to add tasks under load"}},
		{"health values the ALB cannot take", `
  web:
    image: web:1
    port: 8080
    health:
      path: /healthz
      interval: 1s
      timeout: 500ms
      healthy: 1
      unhealthy: 11
`, "", []string{
			"berth.yaml:12: services.web.health.interval: an ALB checks targets every 5s to 300s, in whole seconds; use interval: 5s",
			"berth.yaml:13: services.web.health.timeout: an ALB waits 2s to 120s for a health check, in whole seconds; use timeout: 2s",
			"berth.yaml:14: services.web.health.healthy: an ALB counts 2 to 10 checks in a row; use healthy: 2",
			"berth.yaml:15: services.web.health.unhealthy: an ALB counts 2 to 10 checks in a row; use unhealthy: 10",
		}},
		{"health timeout not below its interval", `
  web:
    image: web:1
    port: 8080
    health: {interval: 10s, timeout: 10s}
`, "", []string{"berth.yaml:10: services.web.health.timeout: an ALB needs the health check timeout shorter than its interval (10s); use timeout: 9s or less"}},
		{"slow_start, drain and timeout outside the ALB's ranges", `
  web:
    image: web:1
    port: 8080
    slow_start: 10s
    drain: 1500ms
    timeout: 2h
`, "", []string{
			"berth.yaml:10: services.web.slow_start: an ALB ramps a new target up over 30s to 900s, in whole seconds; use slow_start: 30s",
			"berth.yaml:11: services.web.drain: an ALB drains a target for at most 3600s, in whole seconds; use drain: 2s",
			"berth.yaml:12: services.web.timeout: an ALB's idle timeout is 1s to 4000s, in whole seconds; use timeout: 4000s",
		}},
		{"a sidecar waiting for the service to be healthy", `
  web:
    image: web:1
    port: 8080
    sidecars:
      warm:
        image: warm:1
        depends_on: {web: healthy}
`, "", []string{"berth.yaml:13: services.web.sidecars.warm.depends_on.web: ECS can wait for a container to be healthy only through a command run in its image, and berth's health check is an HTTP probe from outside; use start"}},
		{"too many containers", `
  web:
    image: web:1
    sidecars:
` + sidecarsYAML(10), "", []string{"berth.yaml:9: services.web.sidecars: ECS runs at most 10 containers in a task and this service has 11; merge sidecars or move some to a service of their own"}},
		{"edge origins CloudFront cannot reach", `
  web:
    image: web:1
    port: 8080
`, `edge:
  www: {hosts: [www.example.com], origin: blog/web, failover: {url: "http://old.example.com"}}
  api: {hosts: [api.example.com], origin: web}
`, []string{
			"berth.yaml:11: edge.www.origin: blog/web is a service of another app; on AWS name it by its URL (https://...)",
			"berth.yaml:11: edge.www.failover: CloudFront reaches URL origins over HTTPS only; write https://old.example.com",
		}},
		{"a schedule EventBridge cannot run", `
  worker:
    image: worker:1
`, `tasks:
  sweep: {service: worker, command: [./sweep], schedule: "0 3 1 * 1"}
  steps: {service: worker, command: [./sweep], schedule: "0 3 * * */2"}
`, []string{
			`berth.yaml:10: tasks.sweep.schedule: EventBridge Scheduler cannot run on a day of the month or a day of the week ("0 3 1 * 1" matches either); keep one and write * for the other`,
			`berth.yaml:11: tasks.steps.schedule: EventBridge Scheduler has no steps (/) in the day of the week; list the days, e.g. MON,WED,FRI in "0 3 * * */2"`,
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sp := parse(t, "app: shop\n"+prodEnv+"services:"+tc.service+tc.extra)
			assert.Equal(t, tc.want, messages(Check(sp, "prod")))
		})
	}
}

func sidecarsYAML(n int) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "      s%d: {image: s:1}\n", i)
	}
	return b.String()
}

func TestCheckEnvironment(t *testing.T) {
	sp := parse(t, `app: shop
environments:
  prod:
    engine: aws
    subnets: [subnet-0a1b2c3d]
services:
  web: {image: web:1, port: 8080}
`)
	assert.Equal(t, []string{
		"berth.yaml:5: environments.prod.subnets: an Application Load Balancer needs subnets in at least two Availability Zones; list a second subnet, or leave subnets out for the default VPC's",
	}, messages(Check(sp, "prod")))
	assert.Equal(t, []string{`berth.yaml:2: environments: no environment "qa"; environments are: prod`}, messages(Check(sp, "qa")))
	assert.Equal(t, []string{`berth.yaml: environments: "" is the local engine, not an AWS environment; pass --env with one of the spec's environments`}, messages(Check(sp, "")))

	worker := parse(t, `app: shop
environments:
  prod: {engine: aws, subnets: [subnet-0a1b2c3d]}
services:
  worker: {image: worker:1}
`)
	assert.Empty(t, Check(worker, "prod"), "a worker needs no load balancer, so one subnet will do")
}

func TestWarnings(t *testing.T) {
	sp := parse(t, `app: shop
`+prodEnv+`services:
  web:
    image: web:1
    port: 8080
    pids: 256
    sticky: {cookie: shop_session}
    sidecars:
      envoy: {image: envoy:1, pids: 64}
`)
	assert.Equal(t, []string{
		"berth.yaml:10: services.web.pids: Fargate has no process limit; ignored on AWS",
		"berth.yaml:13: services.web.sidecars.envoy.pids: Fargate has no process limit; ignored on AWS",
		`berth.yaml:11: services.web.sticky.cookie: the ALB names its stickiness cookie AWSALB; "shop_session" is used only on the local engine`,
	}, Warnings(sp))
	assert.Empty(t, Check(sp, "prod"), "warnings do not refuse")
}

func TestTargetHealth(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want TargetHealthCheck
	}{
		{"defaults are brought into the ALB's ranges", `{image: web:1, port: 8080}`,
			TargetHealthCheck{Path: "/", Matcher: "200-499", IntervalSeconds: 5, TimeoutSeconds: 2, HealthyThresholdCount: 2, UnhealthyThresholdCount: 3}},
		{"a path is checked for 2xx and 3xx", `{image: web:1, port: 8080, health: {path: /healthz, interval: 30s, timeout: 5s, healthy: 3, unhealthy: 5}}`,
			TargetHealthCheck{Path: "/healthz", Matcher: "200-399", IntervalSeconds: 30, TimeoutSeconds: 5, HealthyThresholdCount: 3, UnhealthyThresholdCount: 5}},
		{"a long timeout stretches a defaulted interval", `{image: web:1, port: 8080, health: {timeout: 10s}}`,
			TargetHealthCheck{Path: "/", Matcher: "200-499", IntervalSeconds: 11, TimeoutSeconds: 10, HealthyThresholdCount: 2, UnhealthyThresholdCount: 3}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sp := parse(t, "app: shop\nservices:\n  web: "+tc.yaml+"\n")
			assert.Equal(t, tc.want, TargetHealth(sp.Services["web"]))
			assert.Empty(t, Check(withProd(t, sp), "prod"))
		})
	}
}

// withProd adds a prod environment to a spec parsed without one.
func withProd(t testing.TB, sp *spec.Spec) *spec.Spec {
	t.Helper()
	sp.Environments = map[string]*spec.Environment{"prod": {Name: "prod", Engine: spec.EngineAWS}}
	sp.EnvironmentOrder = []string{"prod"}
	require.NoError(t, sp.Validate())
	return sp
}

func TestTargetGroupAttributes(t *testing.T) {
	sp := parse(t, `app: shop
services:
  web: {image: web:1, port: 8080, sticky: true, drain: 45s, slow_start: 1m, timeout: 30s}
  api: {image: api:1, port: 9090, timeout: 10m}
  plain: {image: plain:1, port: 9091}
`)
	assert.Equal(t, map[string]string{
		"deregistration_delay.timeout_seconds": "45",
		"slow_start.duration_seconds":          "60",
		"stickiness.enabled":                   "true",
		"stickiness.type":                      "lb_cookie",
	}, TargetGroupAttributes(sp.Services["web"]))
	assert.Equal(t, map[string]string{
		"deregistration_delay.timeout_seconds": "30",
		"stickiness.enabled":                   "false",
	}, TargetGroupAttributes(sp.Services["plain"]), "berth's default drain, 30s")
	assert.Equal(t, 600, IdleTimeoutSeconds(sp), "one idle timeout per ALB: the longest service timeout")
}

func TestScheduleExpression(t *testing.T) {
	tests := []struct{ in, want string }{
		{"@hourly", "cron(0 * * * ? *)"},
		{"@daily", "cron(0 0 * * ? *)"},
		{"@weekly", "cron(0 0 ? * 1 *)"},
		{"@monthly", "cron(0 0 1 * ? *)"},
		{"@yearly", "cron(0 0 1 1 ? *)"},
		{"0 3 * * *", "cron(0 3 * * ? *)"},
		{"*/15 * * * *", "cron(*/15 * * * ? *)"},
		{"30 2 1 * *", "cron(30 2 1 * ? *)"},
		{"0 3 * * 1-5", "cron(0 3 ? * MON-FRI *)"},
		{"0 3 * * 0,6", "cron(0 3 ? * SUN,SAT *)"},
		{"0 3 * * 7", "cron(0 3 ? * SUN *)"},
		{"0 3 * * 1-7", "cron(0 3 ? * MON-SAT,SUN *)"},
		{"0 3 * * 0-7", "cron(0 3 ? * SUN-SAT *)"},
		{"0 3 * * mon-fri", "cron(0 3 ? * MON-FRI *)"},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ScheduleExpression(tc.in)
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestPathPatterns(t *testing.T) {
	assert.Equal(t, []string{"/api", "/api/*"}, PathPatterns("/api"))
	assert.Equal(t, []string{"/static/*"}, PathPatterns("/static/"))
	assert.Equal(t, []string{"/*"}, PathPatterns("/"))
}

func TestScaling(t *testing.T) {
	sp := parse(t, `app: shop
services:
  web: {image: web:1, port: 8080, scale: {min: 2, max: 8, concurrency: 50}}
  worker: {image: worker:1, scale: {min: 3, max: 5}}
  fixed: {image: fixed:1, instances: 2}
`)
	assert.Equal(t, &AutoScaling{Min: 2, Max: 8, RequestsPerTarget: 3000}, Scaling(sp.Services["web"]))
	assert.Equal(t, &AutoScaling{Min: 3, Max: 5}, Scaling(sp.Services["worker"]), "a worker has no requests to track")
	assert.Nil(t, Scaling(sp.Services["fixed"]))
}
