package apprunnercheck

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/berth-dev/berth/internal/spec"
)

// Finding is one thing a service needs that App Runner cannot give it.
type Finding struct {
	// Service is the service the finding is about (the one on App Runner),
	// even when Key is another service's line that reaches it.
	Service string `json:"service"`
	// Key is the dotted spec key ("services.web.sidecars"), or
	// "services.NAME" for an observed need.
	Key string `json:"key"`
	// File and Line place Key in the spec file (Line 0: not written there).
	File string `json:"file,omitempty"`
	Line int    `json:"line,omitempty"`
	// Lacks says what App Runner lacks or does instead, Why what that means
	// for this service and what would serve it.
	Lacks string `json:"lacks"`
	Why   string `json:"why"`
	// Limit is the App Runner limit cited, Source its AWS page.
	Limit  LimitID `json:"limit"`
	Source string  `json:"source"`
	// Constraint is true when the finding forces the service off App
	// Runner (to Fargate); false for a note.
	Constraint bool `json:"constraint"`
	// Evidence is what an observed need was seen in, as its caller said.
	Evidence string `json:"evidence,omitempty"`
}

// String renders a finding on one line, as "berth check" prints it:
// "berth.yaml:12: services.web.sidecars: App Runner runs one container per
// instance; ... (forces Fargate) — https://...".
func (f Finding) String() string {
	var b strings.Builder
	if f.File != "" {
		b.WriteString(f.File)
		if f.Line > 0 {
			b.WriteString(":" + strconv.Itoa(f.Line))
		}
		b.WriteString(": ")
	}
	b.WriteString(f.Key + ": " + f.Lacks)
	if f.Why != "" {
		b.WriteString("; " + f.Why)
	}
	if f.Evidence != "" {
		b.WriteString(" [observed: " + f.Evidence + "]")
	}
	if f.Constraint {
		b.WriteString(" (forces Fargate)")
	} else {
		b.WriteString(" (note)")
	}
	if f.Source != "" {
		b.WriteString(" — " + f.Source)
	}
	return b.String()
}

// Need is something a running service was observed to need that the spec
// cannot say: a caller that reads CloudWatch metrics and logs (or a person
// who knows) passes it to Check as an Observed.
type Need string

// The needs Check knows. Each is a constraint: App Runner cannot serve it
// and Fargate behind an ALB can.
const (
	// NeedWebSockets: clients open WebSocket connections (Upgrade:
	// websocket requests, 101 responses).
	NeedWebSockets Need = "websockets"
	// NeedLongRequests: requests, uploads or streams (server-sent events,
	// long polls) that run past 120 s.
	NeedLongRequests Need = "long-requests"
	// NeedHTTP2: end-to-end HTTP/2 to the container, such as gRPC.
	NeedHTTP2 Need = "http2"
	// NeedExec: people open a shell or run commands in live instances.
	NeedExec Need = "exec"
	// NeedARM64: the image is built for linux/arm64 only.
	NeedARM64 Need = "arm64"
	// NeedBackgroundWork: the service works outside requests (consumes a
	// queue, runs timers), which needs CPU while no request is in flight.
	NeedBackgroundWork Need = "background-work"
)

// Needs are every Need, in the order the CLI's help lists them.
var Needs = []Need{NeedWebSockets, NeedLongRequests, NeedHTTP2, NeedExec, NeedARM64, NeedBackgroundWork}

// ParseNeed reads a Need by its name.
func ParseNeed(s string) (Need, error) {
	for _, n := range Needs {
		if string(n) == s {
			return n, nil
		}
	}
	return "", fmt.Errorf("unknown need %q: use one of %s", s, needNames())
}

func needNames() string {
	names := make([]string, len(Needs))
	for i, n := range Needs {
		names[i] = string(n)
	}
	return strings.Join(names, ", ")
}

// Observed is a need seen on a running service.
type Observed struct {
	Service string `json:"service"`
	Need    Need   `json:"need"`
	// Evidence says where it was seen ("CloudWatch: 1,204 requests with
	// Upgrade: websocket in 7 days"), printed with the finding.
	Evidence string `json:"evidence,omitempty"`
}

// Options widen or narrow what Check looks at.
type Options struct {
	// All checks every service, asking of those not on App Runner whether
	// they could run there.
	All bool
	// Services, when set, checks only these services, whatever they run on.
	Services []string
	// Observed are needs seen on running services (see Need).
	Observed []Observed
}

// Check returns, for each service of sp with apprunner:, every spec key App
// Runner cannot serve in environment env, each with its line, the cited
// limit and whether it forces the service to Fargate. env names one of
// sp's AWS environments (the caller checks it with sp.Environment); only its
// cluster is used, to say where the service's tasks run.
func Check(sp *spec.Spec, env string) []Finding {
	return CheckWith(sp, env, Options{})
}

// CheckWith is Check for the services o selects, with o's observed needs.
// Findings come service by service in the file's order.
func CheckWith(sp *spec.Spec, env string, o Options) []Finding {
	c := &checker{sp: sp, cluster: "berth-" + sp.App}
	if e, err := sp.Environment(env); err == nil && e != nil && e.Cluster != "" {
		c.cluster = e.Cluster
	}
	for _, name := range Selected(sp, o) {
		svc := sp.Services[name]
		start := len(c.out)
		c.service(svc)
		for _, ob := range o.Observed {
			if ob.Service == name {
				c.observed(svc, ob)
			}
		}
		// A service's findings read top to bottom, as the file does.
		slices.SortStableFunc(c.out[start:], func(a, b Finding) int { return a.Line - b.Line })
	}
	return c.out
}

// Selected are the services CheckWith looks at under o, in the file's
// order: o.Services when set, else every service with o.All, else those
// with apprunner:.
func Selected(sp *spec.Spec, o Options) []string {
	var out []string
	for _, name := range serviceNames(sp) {
		svc := sp.Services[name]
		switch {
		case svc == nil:
		case len(o.Services) > 0:
			if slices.Contains(o.Services, name) {
				out = append(out, name)
			}
		case o.All || svc.AppRunner != "":
			out = append(out, name)
		}
	}
	return out
}

// Fits reports whether service has no constraint among findings.
func Fits(findings []Finding, service string) bool {
	for _, f := range findings {
		if f.Service == service && f.Constraint {
			return false
		}
	}
	return true
}

type checker struct {
	sp      *spec.Spec
	cluster string
	out     []Finding
}

// add records a finding about service at key.
func (c *checker) add(service, key string, id LimitID, constraint bool, lacks, why string) {
	c.out = append(c.out, Finding{
		Service: service, Key: key, File: c.sp.File, Line: c.sp.Line(key),
		Lacks: lacks, Why: why, Limit: id, Source: LimitOf(id).Source, Constraint: constraint,
	})
}

func (c *checker) service(svc *spec.Service) {
	name := svc.Name
	path := "services." + name
	if svc.Port == 0 {
		c.add(name, path+".port", LimitWebOnly, true,
			"App Runner runs only web services that answer HTTP on a port",
			"a worker with no port runs as an ECS service on Fargate")
	}
	if n := len(svc.Sidecars); n > 0 {
		c.add(name, path+".sidecars", LimitOneContainer, true,
			"App Runner runs one container per instance, no sidecars",
			fmt.Sprintf("%s has %d (%s); Fargate runs them in the same task", name, n, strings.Join(sidecarNames(svc), ", ")))
	}
	switch svc.Platform {
	case "", "linux/amd64":
	case "linux/arm64", "linux/arm64/v8":
		c.add(name, path+".platform", LimitArchitecture, true,
			"App Runner runs linux/amd64 images only, no ARM64",
			"Fargate runs linux/arm64 (Graviton); or build for linux/amd64 to stay")
	default:
		c.add(name, path+".platform", LimitArchitecture, true,
			"App Runner runs linux/amd64 images only, not "+svc.Platform, "build for linux/amd64")
	}
	c.size(svc)
	c.scale(svc)
	if svc.Port != 0 {
		c.requests(svc)
		c.health(svc)
	}
	c.lb(svc)
	c.routes(svc)
	c.reachedByName(svc)
	c.reachesByName(svc)
	c.tasks(svc)
	c.env(svc)
}

// size compares cpu and memory with the sizes App Runner sells.
func (c *checker) size(svc *spec.Service) {
	if svc.CPU == 0 && svc.Memory == 0 {
		return
	}
	path := "services." + svc.Name
	key := path + ".memory"
	if svc.CPU != 0 && (svc.Memory == 0 || !offersCPU(svc.CPU)) {
		key = path + ".cpu"
	}
	want := wanted(svc)
	s, exact, ok := Fit(svc.CPU, svc.Memory)
	switch {
	case !ok:
		c.add(svc.Name, key, LimitInstanceSizes, true,
			"App Runner's largest instance is "+largest().String(),
			want+" needs Fargate (up to 16 vCPU / 120 GB)")
	case !exact:
		c.add(svc.Name, key, LimitInstanceSizes, false,
			want+" is not an App Runner size",
			"App Runner would run it as "+s.String()+", the smallest size that holds it"+neighbours(s))
	}
}

func offersCPU(cpu float64) bool {
	for _, s := range Sizes {
		if float64(s.MilliCPU) == cpu*1000 {
			return true
		}
	}
	return false
}

// wanted renders a service's cpu and memory as the spec asks them.
func wanted(svc *spec.Service) string {
	var parts []string
	if svc.CPU != 0 {
		parts = append(parts, "cpu "+strconv.FormatFloat(svc.CPU, 'f', -1, 64))
	}
	if svc.Memory != 0 {
		parts = append(parts, "memory "+strconv.FormatFloat(float64(svc.Memory)/(1<<30), 'f', -1, 64)+" GiB")
	}
	return strings.Join(parts, " with ")
}

// neighbours names the sizes next to s, for a user choosing another.
func neighbours(s Size) string {
	i := slices.Index(Sizes, s)
	var n []string
	if i > 0 {
		n = append(n, Sizes[i-1].String())
	}
	if i+1 < len(Sizes) {
		n = append(n, Sizes[i+1].String())
	}
	if len(n) == 0 {
		return ""
	}
	return " (nearest others: " + strings.Join(n, ", ") + ")"
}

// scale compares instances and scale: with App Runner's auto scaling.
func (c *checker) scale(svc *spec.Service) {
	path := "services." + svc.Name
	if svc.Scale == nil {
		if svc.Instances > MaxMinSize {
			c.add(svc.Name, path+".instances", LimitMinSize, true,
				fmt.Sprintf("App Runner keeps at most %d provisioned instances (MinSize)", MaxMinSize),
				fmt.Sprintf("%d fixed instances need Fargate", svc.Instances))
		}
		return
	}
	sc := svc.Scale
	switch {
	case sc.Min == 0:
		c.add(svc.Name, path+".scale.min", LimitMinSize, false,
			"App Runner keeps at least 1 provisioned instance, it cannot scale to zero",
			"idle instances keep only their memory (billed) and get no CPU, the nearest App Runner comes; Fargate cannot scale to zero either, so this does not call for a move")
	case sc.Min > MaxMinSize:
		c.add(svc.Name, path+".scale.min", LimitMinSize, true,
			fmt.Sprintf("App Runner keeps at most %d provisioned instances (MinSize)", MaxMinSize),
			fmt.Sprintf("min %d needs Fargate", sc.Min))
	}
	if sc.Max > DefaultMaxSize {
		c.add(svc.Name, path+".scale.max", LimitMaxSize, false,
			fmt.Sprintf("App Runner scales to %d instances unless the account's quota was raised", DefaultMaxSize),
			fmt.Sprintf("max %d needs that quota raised (berth cannot see it without AWS), or Fargate", sc.Max))
	}
	if sc.Concurrency > MaxConcurrency {
		c.add(svc.Name, path+".scale.concurrency", LimitMaxConcurrency, true,
			fmt.Sprintf("App Runner scales out at %d concurrent requests per instance at most", MaxConcurrency),
			fmt.Sprintf("concurrency %d needs Fargate, or concurrency: %d and more instances", sc.Concurrency, MaxConcurrency))
	}
}

// requests compares request timeouts (the service's and those of the edge
// entrypoints that send to it) with App Runner's 120 s.
func (c *checker) requests(svc *spec.Service) {
	path := "services." + svc.Name
	if c.sp.Written(path+".timeout") && svc.Timeout > MaxRequestTimeout {
		c.add(svc.Name, path+".timeout", LimitRequestTimeout, true,
			"App Runner ends every request after "+secs(MaxRequestTimeout),
			"requests allowed "+secs(svc.Timeout)+" would be cut; an ALB's idle timeout goes to 4000s")
	}
	for _, en := range entrypointNames(c.sp) {
		e := c.sp.Edge[en]
		if e == nil {
			continue
		}
		ep := "edge." + en
		if c.origin(e.Origin) == svc.Name && c.sp.Written(ep+".timeout") && e.Timeout > MaxRequestTimeout {
			c.add(svc.Name, ep+".timeout", LimitRequestTimeout, true,
				"App Runner ends every request after "+secs(MaxRequestTimeout),
				"entrypoint "+en+" lets requests to "+svc.Name+" run "+secs(e.Timeout))
		}
		for i, r := range e.Routes {
			origin := r.Origin
			if origin == "" {
				origin = e.Origin
			}
			rk := fmt.Sprintf("%s.routes[%d].timeout", ep, i)
			if c.origin(origin) == svc.Name && c.sp.Written(rk) && r.Timeout > MaxRequestTimeout {
				c.add(svc.Name, rk, LimitRequestTimeout, true,
					"App Runner ends every request after "+secs(MaxRequestTimeout),
					"entrypoint "+en+" lets requests to "+r.Path+" run "+secs(r.Timeout))
			}
		}
	}
}

// origin is the service of this app an edge origin names, or "".
func (c *checker) origin(o string) string {
	if app, name, ok := strings.Cut(o, "/"); ok && !strings.Contains(o, "://") {
		if app == c.sp.App {
			return name
		}
		return ""
	}
	if _, ok := c.sp.Services[o]; ok {
		return o
	}
	return ""
}

// health compares health check values the user wrote with App Runner's
// ranges; App Runner would clamp them, so only a timeout it would cut short
// is a constraint.
func (c *checker) health(svc *spec.Service) {
	path := "services." + svc.Name + ".health"
	h := svc.Health
	for _, d := range []struct {
		key string
		v   time.Duration
	}{{"interval", h.Interval}, {"timeout", h.Timeout}} {
		k := path + "." + d.key
		if !c.sp.Written(k) || inSeconds(d.v, minHealthSeconds, maxHealthSeconds) {
			continue
		}
		if d.key == "timeout" && d.v > maxHealthSeconds*time.Second {
			c.add(svc.Name, k, LimitHealthCheck, true,
				fmt.Sprintf("App Runner waits %ds at most for a health check", maxHealthSeconds),
				"a check that needs "+secs(d.v)+" would fail and take instances out; an ALB waits up to 120s")
			continue
		}
		c.add(svc.Name, k, LimitHealthCheck, false,
			fmt.Sprintf("App Runner's health check %s is %d-%ds in whole seconds", d.key, minHealthSeconds, maxHealthSeconds),
			"it would use "+secs(clampSeconds(d.v, minHealthSeconds, maxHealthSeconds)))
	}
	for _, t := range []struct {
		key string
		v   int
	}{{"healthy", h.Healthy}, {"unhealthy", h.Unhealthy}} {
		k := path + "." + t.key
		if c.sp.Written(k) && (t.v < minThreshold || t.v > maxThreshold) {
			c.add(svc.Name, k, LimitHealthCheck, false,
				fmt.Sprintf("App Runner counts %d-%d checks in a row", minThreshold, maxThreshold),
				fmt.Sprintf("it would use %s: %d", t.key, min(max(t.v, minThreshold), maxThreshold)))
		}
	}
}

func inSeconds(d time.Duration, lo, hi int) bool {
	return d%time.Second == 0 && d >= time.Duration(lo)*time.Second && d <= time.Duration(hi)*time.Second
}

func clampSeconds(d time.Duration, lo, hi int) time.Duration {
	d = (d + time.Second - 1).Truncate(time.Second)
	return min(max(d, time.Duration(lo)*time.Second), time.Duration(hi)*time.Second)
}

// lb looks at the load-balancer controls, which App Runner has none of.
func (c *checker) lb(svc *spec.Service) {
	path := "services." + svc.Name
	if svc.Sticky != nil {
		c.add(svc.Name, path+".sticky", LimitStateless, true,
			"App Runner has no sticky sessions",
			"clients that must return to the instance that served them need an ALB's stickiness")
	}
	if svc.SlowStart != 0 {
		c.add(svc.Name, path+".slow_start", LimitNoLBControls, false,
			"App Runner has no slow start", "new instances get their full share of requests at once")
	}
	if svc.Drain != 0 {
		why := "in-flight requests are not given " + secs(svc.Drain) + " to finish"
		if svc.Drain > MaxRequestTimeout {
			why = "no request outlives App Runner's " + secs(MaxRequestTimeout) + " anyway"
		}
		c.add(svc.Name, path+".drain", LimitNoLBControls, false, "App Runner has no drain setting", why)
	}
	if svc.MaxConcurrency != nil {
		c.add(svc.Name, path+".max_concurrency", LimitNoLBControls, false,
			"App Runner neither caps nor queues requests per instance",
			"its MaxConcurrency only scales out; an ALB cannot cap or queue either, so this does not call for a move")
	}
	if svc.Pids != 0 {
		c.add(svc.Name, path+".pids", LimitNoLBControls, false, "App Runner has no process limit", "ignored there, as on Fargate")
	}
}

// routes finds per-path routing: the service's own routes to others, and
// other services' routes to it.
func (c *checker) routes(svc *spec.Service) {
	path := "services." + svc.Name
	for i, r := range svc.Routes {
		c.add(svc.Name, fmt.Sprintf("%s.routes[%d]", path, i), LimitNoRouting, true,
			"App Runner cannot route a path to another service",
			fmt.Sprintf("%s to %s needs an ALB listener rule (Fargate), or a CloudFront behaviour in front", r.Path, r.Service))
	}
	for _, other := range serviceNames(c.sp) {
		o := c.sp.Services[other]
		if o == nil || other == svc.Name {
			continue
		}
		for i, r := range o.Routes {
			if r.Service == svc.Name {
				c.add(svc.Name, fmt.Sprintf("services.%s.routes[%d].service", other, i), LimitNoRouting, true,
					"another load balancer cannot forward to an App Runner service's instances",
					fmt.Sprintf("%s routes %s to %s, which needs %s in a target group (Fargate)", other, r.Path, svc.Name, svc.Name))
			}
		}
	}
}

// reachedByName finds other services (and their sidecars) whose
// environment calls this one by its private name.
func (c *checker) reachedByName(svc *spec.Service) {
	re := nameRE(svc.Name, c.sp.App)
	for _, other := range serviceNames(c.sp) {
		o := c.sp.Services[other]
		if o == nil || other == svc.Name {
			continue
		}
		c.envRefs("services."+other, o.Env, re, func(key, val string) {
			c.add(svc.Name, key, LimitNoPrivateName, true,
				"an App Runner service has no name on the app's private network",
				fmt.Sprintf("%s calls %s by name (%s); keep that on Fargate, or call its URL (private through a VPC interface endpoint)", other, svc.Name, val))
		})
		for _, sn := range sidecarNames(o) {
			c.envRefs("services."+other+".sidecars."+sn, o.Sidecars[sn].Env, re, func(key, val string) {
				c.add(svc.Name, key, LimitNoPrivateName, true,
					"an App Runner service has no name on the app's private network",
					fmt.Sprintf("%s's sidecar %s calls %s by name (%s)", other, sn, svc.Name, val))
			})
		}
	}
}

// reachesByName finds this service calling others by their private name,
// which App Runner reaches only through a VPC connector.
func (c *checker) reachesByName(svc *spec.Service) {
	for _, other := range serviceNames(c.sp) {
		if other == svc.Name || c.sp.Services[other] == nil {
			continue
		}
		c.envRefs("services."+svc.Name, svc.Env, nameRE(other, c.sp.App), func(key, val string) {
			c.add(svc.Name, key, LimitVPCEgress, false,
				"App Runner reaches the app's private network only through a VPC connector",
				fmt.Sprintf("calling %s by name (%s) needs the service's VPC connector in the environment's VPC", other, val))
		})
	}
}

// envRefs calls fn for each variable of env (in name order) whose value
// matches re.
func (c *checker) envRefs(path string, env map[string]string, re *regexp.Regexp, fn func(key, val string)) {
	for _, k := range slices.Sorted(maps.Keys(env)) {
		if re.MatchString(env[k]) {
			fn(path+".env."+k, env[k])
		}
	}
}

// nameRE matches a value that calls service by its private name: a URL
// whose host is the name (http://api, http://api:9000/x), host:port
// (api:9000), or the internal name through the edge (api.APP.internal).
// A bare word is not a call: ROLE=api says nothing about the network.
func nameRE(service, app string) *regexp.Regexp {
	n := regexp.QuoteMeta(service)
	internal := n + `\.` + regexp.QuoteMeta(app) + `\.internal`
	end := `([/?#:\s,;]|$)`
	return regexp.MustCompile(`(://(` + internal + `|` + n + `)` + end + `)|((^|[\s,;@/=])` + n + `:[0-9]+` + end + `)|((^|[\s,;@/=])` + internal + end + `)`)
}

// tasks notes what runs on the ECS cluster rather than App Runner: named
// tasks of the service and its release commands.
func (c *checker) tasks(svc *spec.Service) {
	if len(svc.Release) > 0 {
		c.add(svc.Name, "services."+svc.Name+".release", LimitNoTasks, false,
			"App Runner runs no one-off commands",
			"the release command runs as an ECS task on cluster "+c.cluster+" with "+svc.Name+"'s image, env and secrets before the deploy")
	}
	for _, tn := range taskNames(c.sp) {
		t := c.sp.Tasks[tn]
		if t == nil || t.Service != svc.Name {
			continue
		}
		what := "runs"
		if t.Schedule != "" {
			what = "runs on its schedule (EventBridge Scheduler)"
		}
		c.add(svc.Name, "tasks."+tn+".service", LimitNoTasks, false,
			"App Runner runs no one-off or scheduled tasks",
			"task "+tn+" "+what+" on ECS cluster "+c.cluster+" with "+svc.Name+"'s image, env and secrets")
	}
}

// env checks the lengths App Runner takes.
func (c *checker) env(svc *spec.Service) {
	for _, k := range slices.Sorted(maps.Keys(svc.Env)) {
		if len(k) > MaxEnvValue || len(svc.Env[k]) > MaxEnvValue {
			c.add(svc.Name, "services."+svc.Name+".env."+k, LimitEnvironment, true,
				fmt.Sprintf("App Runner takes environment names and values of %d characters at most", MaxEnvValue),
				fmt.Sprintf("%s is %d characters; Fargate's task definition takes it, or move it to a secret", k, len(svc.Env[k])))
		}
	}
}

// observed turns an observed need into a finding.
func (c *checker) observed(svc *spec.Service, ob Observed) {
	var (
		id         LimitID
		lacks, why string
		constraint = true
		key        = "services." + svc.Name
		onFargate  = "; Fargate behind an ALB serves it"
	)
	switch ob.Need {
	case NeedWebSockets:
		id, lacks, why = LimitWebSockets, "App Runner has no WebSockets", "clients open WebSocket connections"+onFargate
	case NeedLongRequests:
		id, lacks, why = LimitRequestTimeout, "App Runner ends every request after "+secs(MaxRequestTimeout), "requests or streams run longer"+onFargate
	case NeedHTTP2:
		id, lacks, why = LimitHTTPVersions, "App Runner speaks only HTTP/1.x to the container", "the service needs end-to-end HTTP/2 (gRPC)"+onFargate
	case NeedExec:
		id, lacks, why = LimitExec, "App Runner has no exec into instances", "people run commands in live instances; berth exec does it on Fargate"
	case NeedARM64:
		id, lacks, why = LimitArchitecture, "App Runner runs linux/amd64 images only", "the image is built for linux/arm64 only; Fargate runs ARM64"
	case NeedBackgroundWork:
		id, lacks, why = LimitIdleCPU, "App Runner gives CPU to instances serving requests, not to idle ones", "the service works outside requests"+onFargate
	default:
		lacks, why, constraint = "unknown observed need "+strconv.Quote(string(ob.Need)), "not checked; known needs: "+needNames(), false
	}
	source := ""
	if id != "" {
		source = LimitOf(id).Source
	}
	f := Finding{
		Service: svc.Name, Key: key, File: c.sp.File, Line: c.sp.Line(key),
		Lacks: lacks, Why: why, Limit: id, Source: source, Constraint: constraint, Evidence: ob.Evidence,
	}
	c.out = append(c.out, f)
}

func serviceNames(sp *spec.Spec) []string {
	if len(sp.ServiceOrder) == len(sp.Services) {
		return sp.ServiceOrder
	}
	return slices.Sorted(maps.Keys(sp.Services))
}

func taskNames(sp *spec.Spec) []string {
	if len(sp.TaskOrder) == len(sp.Tasks) {
		return sp.TaskOrder
	}
	return slices.Sorted(maps.Keys(sp.Tasks))
}

func entrypointNames(sp *spec.Spec) []string {
	if len(sp.EdgeOrder) == len(sp.Edge) {
		return sp.EdgeOrder
	}
	return slices.Sorted(maps.Keys(sp.Edge))
}

func sidecarNames(svc *spec.Service) []string {
	if len(svc.SidecarOrder) == len(svc.Sidecars) {
		return svc.SidecarOrder
	}
	return slices.Sorted(maps.Keys(svc.Sidecars))
}
