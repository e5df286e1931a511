package fargate

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/berth-dev/berth/internal/spec"
)

// MaxContainers is the most containers ECS runs in one task definition: a
// service's own and its sidecars.
const MaxContainers = 10

// The ALB's limits on what berth maps onto it (Elastic Load Balancing API
// reference: CreateTargetGroup, ModifyTargetGroupAttributes,
// ModifyLoadBalancerAttributes).
const (
	minHealthInterval = 5 * time.Second
	maxHealthInterval = 300 * time.Second
	minHealthTimeout  = 2 * time.Second
	maxHealthTimeout  = 120 * time.Second
	minThreshold      = 2
	maxThreshold      = 10
	minSlowStart      = 30 * time.Second
	maxSlowStart      = 900 * time.Second
	maxDrain          = 3600 * time.Second
	maxIdleTimeout    = 4000 * time.Second
)

// Check returns everything in sp that Fargate and the ALB in front of it
// cannot do for environment env, one *spec.Error per problem, each naming
// the key, its line and what would work. Nothing in AWS may change while it
// returns any. Values berth chose (defaults) are adapted rather than
// refused; see TargetHealth.
func Check(sp *spec.Spec, env string) []error {
	c := &checker{sp: sp}
	e, err := sp.Environment(env)
	if err != nil {
		return []error{err}
	}
	if e == nil {
		return []error{&spec.Error{File: sp.File, Field: "environments", Msg: fmt.Sprintf("%q is the local engine, not an AWS environment; pass --env with one of the spec's environments", env)}}
	}
	envPath := "environments." + e.Name
	if e.Engine != spec.EngineAWS {
		c.fail(envPath+".engine", "engine %q is not aws; berth runs only aws environments on Fargate", e.Engine)
	}
	for _, name := range sp.EdgeOrder {
		if ep := sp.Edge[name]; ep != nil {
			c.entrypoint(ep)
		}
	}
	hasPort := false
	for _, name := range serviceNames(sp) {
		svc := sp.Services[name]
		if svc == nil {
			continue
		}
		if svc.AppRunner != "" {
			// It runs on its App Runner service: no task definition, target
			// group or ALB of its own, so none of their limits apply (App
			// Runner's are berth check's, internal/aws/apprunnercheck).
			continue
		}
		hasPort = hasPort || svc.Port != 0
		c.service(svc)
	}
	if hasPort && len(e.Subnets) == 1 {
		c.fail(envPath+".subnets", "an Application Load Balancer needs subnets in at least two Availability Zones; list a second subnet, or leave subnets out for the default VPC's")
	}
	for _, name := range taskNames(sp) {
		t := sp.Tasks[name]
		if t == nil || t.Schedule == "" {
			continue
		}
		if _, err := ScheduleExpression(t.Schedule); err != nil {
			c.fail("tasks."+name+".schedule", "%s", err.Error())
		}
	}
	return c.errs
}

// Warnings returns what berth leaves out on Fargate because AWS has no
// equivalent and the app still runs without it, one line each naming the
// key and its line. The CLI prints them; they do not stop a deploy.
func Warnings(sp *spec.Spec) []string {
	var out []string
	warn := func(field, format string, args ...any) {
		out = append(out, sp.FieldError(field, format, args...).Error())
	}
	for _, name := range serviceNames(sp) {
		svc := sp.Services[name]
		if svc == nil {
			continue
		}
		path := "services." + name
		if svc.Pids != 0 {
			warn(path+".pids", "Fargate has no process limit; ignored on AWS")
		}
		for _, sn := range sidecarNames(svc) {
			if svc.Sidecars[sn].Pids != 0 {
				warn(path+".sidecars."+sn+".pids", "Fargate has no process limit; ignored on AWS")
			}
		}
		if svc.Sticky != nil && svc.Sticky.Cookie != spec.StickyCookie(name) {
			warn(path+".sticky.cookie", "the ALB names its stickiness cookie AWSALB; %q is used only on the local engine", svc.Sticky.Cookie)
		}
	}
	return out
}

// checker collects refusals with their lines.
type checker struct {
	sp   *spec.Spec
	errs []error
}

func (c *checker) fail(field, format string, args ...any) {
	c.errs = append(c.errs, c.sp.FieldError(field, format, args...))
}

// locate gives an error from Size the spec's file and line.
func (c *checker) locate(err error) {
	var se *spec.Error
	if errors.As(err, &se) && se.Field != "" {
		c.errs = append(c.errs, c.sp.FieldError(se.Field, "%s", se.Msg))
		return
	}
	c.errs = append(c.errs, err)
}

func (c *checker) service(svc *spec.Service) {
	path := "services." + svc.Name
	if _, err := Size(svc); err != nil {
		c.locate(err)
	}
	if n := 1 + len(svc.Sidecars); n > MaxContainers {
		c.fail(path+".sidecars", "ECS runs at most %d containers in a task and this service has %d; merge sidecars or move some to a service of their own", MaxContainers, n)
	}
	if svc.Platform != "" {
		if _, err := Architecture(svc.Platform); err != nil {
			c.fail(path+".platform", "%s", err.Error())
		}
	}
	if svc.Scale != nil && svc.Scale.Min == 0 {
		c.fail(path+".scale.min", "Fargate cannot hold a first request while a task starts, so a service cannot scale to zero; use scale.min: 1 (or pause the service)")
	}
	if svc.MaxConcurrency != nil {
		c.fail(path+".max_concurrency", "an ALB cannot cap or queue the requests in flight per task; remove max_concurrency, and use scale: {concurrency: N} to add tasks under load")
	}
	if svc.Port != 0 {
		c.health(svc)
		c.lb(svc)
	}
	// A HEALTHY dependency needs a container health check, which ECS runs
	// as a command inside the image; berth's checks are HTTP and TCP probes
	// from outside, and a FROM-scratch image has no shell to run one.
	for _, sn := range sidecarNames(svc) {
		if svc.Sidecars[sn].DependsOn[svc.Name] == spec.ConditionHealthy {
			c.fail(path+".sidecars."+sn+".depends_on."+svc.Name, "ECS can wait for a container to be healthy only through a command run in its image, and berth's health check is an HTTP probe from outside; use start")
		}
	}
}

// health refuses health check values the user wrote that an ALB target
// group cannot take.
func (c *checker) health(svc *spec.Service) {
	path := "services." + svc.Name + ".health"
	h := svc.Health
	if c.sp.Written(path+".interval") && !between(h.Interval, minHealthInterval, maxHealthInterval) {
		c.fail(path+".interval", "an ALB checks targets every %s to %s, in whole seconds; use interval: %s", secs(minHealthInterval), secs(maxHealthInterval), secs(clampDur(h.Interval, minHealthInterval, maxHealthInterval)))
	}
	if c.sp.Written(path+".timeout") && !between(h.Timeout, minHealthTimeout, maxHealthTimeout) {
		c.fail(path+".timeout", "an ALB waits %s to %s for a health check, in whole seconds; use timeout: %s", secs(minHealthTimeout), secs(maxHealthTimeout), secs(clampDur(h.Timeout, minHealthTimeout, maxHealthTimeout)))
	}
	if c.sp.Written(path+".timeout") && c.sp.Written(path+".interval") && h.Timeout >= h.Interval && between(h.Interval, minHealthInterval, maxHealthInterval) {
		c.fail(path+".timeout", "an ALB needs the health check timeout shorter than its interval (%s); use timeout: %s or less", secs(h.Interval), secs(h.Interval-time.Second))
	}
	for _, k := range []struct {
		key string
		v   int
	}{{"healthy", h.Healthy}, {"unhealthy", h.Unhealthy}} {
		if c.sp.Written(path+"."+k.key) && (k.v < minThreshold || k.v > maxThreshold) {
			c.fail(path+"."+k.key, "an ALB counts %d to %d checks in a row; use %s: %d", minThreshold, maxThreshold, k.key, min(max(k.v, minThreshold), maxThreshold))
		}
	}
}

// lb refuses load-balancer controls outside what a target group and the
// ALB take.
func (c *checker) lb(svc *spec.Service) {
	path := "services." + svc.Name
	if svc.SlowStart != 0 && !between(svc.SlowStart, minSlowStart, maxSlowStart) {
		c.fail(path+".slow_start", "an ALB ramps a new target up over %s to %s, in whole seconds; use slow_start: %s", secs(minSlowStart), secs(maxSlowStart), secs(clampDur(svc.SlowStart, minSlowStart, maxSlowStart)))
	}
	if svc.Drain != 0 && !between(svc.Drain, time.Second, maxDrain) {
		c.fail(path+".drain", "an ALB drains a target for at most %s, in whole seconds; use drain: %s", secs(maxDrain), secs(clampDur(svc.Drain, time.Second, maxDrain)))
	}
	if c.sp.Written(path+".timeout") && !between(svc.Timeout, time.Second, maxIdleTimeout) {
		c.fail(path+".timeout", "an ALB's idle timeout is 1s to %s, in whole seconds; use timeout: %s", secs(maxIdleTimeout), secs(clampDur(svc.Timeout, time.Second, maxIdleTimeout)))
	}
}

// between reports whether d is whole seconds within [lo, hi].
func between(d, lo, hi time.Duration) bool {
	return d%time.Second == 0 && d >= lo && d <= hi
}

// clampDur rounds d up to whole seconds and into [lo, hi].
func clampDur(d, lo, hi time.Duration) time.Duration {
	d = (d + time.Second - 1).Truncate(time.Second)
	return min(max(d, lo), hi)
}

// secs renders a whole number of seconds as berth.yaml writes it: 30s.
func secs(d time.Duration) string {
	return fmt.Sprintf("%ds", int(d/time.Second))
}

// Architecture maps a berth platform to Fargate's CPU architecture:
// linux/amd64 is X86_64, linux/arm64 (and linux/arm64/v8) is ARM64 (Graviton).
// "" is linux/amd64. Fargate runs nothing else for Linux.
func Architecture(platform string) (string, error) {
	switch platform {
	case "", "linux/amd64":
		return "X86_64", nil
	case "linux/arm64", "linux/arm64/v8":
		return "ARM64", nil
	}
	return "", fmt.Errorf("Fargate runs linux/amd64 and linux/arm64 only, not %s; use platform: linux/amd64 or linux/arm64", platform)
}

// TargetHealthCheck is a target group's health check, in the units and
// ranges the ALB takes.
type TargetHealthCheck struct {
	Path                    string
	Matcher                 string // HTTP codes, e.g. "200-399"
	IntervalSeconds         int
	TimeoutSeconds          int
	HealthyThresholdCount   int
	UnhealthyThresholdCount int
}

// TargetHealth is the ALB health check of a service with a port. A
// health.path is an HTTP GET of it, healthy on 2xx and 3xx as on the local
// engine; without one, berth's local check is a TCP connect, which an ALB
// target group cannot do, so it asks for / and takes any answer below 500 as
// "the server is up". Values berth defaulted are brought into the ALB's
// ranges (a 5s interval at least, 2 checks in a row at least); values the
// user wrote outside them are refused by Check, and clamped here.
func TargetHealth(svc *spec.Service) TargetHealthCheck {
	h := svc.Health
	hc := TargetHealthCheck{Path: h.Path, Matcher: "200-399"}
	if hc.Path == "" {
		hc.Path, hc.Matcher = "/", "200-499"
	}
	hc.TimeoutSeconds = int(clampDur(h.Timeout, minHealthTimeout, maxHealthTimeout) / time.Second)
	hc.IntervalSeconds = int(clampDur(h.Interval, minHealthInterval, maxHealthInterval) / time.Second)
	if hc.TimeoutSeconds >= hc.IntervalSeconds {
		hc.IntervalSeconds = min(hc.TimeoutSeconds+1, int(maxHealthInterval/time.Second))
	}
	hc.HealthyThresholdCount = min(max(h.Healthy, minThreshold), maxThreshold)
	hc.UnhealthyThresholdCount = min(max(h.Unhealthy, minThreshold), maxThreshold)
	return hc
}

// TargetGroupAttributes are the target group attributes that carry a
// service's drain, slow_start and sticky, as ModifyTargetGroupAttributes
// takes them. sticky maps to the ALB's own cookie (lb_cookie); drain
// defaults to berth's 30s.
func TargetGroupAttributes(svc *spec.Service) map[string]string {
	drain := svc.Drain
	if drain == 0 {
		drain = spec.DefaultDrain
	}
	attrs := map[string]string{
		"deregistration_delay.timeout_seconds": fmt.Sprint(int(clampDur(drain, 0, maxDrain) / time.Second)),
		"stickiness.enabled":                   "false",
	}
	if svc.SlowStart != 0 {
		attrs["slow_start.duration_seconds"] = fmt.Sprint(int(clampDur(svc.SlowStart, minSlowStart, maxSlowStart) / time.Second))
	}
	if svc.Sticky != nil {
		attrs["stickiness.enabled"] = "true"
		attrs["stickiness.type"] = "lb_cookie"
	}
	return attrs
}

// IdleTimeoutSeconds is the ALB idle timeout for an app: the ALB has one
// per load balancer, so it is the largest of its services' request timeouts.
func IdleTimeoutSeconds(sp *spec.Spec) int {
	longest := time.Duration(0)
	for _, svc := range sp.Services {
		if svc != nil && svc.Port != 0 {
			longest = max(longest, svc.Timeout)
		}
	}
	if longest == 0 {
		longest = spec.DefaultRequestTimeout
	}
	return int(clampDur(longest, time.Second, maxIdleTimeout) / time.Second)
}

// scheduleDescriptors are berth's @-schedules as EventBridge Scheduler
// cron expressions (minutes hours day-of-month month day-of-week year, UTC;
// one of the day fields must be ?, and Sunday is 1).
var scheduleDescriptors = map[string]string{
	"@hourly":   "cron(0 * * * ? *)",
	"@daily":    "cron(0 0 * * ? *)",
	"@midnight": "cron(0 0 * * ? *)",
	"@weekly":   "cron(0 0 ? * 1 *)",
	"@monthly":  "cron(0 0 1 * ? *)",
	"@yearly":   "cron(0 0 1 1 ? *)",
	"@annually": "cron(0 0 1 1 ? *)",
}

// ScheduleExpression turns a task's schedule (5-field cron in UTC, or an
// @-descriptor) into an EventBridge Scheduler expression. EventBridge wants
// one of day-of-month and day-of-week left as ?, counts Sunday as 1, and has
// no steps in day-of-week; a schedule that needs them is refused.
func ScheduleExpression(schedule string) (string, error) {
	if expr, ok := scheduleDescriptors[schedule]; ok {
		return expr, nil
	}
	f := strings.Fields(schedule)
	if len(f) != 5 {
		return "", fmt.Errorf("EventBridge Scheduler needs 5 cron fields or @hourly, @daily, @weekly, @monthly, @yearly, not %q", schedule)
	}
	minute, hour, dom, month, dow := f[0], f[1], f[2], f[3], f[4]
	switch {
	case dom != "*" && dow != "*":
		return "", fmt.Errorf("EventBridge Scheduler cannot run on a day of the month or a day of the week (%q matches either); keep one and write * for the other", schedule)
	case dow == "*":
		dow = "?"
	default:
		dom = "?"
		d, err := eventBridgeDays(dow)
		if err != nil {
			return "", fmt.Errorf("%w in %q", err, schedule)
		}
		dow = d
	}
	return fmt.Sprintf("cron(%s %s %s %s %s *)", minute, hour, dom, month, dow), nil
}

// dayNames are cron's day-of-week numbers 0-7 (0 and 7 Sunday) as names,
// which EventBridge reads the same way cron does.
var dayNames = []string{"SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN"}

// eventBridgeDays rewrites a cron day-of-week field with day names, so
// EventBridge's numbering (Sunday 1) never comes into it.
func eventBridgeDays(field string) (string, error) {
	if strings.Contains(field, "/") {
		return "", errors.New("EventBridge Scheduler has no steps (/) in the day of the week; list the days, e.g. MON,WED,FRI")
	}
	items := strings.Split(field, ",")
	for i, item := range items {
		lo, hi, isRange := strings.Cut(item, "-")
		l, err := dayName(lo)
		if err != nil {
			return "", err
		}
		if !isRange {
			items[i] = l
			continue
		}
		h, err := dayName(hi)
		if err != nil {
			return "", err
		}
		if hi == "7" {
			// 1-7 is Monday to Sunday; EventBridge's ranges do not wrap.
			if l == "SUN" {
				items[i] = "SUN-SAT"
			} else {
				items[i] = l + "-SAT,SUN"
			}
			continue
		}
		items[i] = l + "-" + h
	}
	return strings.Join(items, ","), nil
}

func dayName(s string) (string, error) {
	if len(s) == 1 && s[0] >= '0' && s[0] <= '7' {
		return dayNames[s[0]-'0'], nil
	}
	up := strings.ToUpper(s)
	for _, n := range dayNames {
		if up == n {
			return up, nil
		}
	}
	return "", fmt.Errorf("unknown day of the week %q", s)
}

func serviceNames(sp *spec.Spec) []string {
	if len(sp.ServiceOrder) == len(sp.Services) {
		return sp.ServiceOrder
	}
	return sortedKeys(sp.Services)
}

func taskNames(sp *spec.Spec) []string {
	if len(sp.TaskOrder) == len(sp.Tasks) {
		return sp.TaskOrder
	}
	return sortedKeys(sp.Tasks)
}

func sortedKeys[V any](m map[string]V) []string {
	return slices.Sorted(maps.Keys(m))
}

// PathPatterns are the ALB path-pattern values of a route prefix, matching
// as the local edge does: on a segment boundary, so /api takes /api and
// /api/x but not /apiary.
func PathPatterns(prefix string) []string {
	if prefix == "/" {
		return []string{"/*"}
	}
	if strings.HasSuffix(prefix, "/") {
		return []string{prefix + "*"}
	}
	return []string{prefix, prefix + "/*"}
}

// AutoScaling is what Application Auto Scaling gets for a service with
// scale:.
type AutoScaling struct {
	Min, Max int
	// RequestsPerTarget is the target tracking value on
	// ALBRequestCountPerTarget (requests per target per minute); 0 for a
	// worker, which has no requests to track and runs Min tasks, as on the
	// local engine.
	RequestsPerTarget float64
}

// Scaling maps scale: onto Application Auto Scaling, or nil without it.
// The ALB counts requests per target per minute, not requests in flight,
// so concurrency N is taken as N requests a second (requests of about a
// second each, the local autoscaler's unit): N*60 a minute.
func Scaling(svc *spec.Service) *AutoScaling {
	if svc.Scale == nil {
		return nil
	}
	a := &AutoScaling{Min: max(svc.Scale.Min, 1), Max: svc.Scale.Max}
	if svc.Port != 0 {
		a.RequestsPerTarget = float64(svc.Scale.Concurrency * 60)
	}
	return a
}

// entrypoint refuses what a CloudFront distribution cannot carry of an
// edge: entrypoint (internal/aws/cdn): an origin that is another app's
// service, a plain-HTTP URL, or a service of this app with no port. What
// CloudFront carries differently (cdn.Unmapped) is printed, not refused.
func (c *checker) entrypoint(ep *spec.Entrypoint) {
	path := "edge." + ep.Name
	check := func(field, ref string) {
		switch {
		case ref == "":
		case spec.IsOriginURL(ref):
			if !strings.HasPrefix(ref, "https://") {
				c.fail(field, "CloudFront reaches URL origins over HTTPS only; write %s", "https://"+strings.TrimPrefix(ref, "http://"))
			}
		case strings.Contains(ref, "/"):
			c.fail(field, "%s is a service of another app; on AWS name it by its URL (https://...)", ref)
		default:
			svc := c.sp.Services[ref]
			if svc == nil {
				c.fail(field, "%s is not a service of %s", ref, c.sp.App)
			} else if svc.Port == 0 {
				c.fail(field, "service %s has no port: CloudFront reaches a service through the load balancer; give it a port", ref)
			}
		}
	}
	check(path+".origin", ep.Origin)
	if ep.Failover != nil {
		check(path+".failover", ep.Failover.Origin)
	}
	for i, r := range ep.Routes {
		check(fmt.Sprintf("%s.routes[%d].origin", path, i), r.Origin)
	}
}
