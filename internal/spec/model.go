package spec

import "time"

// Spec is one parsed and validated berth.yaml: one app, its services and its
// named tasks. It is immutable once returned by Parse.
type Spec struct {
	// File is the path the spec was read from, used in error messages.
	File string `json:"-"`
	// App is the application name: [a-z0-9-], 1-40 chars, no leading or
	// trailing '-'.
	App string `json:"app"`
	// Services by name; ServiceOrder keeps the order of the file.
	Services     map[string]*Service `json:"services"`
	ServiceOrder []string            `json:"service_order"`
	// Tasks by name; TaskOrder keeps the order of the file.
	Tasks     map[string]*Task `json:"tasks,omitempty"`
	TaskOrder []string         `json:"task_order,omitempty"`
	// Edge holds the entrypoints by name (edge.go); EdgeOrder keeps the
	// order of the file.
	Edge      map[string]*Entrypoint `json:"edge,omitempty"`
	EdgeOrder []string               `json:"edge_order,omitempty"`
	// Environments by name (environments.go): where besides the local
	// engine the app can run. EnvironmentOrder keeps the order of the file.
	Environments     map[string]*Environment `json:"environments,omitempty"`
	EnvironmentOrder []string                `json:"environment_order,omitempty"`

	// lines maps field paths ("services.web.port") to where Parse read them,
	// so Validate, run again later, can still name the line.
	lines map[string]int
}

// Service is one entry under services:. Defaults are already applied
// (see Defaults) so callers never re-derive them.
type Service struct {
	Name     string            `json:"name"`
	Image    string            `json:"image,omitempty"`
	Build    *Build            `json:"build,omitempty"`
	Port     int               `json:"port,omitempty"` // 0: a worker, no HTTP
	Command  []string          `json:"command,omitempty"`
	Env      map[string]string `json:"env,omitempty"`
	Secrets  []string          `json:"secrets,omitempty"`
	CPU      float64           `json:"cpu,omitempty"`    // vCPUs, 0 = no limit
	Memory   int64             `json:"memory,omitempty"` // bytes, 0 = no limit
	Platform string            `json:"platform,omitempty"`
	// AppRunner is the ARN of an existing App Runner service this service
	// runs on in AWS environments (berth import apprunner writes it); the
	// local engine runs the service itself and ignores it.
	AppRunner string `json:"apprunner,omitempty"`
	// Instances is the fixed count (default 1 when Scale is nil).
	Instances int                 `json:"instances,omitempty"`
	Scale     *Scale              `json:"scale,omitempty"`
	Health    Health              `json:"health"`
	Timeout   time.Duration       `json:"timeout"` // per-request limit at the edge
	Release   []string            `json:"release,omitempty"`
	Domains   []string            `json:"domains,omitempty"`
	Routes    []Route             `json:"routes,omitempty"`
	Sidecars  map[string]*Sidecar `json:"sidecars,omitempty"`
	// SidecarOrder keeps the order of the file.
	SidecarOrder []string `json:"sidecar_order,omitempty"`
	// DependsOn maps sidecars to the condition the service's own container
	// waits for before it starts (an init container: success), as ECS's
	// dependsOn on the essential container.
	DependsOn map[string]Condition `json:"depends_on,omitempty"`

	// Resource and load-balancer controls (lb.go).
	Pids           int64             `json:"pids,omitempty"` // process limit, 0 = engine default
	Sticky         *Sticky           `json:"sticky,omitempty"`
	Drain          time.Duration     `json:"drain,omitempty"`      // 0: the daemon's default (30s)
	SlowStart      time.Duration     `json:"slow_start,omitempty"` // 0: full share at once
	MaxConcurrency *ConcurrencyLimit `json:"max_concurrency,omitempty"`
}

// Build is a build context with a Dockerfile. The short form `build: DIR`
// sets Context only.
type Build struct {
	Context    string            `json:"context"`              // relative to the spec file's directory
	Dockerfile string            `json:"dockerfile,omitempty"` // relative to Context; default "Dockerfile"
	Args       map[string]string `json:"args,omitempty"`
}

// Scale is concurrency autoscaling: keep in-flight requests per instance
// near Concurrency, between Min and Max instances.
type Scale struct {
	Min         int `json:"min"`
	Max         int `json:"max"`
	Concurrency int `json:"concurrency"`
}

// Health is the health check. An empty Path means a TCP connect check.
type Health struct {
	Path      string        `json:"path,omitempty"`
	Interval  time.Duration `json:"interval"`
	Timeout   time.Duration `json:"timeout"`
	Healthy   int           `json:"healthy"`
	Unhealthy int           `json:"unhealthy"`
}

// Route sends requests whose path starts with Path to another service.
type Route struct {
	Path    string `json:"path"`
	Service string `json:"service"`
}

// Sidecar runs in each instance's network namespace.
type Sidecar struct {
	Name      string            `json:"name"`
	Image     string            `json:"image,omitempty"`
	Build     *Build            `json:"build,omitempty"`
	Command   []string          `json:"command,omitempty"`
	Env       map[string]string `json:"env,omitempty"`
	Secrets   []string          `json:"secrets,omitempty"`
	CPU       float64           `json:"cpu,omitempty"`
	Memory    int64             `json:"memory,omitempty"`
	Pids      int64             `json:"pids,omitempty"`
	Essential bool              `json:"essential"` // default true
	// DependsOn maps a container name (the service itself or another sidecar)
	// to a condition.
	DependsOn map[string]Condition `json:"depends_on,omitempty"`
}

// Condition is an ECS-style container dependency condition.
type Condition string

// Dependency conditions, as ECS names them.
const (
	ConditionStart    Condition = "start"
	ConditionHealthy  Condition = "healthy"
	ConditionComplete Condition = "complete"
	ConditionSuccess  Condition = "success"
)

// Task is a named one-off (or scheduled) task under tasks:.
type Task struct {
	Name     string   `json:"name"`
	Service  string   `json:"service"`
	Command  []string `json:"command"`
	Schedule string   `json:"schedule,omitempty"` // cron (UTC), @hourly, @daily...
}

// Defaults, as docs/spec.md and the README's Defaults table state them.
const (
	DefaultHealthInterval = time.Second
	DefaultHealthTimeout  = 2 * time.Second
	DefaultHealthy        = 1
	DefaultUnhealthy      = 3
	DefaultRequestTimeout = 300 * time.Second
	DefaultInstances      = 1
	DefaultDeployTimeout  = 60 * time.Second
	DefaultDrain          = 30 * time.Second
	DefaultStopGrace      = 10 * time.Second
)

// Defaults the README does not promise, chosen as an App Runner user would
// expect them (docs/spec.md lists every one).
const (
	// DefaultDockerfile is Build.Dockerfile when the spec names none.
	DefaultDockerfile = "Dockerfile"
	// DefaultScaleMin, DefaultScaleMax and DefaultConcurrency fill the
	// fields a scale: block leaves out (App Runner's 1, 25 and 100). An
	// omitted max is raised to min.
	DefaultScaleMin    = 1
	DefaultScaleMax    = 25
	DefaultConcurrency = 100
)

// Limits on what a spec may ask for.
const (
	// MaxInstances bounds instances, scale.min and scale.max: one machine
	// runs them all, and more than this is a typo, not a plan.
	MaxInstances = 100
	// MaxConcurrency bounds scale.concurrency, the in-flight requests an
	// instance is asked to carry.
	MaxConcurrency = 1000
	// MaxCPU bounds cpu, in vCPUs.
	MaxCPU = 64
	// MinMemory is the smallest memory limit: Docker refuses to start a
	// container with less than 6MiB.
	MinMemory = 6 << 20
)

// DesiredInstances is the instance count a deploy starts: the fixed count, or
// the autoscaler's minimum (at least one, so a deploy can be health-checked).
func (s *Service) DesiredInstances() int {
	if s.Scale != nil {
		if s.Scale.Min < 1 {
			return 1
		}
		return s.Scale.Min
	}
	if s.Instances < 1 {
		return DefaultInstances
	}
	return s.Instances
}
