package spec

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
)

// Messages shared by the decoder and Validate, so a rule reads the same
// whichever of them catches it.
const (
	// msgNUL refuses a NUL byte in any string: the engine passes strings
	// to a process as C strings (argv, environ), where a NUL ends them, so
	// the container would not start, far from the line that caused it.
	msgNUL          = `contains a NUL byte (\0), which a process cannot receive in a variable or argument; remove it`
	msgHealthWorker = "needs a port: a service without a port is a worker, and there is nothing to check"
	msgNeedsPort    = "needs a port: a service without a port is a worker and receives no HTTP"
)

// Validate checks a spec as a whole: every value, and every rule that
// relates two fields or two services. Parse calls it after decoding and
// applying defaults; call it again after changing a parsed spec (an --image
// override, say) or on a spec built in code. It returns the first problem as
// an *Error, with the line when the spec came from Parse.
//
// Validate expects defaults to be applied: a zero health interval or request
// timeout is an error here, not "use the default".
func (s *Spec) Validate() error {
	v := &validator{s: s, lines: s.lines}
	return v.spec()
}

// Line returns the line of the spec file where field (a dotted path such
// as "services.web.memory") or its nearest written ancestor is, or 0 for a
// spec not read from a file. Checks that need the machine (the daemon's
// memory, the hosts other apps hold) use it to point at the line as
// Validate does.
func (s *Spec) Line(field string) int {
	return (&validator{s: s, lines: s.lines}).line(field)
}

// Written reports whether field (a dotted path such as
// "services.web.health.interval") was written in the spec file, as opposed
// to defaulted or built in code. An engine that cannot honour a value uses
// it to refuse what the user wrote and adapt what berth chose.
func (s *Spec) Written(field string) bool {
	_, ok := s.lines[field]
	return ok
}

// FieldError builds an *Error for field of the spec, at its line, for
// checks made outside this package.
func (s *Spec) FieldError(field, format string, args ...any) *Error {
	return (&validator{s: s, lines: s.lines}).fail(field, format, args...)
}

// validator carries the spec and its line table through the checks.
type validator struct {
	s     *Spec
	lines map[string]int
}

// fail builds an *Error for field, at the line of the field or, failing
// that, of its nearest ancestor that was written in the file (a defaulted
// scale.min points at scale:).
func (v *validator) fail(field, format string, args ...any) *Error {
	return &Error{File: v.s.File, Line: v.line(field), Field: field, Msg: fmt.Sprintf(format, args...)}
}

func (v *validator) line(field string) int {
	for field != "" {
		if l, ok := v.lines[field]; ok {
			return l
		}
		field = field[:max(strings.LastIndexByte(field, '.'), strings.LastIndexByte(field, '['), 0)]
	}
	return 0
}

func (v *validator) spec() error {
	s := v.s
	if msg := checkName("app", s.App); msg != "" {
		return v.fail("app", "%s", msg)
	}
	if len(s.Services) == 0 {
		return v.fail("services", "needs at least one service")
	}
	// Sidecar names share one namespace with services across the app: they
	// become container names and network aliases on the app's network.
	owner := map[string]string{} // sidecar name -> its service
	domainOwner := map[string]string{}
	for _, name := range ordered(s.ServiceOrder, s.Services) {
		if err := v.service(name, s.Services[name], owner, domainOwner); err != nil {
			return err
		}
	}
	for _, name := range ordered(s.TaskOrder, s.Tasks) {
		if err := v.task(name, s.Tasks[name]); err != nil {
			return err
		}
	}
	if err := v.edge(); err != nil {
		return err
	}
	return v.environments()
}

func (v *validator) service(name string, svc *Service, owner, domainOwner map[string]string) error {
	path := join("services", name)
	if msg := checkName("service", name); msg != "" {
		return v.fail("services", "%s", msg)
	}
	if svc == nil {
		return v.fail(path, "is empty; it needs image or build")
	}
	if svc.Name != name {
		return v.fail(path, "name %q does not match its key %q", svc.Name, name)
	}
	if err := v.container(path, svc.Image, svc.Build, svc.Command, svc.Env, svc.Secrets, svc.CPU, svc.Memory); err != nil {
		return err
	}
	if svc.Port != 0 {
		if msg := checkPort(svc.Port); msg != "" {
			return v.fail(join(path, "port"), "%s", msg)
		}
	}
	if svc.Platform != "" {
		if msg := checkPlatform(svc.Platform); msg != "" {
			return v.fail(join(path, "platform"), "%s", msg)
		}
	}
	if err := v.scale(path, svc); err != nil {
		return err
	}
	if err := v.health(path, svc); err != nil {
		return err
	}
	if msg := checkDuration(svc.Timeout); msg != "" {
		return v.fail(join(path, "timeout"), "%s", msg)
	}
	if svc.Release != nil && len(svc.Release) == 0 {
		return v.fail(join(path, "release"), "must be a non-empty list of strings")
	}
	if err := v.noNUL(join(path, "release"), svc.Release); err != nil {
		return err
	}
	if err := v.domains(path, svc, domainOwner); err != nil {
		return err
	}
	if err := v.routes(path, svc); err != nil {
		return err
	}
	if err := v.lb(path, svc); err != nil {
		return err
	}
	if err := v.sidecars(path, svc, owner); err != nil {
		return err
	}
	return v.mainDependsOn(path, svc)
}

// container checks what services and sidecars share: what runs and with
// which limits.
func (v *validator) container(path, image string, build *Build, command []string, env map[string]string, secrets []string, cpu float64, memory int64) error {
	switch {
	case image != "" && build != nil:
		return v.fail(path, "has both image and build; use image for an image the engine has, or build to build one, not both")
	case image == "" && build == nil:
		return v.fail(path, "needs image or build: image: NAME[:TAG] for an image the engine has, or build: DIR for a build context")
	case image != "":
		if msg := checkImage(image); msg != "" {
			return v.fail(join(path, "image"), "%s", msg)
		}
	default:
		if err := v.build(join(path, "build"), build); err != nil {
			return err
		}
	}
	if command != nil && len(command) == 0 {
		return v.fail(join(path, "command"), "must be a non-empty list of strings")
	}
	if err := v.noNUL(join(path, "command"), command); err != nil {
		return err
	}
	for _, k := range sortedKeys(env) {
		if msg := checkEnvName(k); msg != "" {
			return v.fail(join(path, "env"), "%s", msg)
		}
		if strings.ContainsRune(env[k], 0) {
			return v.fail(join(join(path, "env"), k), "%s", msgNUL)
		}
	}
	seen := make(map[string]bool, len(secrets))
	for i, name := range secrets {
		f := index(join(path, "secrets"), i)
		if msg := checkEnvName(name); msg != "" {
			return v.fail(f, "%s", msg)
		}
		if seen[name] {
			return v.fail(f, "duplicate secret %q", name)
		}
		seen[name] = true
		if _, ok := env[name]; ok {
			return v.fail(f, "%q is also set in env; a variable is either a secret or plain env, not both", name)
		}
	}
	if cpu != 0 {
		if msg := checkCPU(cpu); msg != "" {
			return v.fail(join(path, "cpu"), "%s", msg)
		}
	}
	if memory != 0 {
		if msg := checkMemory(memory); msg != "" {
			return v.fail(join(path, "memory"), "%s", msg)
		}
	}
	return nil
}

func (v *validator) build(path string, b *Build) error {
	if b.Context == "" {
		return v.fail(join(path, "context"), "must not be empty; use . for the spec's directory")
	}
	if b.Dockerfile == "" {
		return v.fail(join(path, "dockerfile"), "must not be empty")
	}
	for _, k := range sortedKeys(b.Args) {
		if msg := checkEnvName(k); msg != "" {
			return v.fail(join(path, "args"), "%s", msg)
		}
	}
	return nil
}

// scale checks instances and autoscaling, which exclude each other.
func (v *validator) scale(path string, svc *Service) error {
	sc := svc.Scale
	if sc == nil {
		if svc.Instances < 1 || svc.Instances > MaxInstances {
			return v.fail(join(path, "instances"), "%s", rangeMsg(1, MaxInstances))
		}
		return nil
	}
	path = join(path, "scale")
	switch {
	case svc.Instances != 0:
		return v.fail(path, "cannot be used together with instances: set a fixed instances count or scale, not both")
	case sc.Min < 0 || sc.Min > MaxInstances:
		return v.fail(join(path, "min"), "%s", rangeMsg(0, MaxInstances))
	case sc.Max < 1 || sc.Max > MaxInstances:
		return v.fail(join(path, "max"), "%s", rangeMsg(1, MaxInstances))
	case sc.Concurrency < 1 || sc.Concurrency > MaxConcurrency:
		return v.fail(join(path, "concurrency"), "%s", rangeMsg(1, MaxConcurrency))
	case sc.Min > sc.Max:
		return v.fail(path, "min (%d) is greater than max (%d)", sc.Min, sc.Max)
	case sc.Min == 0 && svc.Port == 0:
		return v.fail(join(path, "min"), "0 (scale to zero) needs a port: a worker cannot be woken by a request")
	}
	return nil
}

func (v *validator) health(path string, svc *Service) error {
	h := svc.Health
	path = join(path, "health")
	if h.Path != "" {
		if svc.Port == 0 {
			return v.fail(path, "%s", msgHealthWorker)
		}
		if msg := checkPath(h.Path, true); msg != "" {
			return v.fail(join(path, "path"), "%s", msg)
		}
	}
	if msg := checkDuration(h.Interval); msg != "" {
		return v.fail(join(path, "interval"), "%s", msg)
	}
	if msg := checkDuration(h.Timeout); msg != "" {
		return v.fail(join(path, "timeout"), "%s", msg)
	}
	if h.Healthy < 1 {
		return v.fail(join(path, "healthy"), "%s", rangeMsg(1, math.MaxInt))
	}
	if h.Unhealthy < 1 {
		return v.fail(join(path, "unhealthy"), "%s", rangeMsg(1, math.MaxInt))
	}
	return nil
}

// domains checks custom domains; one host name routes to one service, so a
// domain listed twice in the app is an error.
func (v *validator) domains(path string, svc *Service, domainOwner map[string]string) error {
	path = join(path, "domains")
	if len(svc.Domains) > 0 && svc.Port == 0 {
		return v.fail(path, "%s", msgNeedsPort)
	}
	for i, d := range svc.Domains {
		f := index(path, i)
		if msg := checkDomain(d); msg != "" {
			return v.fail(f, "%s", msg)
		}
		if other, ok := domainOwner[d]; ok {
			if other == svc.Name {
				return v.fail(f, "duplicate domain %q", d)
			}
			return v.fail(f, "domain %q is already used by service %q", d, other)
		}
		domainOwner[d] = svc.Name
	}
	return nil
}

// routes checks that each route sends a path prefix to another service of
// this app that can receive HTTP.
func (v *validator) routes(path string, svc *Service) error {
	path = join(path, "routes")
	if len(svc.Routes) > 0 && svc.Port == 0 {
		return v.fail(path, "%s", msgNeedsPort)
	}
	seen := make(map[string]bool, len(svc.Routes))
	for i, r := range svc.Routes {
		f := index(path, i)
		if msg := checkPath(r.Path, false); msg != "" {
			return v.fail(join(f, "path"), "%s", msg)
		}
		if seen[r.Path] {
			return v.fail(join(f, "path"), "duplicate route path %q", r.Path)
		}
		seen[r.Path] = true
		target, ok := v.s.Services[r.Service]
		switch {
		case r.Service == svc.Name:
			return v.fail(join(f, "service"), "must name another service; requests to %s already reach %s", svc.Name, svc.Name)
		case !ok || target == nil:
			return v.fail(join(f, "service"), "unknown service %q; services are: %s", r.Service, strings.Join(ordered(v.s.ServiceOrder, v.s.Services), ", "))
		case target.Port == 0:
			return v.fail(join(f, "service"), "service %q has no port, so it cannot receive requests", r.Service)
		}
	}
	return nil
}

// sidecars checks each sidecar, then the depends_on graph as a whole.
func (v *validator) sidecars(path string, svc *Service, owner map[string]string) error {
	path = join(path, "sidecars")
	names := ordered(svc.SidecarOrder, svc.Sidecars)
	for _, name := range names {
		f := join(path, name)
		sc := svc.Sidecars[name]
		if msg := checkName("sidecar", name); msg != "" {
			return v.fail(path, "%s", msg)
		}
		if _, ok := v.s.Services[name]; ok {
			return v.fail(f, "sidecar name %q clashes with service %q; sidecars and services share one namespace", name, name)
		}
		if other, ok := owner[name]; ok {
			return v.fail(f, "sidecar name %q is already used by a sidecar of service %q; sidecar names are unique in the app", name, other)
		}
		owner[name] = svc.Name
		if sc == nil {
			return v.fail(f, "is empty; it needs image or build")
		}
		if sc.Name != name {
			return v.fail(f, "name %q does not match its key %q", sc.Name, name)
		}
		if err := v.container(f, sc.Image, sc.Build, sc.Command, sc.Env, sc.Secrets, sc.CPU, sc.Memory); err != nil {
			return err
		}
		if err := v.dependsOn(f, svc, sc); err != nil {
			return err
		}
	}
	return nil
}

// dependsOn checks one sidecar's dependencies against the containers of its
// instance: the service's own container and its other sidecars.
func (v *validator) dependsOn(path string, svc *Service, sc *Sidecar) error {
	path = join(path, "depends_on")
	for _, target := range sortedKeys(sc.DependsOn) {
		cond := sc.DependsOn[target]
		f := join(path, target)
		if msg := checkCondition(cond); msg != "" {
			return v.fail(f, "%s", msg)
		}
		if target == sc.Name {
			return v.fail(f, "a sidecar cannot depend on itself")
		}
		dep, isSidecar := svc.Sidecars[target]
		if target != svc.Name && (!isSidecar || dep == nil) {
			return v.fail(f, "unknown container %q; use %s", target, containerChoices(svc, sc.Name))
		}
		switch cond {
		case ConditionComplete, ConditionSuccess:
			// ECS refuses these on an essential container: one that is
			// expected to exit would take the instance down with it.
			if target == svc.Name {
				return v.fail(f, "%q cannot be used on the service's own container %q: it is essential and never expected to exit", cond, target)
			}
			if dep.Essential {
				return v.fail(f, "%q needs sidecar %q to set essential: false, because a container that is expected to exit cannot be essential", cond, target)
			}
		case ConditionHealthy:
			if isSidecar {
				return v.fail(f, "%q needs a health check, and sidecar %q has none; use start, complete or success", cond, target)
			}
			if svc.Port == 0 {
				return v.fail(f, "%q needs a health check, and %q is a worker without one; use start", cond, target)
			}
		}
	}
	return nil
}

// containerChoices lists what a sidecar may depend on, for messages.
func containerChoices(svc *Service, self string) string {
	var others []string
	for _, n := range ordered(svc.SidecarOrder, svc.Sidecars) {
		if n != self {
			others = append(others, n)
		}
	}
	if len(others) == 0 {
		return fmt.Sprintf("%q (the service itself)", svc.Name)
	}
	return fmt.Sprintf("%q (the service itself) or another sidecar: %s", svc.Name, strings.Join(others, ", "))
}

func (v *validator) task(name string, t *Task) error {
	path := join("tasks", name)
	if msg := checkName("task", name); msg != "" {
		return v.fail("tasks", "%s", msg)
	}
	if t == nil {
		return v.fail(path, "is empty; it needs service and command")
	}
	if t.Name != name {
		return v.fail(path, "name %q does not match its key %q", t.Name, name)
	}
	if t.Service == "" {
		return v.fail(join(path, "service"), "is required: name the service whose image and settings the task runs with")
	}
	if svc, ok := v.s.Services[t.Service]; !ok || svc == nil {
		return v.fail(join(path, "service"), "unknown service %q; services are: %s", t.Service, strings.Join(ordered(v.s.ServiceOrder, v.s.Services), ", "))
	}
	if len(t.Command) == 0 {
		return v.fail(join(path, "command"), "is required: a non-empty list of strings, e.g. [\"./server\", \"migrate\"]")
	}
	if err := v.noNUL(join(path, "command"), t.Command); err != nil {
		return err
	}
	if t.Schedule != "" {
		if msg, cause := checkSchedule(t.Schedule); msg != "" {
			e := v.fail(join(path, "schedule"), "%s", msg)
			e.Err = cause
			return e
		}
	}
	return nil
}

// noNUL refuses a list item with a NUL byte (see msgNUL). The decoder
// refuses them as it reads; this catches a spec built or changed in code.
func (v *validator) noNUL(path string, list []string) error {
	for i, item := range list {
		if strings.ContainsRune(item, 0) {
			return v.fail(index(path, i), "%s", msgNUL)
		}
	}
	return nil
}

// Value checks. Each returns "" when fine, else the message.

func checkPort(p int) string {
	if p < 1 || p > 65535 {
		return rangeMsg(1, 65535)
	}
	return ""
}

func checkCPU(c float64) string {
	switch {
	case math.IsNaN(c) || c <= 0:
		return "must be a number of vCPUs greater than 0, e.g. 0.5"
	case c > MaxCPU:
		return fmt.Sprintf("must be at most %d vCPUs", MaxCPU)
	}
	return ""
}

func checkMemory(b int64) string {
	switch {
	case b <= 0:
		return ErrSizeSyntax.Error()
	case b < MinMemory:
		return fmt.Sprintf("must be at least %s (Docker refuses less)", FormatSize(MinMemory))
	}
	return ""
}

func checkDuration(d time.Duration) string {
	if d <= 0 {
		return "must be greater than 0, e.g. 30s"
	}
	return ""
}

func checkCondition(c Condition) string {
	switch c {
	case ConditionStart, ConditionHealthy, ConditionComplete, ConditionSuccess:
		return ""
	}
	return fmt.Sprintf("unknown condition %q; use start, healthy, complete or success", string(c))
}

// scheduleDescriptors are the @-forms a schedule may use. @every is left out
// on purpose: it counts from when the daemon started, which is not a
// schedule anyone can read off the spec.
var scheduleDescriptors = []string{"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"}

// checkSchedule checks a task schedule: a standard 5-field cron expression in
// UTC, or a descriptor. The cron library also takes TZ= prefixes and
// @every; both are refused so the spec says exactly when a task runs.
func checkSchedule(s string) (string, error) {
	const hint = `use 5 cron fields (minute hour day-of-month month day-of-week, in UTC), e.g. "0 3 * * *", or @hourly, @daily, @weekly, @monthly, @yearly`
	if strings.HasPrefix(s, "@") {
		if !slices.Contains(scheduleDescriptors, s) {
			return fmt.Sprintf("unknown schedule %q; %s", s, hint), nil
		}
		return "", nil
	}
	if n := len(strings.Fields(s)); n != 5 {
		return fmt.Sprintf("invalid schedule %q: has %d fields; %s", s, n, hint), nil
	}
	if _, err := cron.ParseStandard(s); err != nil {
		return fmt.Sprintf("invalid schedule %q: %v", s, err), fmt.Errorf("parse schedule: %w", err)
	}
	return "", nil
}

// ordered returns a map's keys in the recorded file order, or sorted when the
// order does not match the map (a spec built in code), so checks always run
// in a stable order and report the same first error.
func ordered[V any](order []string, m map[string]V) []string {
	if len(order) != len(m) {
		return sortedKeys(m)
	}
	seen := make(map[string]bool, len(order))
	for _, k := range order {
		if _, in := m[k]; !in || seen[k] {
			return sortedKeys(m)
		}
		seen[k] = true
	}
	return order
}

func sortedKeys[V any](m map[string]V) []string {
	return slices.Sorted(maps.Keys(m))
}
