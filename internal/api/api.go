// Package api holds the wire types of berth's HTTP API, shared by the daemon
// (controlplane) and its Go client. It has no behaviour and imports nothing of
// berth's but the spec model.
//
// Endpoints (all JSON; streams are newline-delimited JSON of Message):
//
//	GET    /v1/apps                                   -> []AppSummary
//	POST   /v1/deploy                   DeployRequest -> stream of Message (phases, logs, final Result)
//	GET    /v1/status?app=A                           -> Status
//	GET    /v1/apps/{app}/services/{svc}/revisions    -> []Revision
//	POST   /v1/apps/{app}/services/{svc}/rollback  RollbackRequest -> stream of Message
//	GET    /v1/apps/{app}/services/{svc}/logs?follow=1&since=10m&instance=ID&container=NAME&tail=N -> stream of Message (kind "log")
//	GET    /v1/apps/{app}/services/{svc}/history      -> TrafficHistory (the last hour, per revision)
//	POST   /v1/apps/{app}/scale          ScaleRequest -> Status
//	POST   /v1/apps/{app}/services/{svc}/pause        -> ServiceStatus
//	POST   /v1/apps/{app}/services/{svc}/resume       -> stream of Message
//	DELETE /v1/apps/{app}                             -> stream of Message
//	GET    /v1/apps/{app}/services/{svc}/secrets      -> []SecretKey
//	PUT    /v1/apps/{app}/services/{svc}/secrets  SecretSetRequest -> []SecretKey
//	DELETE /v1/apps/{app}/services/{svc}/secrets/{key}
//	GET    /v1/events?app=A&follow=1                 -> stream of Message (kind "event")
//	GET    /v1/edge ...                               -> entrypoints (see edge.go)
//	GET    /metrics                                   -> Prometheus metrics (text)
//	POST   /v1/apps/{app}/tasks          TaskRunRequest -> stream of Message (kind "task", "log"..., then a result with Task)
//	                                                       with Detach: 201 Task at once
//	                                                       with "Upgrade: berth-attach": 101, then package attach's frames
//	GET    /v1/tasks?app=A&limit=N                    -> []Task, newest first
//	GET    /v1/tasks/{id}                             -> Task (id: the ID or a unique prefix of 4+ characters)
//	GET    /v1/tasks/{id}/logs?follow=1               -> stream of Message (kind "log")
//	POST   /v1/tasks/{id}/stop                        -> Task, once it has stopped
//	POST   /v1/apps/{app}/services/{svc}/exec  ExecRequest, "Upgrade: berth-attach" -> 101, then package attach's frames
//	GET    /v1/apps/{app}/envs/{env}/status           -> Status of the app in a remote (AWS) environment of its deployed berth.yaml
//	GET    /v1/apps/{app}/envs/{env}/services/{svc}/revisions -> []Revision
//	GET    /v1/apps/{app}/envs/{env}/events?since=RFC3339&limit=N -> []Event: the newest N (default 100), oldest first
//	POST   /v1/apps/{app}/envs/{env}/services/{svc}/rollback  RollbackRequest -> stream of Message
//	POST   /v1/apps/{app}/envs/{env}/scale     ScaleRequest -> Status
//	POST   /v1/apps/{app}/envs/{env}/services/{svc}/pause  -> ServiceStatus
//	POST   /v1/apps/{app}/envs/{env}/services/{svc}/resume -> stream of Message
//	POST   /v1/ui/signin                              -> SignIn (a one-time URL of the console; 409 when it is off)
//
// Errors are HTTP 4xx/5xx with an Error body.
package api

import (
	"time"
)

// Error is the body of every failed request. Message is one line that says
// what was wrong and what to do.
type Error struct {
	Message string `json:"error"`
	// Code is a stable machine-readable reason, e.g. "not_found",
	// "conflict", "invalid", "deploy_in_progress".
	Code string `json:"code,omitempty"`
}

// AppSummary is one app in GET /v1/apps.
type AppSummary struct {
	Name     string   `json:"name"`
	Services []string `json:"services"`
	// Environments are those its deployed berth.yaml declares (run with
	// --env from the CLI; the daemon reaches them under
	// /v1/apps/{app}/envs/{env}/ when it has their credentials).
	Environments []EnvironmentSummary `json:"environments,omitempty"`
}

// EnvironmentSummary is an environment of an app's berth.yaml.
type EnvironmentSummary struct {
	Name   string `json:"name"`
	Engine string `json:"engine"`
	Region string `json:"region,omitempty"`
}

// DeployRequest deploys a spec. The daemon parses and validates the YAML
// itself so errors name the file and line exactly as the user wrote them.
type DeployRequest struct {
	// File is the spec's path as the user named it (for messages); BaseDir is
	// the absolute directory build contexts are relative to.
	File    string `json:"file"`
	BaseDir string `json:"base_dir"`
	YAML    string `json:"yaml"`
	// Services limits the deploy to these services (empty: all).
	Services []string `json:"services,omitempty"`
	// Images overrides a service's image: SERVICE -> REF.
	Images map[string]string `json:"images,omitempty"`
	// Canary, a percentage in (0, 100], deploys each service as a canary:
	// the new revision gets that share of its traffic (sticky per client,
	// guarded like an edge shift) and the serving one keeps the rest until
	// Promote, a rollback, or the guard.
	Canary float64 `json:"canary,omitempty"`
	// Promote moves all traffic to the services' canaries instead of
	// deploying anything.
	Promote bool `json:"promote,omitempty"`
	// By is who deploys, as the daemon knows the caller (the socket
	// peer's user, or the token's address over TCP); a client's value is
	// replaced.
	By string `json:"by,omitempty"`
}

// RollbackRequest returns a service to an earlier revision; To 0 means the
// previous one.
type RollbackRequest struct {
	To int `json:"to,omitempty"`
}

// ScaleRequest sets fixed instance counts: SERVICE -> N.
type ScaleRequest struct {
	Counts map[string]int `json:"counts"`
}

// SecretSetRequest sets secrets: KEY -> VALUE.
type SecretSetRequest struct {
	Values map[string]string `json:"values"`
}

// SecretKey is a secret's name and when it was set; values are never returned.
type SecretKey struct {
	Key       string    `json:"key"`
	UpdatedAt time.Time `json:"updated_at"`
}

// Message kinds in a stream.
const (
	KindPhase  = "phase"  // a deploy phase began or ended: Phase, Text
	KindLog    = "log"    // a line of output: Source (instance/task ID), Stream, Text
	KindEvent  = "event"  // a recorded event: Event
	KindResult = "result" // the last message of a stream: OK, Error, Result fields
	KindTask   = "task"   // a task started: Task
)

// Message is one line of a streamed response.
type Message struct {
	Kind   string    `json:"kind"`
	Time   time.Time `json:"time"`
	Phase  string    `json:"phase,omitempty"`
	Text   string    `json:"text,omitempty"`
	Source string    `json:"source,omitempty"`
	Stream string    `json:"stream,omitempty"`
	Event  *Event    `json:"event,omitempty"`
	// Result fields, when Kind is "result".
	OK       bool     `json:"ok,omitempty"`
	Error    string   `json:"error,omitempty"`
	Code     string   `json:"code,omitempty"`
	Deployed []Deploy `json:"deployed,omitempty"`
	// LastLogs are the failing instance's (or release task's) last output
	// lines, on failure.
	LastLogs []string `json:"last_logs,omitempty"`
	// Task is the task a "task" message announces, and the finished task
	// (status, exit code) in the result of a task run.
	Task *Task `json:"task,omitempty"`
}

// Deploy summarises one service's outcome in a deploy or rollback.
type Deploy struct {
	Service  string   `json:"service"`
	Revision int      `json:"revision"`
	URLs     []string `json:"urls,omitempty"`
}

// Event is something that happened, as recorded in the store.
type Event struct {
	ID      int64     `json:"id"`
	Time    time.Time `json:"time"`
	App     string    `json:"app"`
	Service string    `json:"service,omitempty"`
	Kind    string    `json:"kind"` // deploy, rollback, crash, scale, pause, resume, exec, task...
	Message string    `json:"message"`
}

// Status is GET /v1/status: every app (or one) with its services.
type Status struct {
	Apps []AppStatus `json:"apps"`
}

// AppStatus is one app in Status.
type AppStatus struct {
	Name     string          `json:"name"`
	Services []ServiceStatus `json:"services"`
	// Entrypoints are the app's edge: entrypoints with the hosts they hold.
	Entrypoints []EntrypointHosts `json:"entrypoints,omitempty"`
}

// EntrypointHosts is an entrypoint of an app and the hosts it holds.
type EntrypointHosts struct {
	Name  string   `json:"name"`
	Hosts []string `json:"hosts"`
}

// ServiceStatus is one service in Status.
type ServiceStatus struct {
	App      string   `json:"app"`
	Name     string   `json:"name"`
	State    string   `json:"state"` // running, deploying, paused, crash-loop, failed, stopped
	Revision int      `json:"revision"`
	Image    string   `json:"image"`
	Desired  int      `json:"desired"`
	Running  int      `json:"running"`
	URLs     []string `json:"urls,omitempty"`
	// Hosts are the host names this service holds at the edge: its
	// address and its domains. A host belongs to one service or
	// entrypoint.
	Hosts     []string         `json:"hosts,omitempty"`
	Instances []InstanceStatus `json:"instances"`
	// Message explains a non-running state (e.g. crash loop backoff).
	Message string `json:"message,omitempty"`
	// Autoscale is the autoscaler's view of a service with scale:.
	Autoscale *AutoscaleStatus `json:"autoscale,omitempty"`
	// Traffic is the request rate and latency at the edge per revision,
	// over the last minute; the serving revision first.
	Traffic []RevisionTraffic `json:"traffic,omitempty"`
	// Internal is the traffic from the app's own containers through the
	// service's internal name (http://SERVICE.APP.internal).
	Internal *InternalTraffic `json:"internal,omitempty"`
	// Limits are the serving revision's resource limits.
	Limits *Limits `json:"limits,omitempty"`
}

// Limits are a container's resource limits; zero means none.
type Limits struct {
	CPU    float64 `json:"cpu,omitempty"`    // vCPUs
	Memory int64   `json:"memory,omitempty"` // bytes
	Pids   int64   `json:"pids,omitempty"`
}

// InternalTraffic counts the requests a service got through its internal
// name since the daemon started.
type InternalTraffic struct {
	URL string `json:"url"`
	// Listener is where the internal load balancer listens; "" when it
	// could not (see the daemon's log).
	Listener      string  `json:"listener,omitempty"`
	Requests      uint64  `json:"requests"`
	Errors        uint64  `json:"errors"` // answered 5xx
	LatencyMeanMS float64 `json:"latency_mean_ms"`
}

// SidecarStatus is one sidecar of an instance.
type SidecarStatus struct {
	Name        string `json:"name"`
	State       string `json:"state"` // running, exited, restarting
	ContainerID string `json:"container_id"`
	Essential   bool   `json:"essential"`
	// Init is set for a sidecar others wait on to exit: it runs once.
	Init     bool    `json:"init,omitempty"`
	Restarts int     `json:"restarts"`
	LastExit string  `json:"last_exit,omitempty"`
	Limits   *Limits `json:"limits,omitempty"`
}

// AutoscaleStatus is what the autoscaler sees and wants for one service.
type AutoscaleStatus struct {
	Min         int `json:"min"`
	Max         int `json:"max"`
	Concurrency int `json:"concurrency"` // target in-flight requests per instance
	// StableAverage and PanicAverage are the in-flight requests (plus those
	// held for a wake) averaged over the stable and panic windows.
	StableAverage float64 `json:"stable_average"`
	PanicAverage  float64 `json:"panic_average"`
	// Panicking: the panic window asked for twice the ready instances; the
	// service scales up at once and not down.
	Panicking bool `json:"panicking,omitempty"`
	// Parked are scaled-in instances kept frozen or stopped for a fast start.
	Parked int `json:"parked"`
}

// RevisionTraffic is one revision's requests at the edge.
type RevisionTraffic struct {
	Revision int `json:"revision"`
	// Requests is the total answered since the daemon started.
	Requests uint64 `json:"requests"`
	// Window is the span the rate and latencies cover (up to a minute).
	Window            string  `json:"window"`
	RequestsPerSecond float64 `json:"requests_per_second"`
	// Latencies from arrival at the edge to the end of the response, in
	// milliseconds; percentiles are interpolated from a histogram.
	LatencyMeanMS float64 `json:"latency_mean_ms"`
	LatencyP50MS  float64 `json:"latency_p50_ms"`
	LatencyP99MS  float64 `json:"latency_p99_ms"`
}

// InstanceStatus is one instance in ServiceStatus.
type InstanceStatus struct {
	ID          string    `json:"id"`
	Revision    int       `json:"revision"`
	State       string    `json:"state"` // starting, healthy, unhealthy, draining, stopped, crashed
	ContainerID string    `json:"container_id"`
	Addr        string    `json:"addr,omitempty"`
	Restarts    int       `json:"restarts"`
	StartedAt   time.Time `json:"started_at"`
	CPU         float64   `json:"cpu,omitempty"`
	Memory      int64     `json:"memory,omitempty"`
	Pids        int64     `json:"pids,omitempty"`
	// Sidecars are the instance's other containers, in spec order.
	Sidecars []SidecarStatus `json:"sidecars,omitempty"`
}

// Revision is one immutable revision of a service.
type Revision struct {
	Number    int       `json:"number"`
	Image     string    `json:"image"`
	ImageID   string    `json:"image_id"`
	Status    string    `json:"status"` // active, previous, retired, failed
	CreatedAt time.Time `json:"created_at"`
	Message   string    `json:"message,omitempty"`
	// By is who deployed it (DeployRequest.By); empty for revisions made
	// before berth recorded it.
	By string `json:"by,omitempty"`
}

// TaskRunRequest runs a task from a service's serving revision: the spec's
// named task Name (Command then holds extra arguments), or the ad-hoc
// Command.
type TaskRunRequest struct {
	Name    string   `json:"name,omitempty"`
	Command []string `json:"command,omitempty"`
	// Service defaults to the named task's service, else the app's only
	// deployed service, else the spec's first one.
	Service string `json:"service,omitempty"`
	// Timeout stops the task after this long (0: no limit).
	Timeout time.Duration `json:"timeout,omitempty"`
	// Detach answers with the Task at once; the task runs on.
	Detach bool `json:"detach,omitempty"`
	// Stdin keeps the task's stdin open and TTY gives it a terminal; both
	// need the attach protocol.
	Stdin bool `json:"stdin,omitempty"`
	TTY   bool `json:"tty,omitempty"`
}

// Task statuses.
const (
	TaskRunning   = "running"
	TaskSucceeded = "succeeded"
	TaskFailed    = "failed"
	TaskStopped   = "stopped"
	TaskTimeout   = "timeout"
	TaskSkipped   = "skipped"
	TaskLost      = "lost"
)

// Task is one run of a command in a service revision's image.
type Task struct {
	ID      string `json:"id"`
	App     string `json:"app"`
	Service string `json:"service"`
	// Name is the spec's task name, "" for an ad-hoc command.
	Name string `json:"name,omitempty"`
	// Kind is "oneoff", "release" or "scheduled".
	Kind     string   `json:"kind"`
	Command  []string `json:"command"`
	Revision int      `json:"revision"`
	// Status is one of the Task* constants.
	Status     string    `json:"status"`
	ExitCode   int       `json:"exit_code"`
	StartedAt  time.Time `json:"started_at"`
	FinishedAt time.Time `json:"finished_at,omitzero"`
	// Message says why a task ended as it did (stopped, timed out, lost,
	// skipped, could not start).
	Message string `json:"message,omitempty"`
}

// ExecRequest runs a command inside a running instance of a service.
type ExecRequest struct {
	// Instance picks the instance (an ID or a unique prefix); "" picks one.
	Instance string `json:"instance,omitempty"`
	// Container picks a sidecar by name; "" (or the service's name) is the
	// main container.
	Container string   `json:"container,omitempty"`
	Command   []string `json:"command"`
	Stdin     bool     `json:"stdin,omitempty"`
	TTY       bool     `json:"tty,omitempty"`
}
