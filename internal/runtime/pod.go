package runtime

// The engine contract: what the control plane asks of any engine (the local
// Docker Engine, AWS ECS Fargate, an in-memory fake). Its unit is a pod: one
// instance of a revision, or one task run. A pod is a main container and
// its sidecars, sharing one network identity (they reach each other on
// localhost), started in depends_on order, with one address the edge sends
// traffic to. An ECS task is a pod; on Docker the engine assembles one from
// containers (a network holder and the containers that join it), and none
// of that shows through this contract.
//
// A pod's life, as the engine reports it (Pod.State):
//
//	            CreatePod              StartPod                 main exits, an essential
//	(nothing) ────────────▶ created ─────────────▶ running ───▶ sidecar dies, or StopPod
//	                          ▲                      │  ▲               │
//	                          │            Suspend   │  │ Resume        ▼
//	                          │                      ▼  │            exited ──▶ RemovePod ──▶ (nothing)
//	                          │                   suspended             │
//	                          └──────────── StartPod again (a stopped pod is started anew) ┘
//
// Rules every engine keeps (the conformance suite in runtime/enginetest
// checks each):
//   - Containers are named within their pod: the main container by its
//     Main.Name, sidecars by theirs. ContainerStatus.Name,
//     PodEvent.Container and StartError.Container use those names, never
//     the engine's own; Logs, ExecPod and RestartContainer also take ""
//     for the main container. Logs of a name the pod lacks: ErrNotFound.
//   - Inside a pod only the PodSpec says where and how it runs: the
//     ContainerSpec fields Port, HostPort, Network, Aliases, ExtraHosts,
//     JoinContainer, Labels, Platform, TTY and OpenStdin are ignored there.
//   - With no StartOptions.Healthy, a main container that starts and exits
//     at once is no StartError: StartPod returns the pod, which is (or
//     soon is) exited with its code.
//   - A failed StartPod leaves the pod exited (nothing of it runs).
//   - When the main container exits or an essential sidecar dies, the
//     engine stops the pod's other containers: the pod is exited.
//   - "healthy" on a sidecar means it started (sidecars have no health
//     check the engine runs).
//   - Logs with Follow ends (nil) when the container stops, the pod is
//     removed or ctx ends.
//   - StopPod, StartPod and InspectPod of a missing pod: ErrNotFound.
//     StartPod of a running pod is an error. RestartContainer of the main
//     container is refused; of a running sidecar it does nothing.
//   - StopPod with grace 0 kills at once (SIGKILL). StopPod's grace wins
//     over ContainerSpec.StopGrace, which is for the stops the engine makes
//     on its own (an essential container died).
//   - An init container (one another waits on to complete or succeed) is
//     meant to exit: its exit never stops the pod, essential or not.
//   - WaitPod of a created pod waits for its start and then its exit; of
//     an exited one it returns the last exit code at once.
//   - Deregister keeps the pod serving what reached it, but its Addr may
//     change (on Docker it does): read it again with InspectPod.
//   - RemoveNetwork of a network another owner holds is ErrNetworkHeld;
//     with pods still on it, an error.
//
// The control plane decides what runs (how many pods of which revision,
// when to restart a non-essential sidecar, when a pod is dead); the engine
// only does what it is told and reports what it sees. It keeps no state the
// control plane relies on: everything is read back from the engine (by
// labels), so a restarted daemon re-adopts running pods.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"
)

// Condition is what a container waits for before it starts, on another
// container of its pod: ECS's container dependency conditions.
type Condition string

// Conditions, as written in berth.yaml's depends_on.
const (
	ConditionStart    Condition = "start"    // the other container started
	ConditionHealthy  Condition = "healthy"  // the other passed its health check (the main container: StartOptions.Healthy)
	ConditionComplete Condition = "complete" // the other exited
	ConditionSuccess  Condition = "success"  // the other exited 0
)

// PodSpec is everything needed to create a pod.
type PodSpec struct {
	// Name is the pod's name, unique on the engine; its containers are named
	// after it.
	Name string
	// Labels go on the pod and everything the engine creates for it (the
	// Label* keys above); the engine adds its owner's.
	Labels map[string]string
	// Network is the app's private network (EnsureNetwork); Aliases are the
	// names the pod answers to on it (the service name). A task has none.
	Network string
	Aliases []string
	// Port is the main container's port that takes traffic (0: none, a
	// worker or a task). HostPort asks a local engine for that host port
	// (0: any free one).
	Port     int
	HostPort int
	// InternalNames are host names that must reach the host's internal load
	// balancer from inside the pod (SERVICE.APP.internal). An engine
	// without one (InternalGateway) ignores them.
	InternalNames []string
	// Platform is os/arch[/variant] of every container ("" = the host's).
	Platform string
	// Main is the pod's own container; MainDependsOn its depends_on.
	Main          ContainerSpec
	MainDependsOn map[string]Condition
	// Sidecars, in file order.
	Sidecars []SidecarSpec
	// TTY and OpenStdin are for interactive tasks (PodAttacher).
	TTY       bool
	OpenStdin bool
}

// SidecarSpec is one sidecar of a pod.
type SidecarSpec struct {
	ContainerSpec
	// Essential: the pod dies with it. A non-essential sidecar that exits is
	// the control plane's to restart (RestartContainer).
	Essential bool
	DependsOn map[string]Condition
}

// Init reports whether the sidecar is an init container: one that another
// container waits on to complete or succeed, so it runs once per start.
func (p PodSpec) Init(name string) bool {
	waits := func(deps map[string]Condition) bool {
		c, ok := deps[name]
		return ok && (c == ConditionComplete || c == ConditionSuccess)
	}
	if waits(p.MainDependsOn) {
		return true
	}
	for _, s := range p.Sidecars {
		if waits(s.DependsOn) {
			return true
		}
	}
	return false
}

// PodState is where a pod is in its life.
type PodState string

// Pod states.
const (
	PodCreated   PodState = "created"
	PodRunning   PodState = "running"
	PodSuspended PodState = "suspended" // processes frozen, off the network (Suspender)
	PodExited    PodState = "exited"
)

// Pod is what the engine reports about one pod.
type Pod struct {
	// ID is the engine's handle on the pod (on Docker: the main container's ID).
	ID     string
	Name   string
	Labels map[string]string
	State  PodState
	// Addr is where traffic for Port goes while running ("127.0.0.1:PORT"
	// on a local engine), "" otherwise.
	Addr string
	// Broken, when set, says why a running pod cannot serve although its
	// main container runs (it lost what holds its network). The control
	// plane treats the pod as dead.
	Broken string
	// Main container's exit, once exited.
	ExitCode  int
	OOMKilled bool
	CreatedAt time.Time
	StartedAt time.Time
	// Containers: the main container first, then the sidecars in spec order
	// (a sidecar that is gone is missing).
	Containers []ContainerStatus
}

// Running reports whether the pod's main container runs.
func (p Pod) Running() bool { return p.State == PodRunning }

// Container returns the status of the named container of the pod.
func (p Pod) Container(name string) (ContainerStatus, bool) {
	for _, c := range p.Containers {
		if c.Name == name {
			return c, true
		}
	}
	return ContainerStatus{}, false
}

// ContainerStatus is one container of a pod.
type ContainerStatus struct {
	Name       string // the main container's is the pod's service (or task) name
	ID         string
	Main       bool
	Running    bool
	ExitCode   int
	OOMKilled  bool
	StartedAt  time.Time
	FinishedAt time.Time
}

// StartOptions tune StartPod.
type StartOptions struct {
	// Healthy is called once the main container has started, with the
	// pod's Addr; it returns nil once the main container passed its health
	// check. Containers that depend on the main container being healthy
	// start after it. nil: started is healthy. The engine cancels its ctx
	// when the pod fails meanwhile.
	Healthy func(ctx context.Context, addr string) error
}

// StartError is a pod that failed to start: which container, and why. The
// engine has stopped what it started; the caller removes the pod.
type StartError struct {
	Container string // "" when the pod itself failed (its network)
	Err       error
}

func (e *StartError) Error() string {
	if e.Container == "" {
		return e.Err.Error()
	}
	return fmt.Sprintf("%s: %v", e.Container, e.Err)
}
func (e *StartError) Unwrap() error { return e.Err }

// ErrExited is wrapped by a StartError when a container exited during the
// start (with its code and, where the kernel killed it, " (out of memory)").
var ErrExited = errors.New("exited")

// PodEvent is a pod's lifecycle event the engine reports.
type PodEvent struct {
	PodID     string
	Container string // which container of the pod
	Action    string // "die", "start", "oom", ...
	Labels    map[string]string
	ExitCode  int
}

// PodEngine is the contract every engine meets. Errors wrap the Err*
// values above; callers test with errors.Is.
type PodEngine interface {
	// EnsureNetwork makes the app's private network if it does not exist
	// (ErrNetworkHeld when another owner holds one of that name);
	// RemoveNetwork removes it (a missing one is not an error).
	EnsureNetwork(ctx context.Context, name string, labels map[string]string) error
	RemoveNetwork(ctx context.Context, name string) error
	// ImageID returns the ID (digest) of an image the engine can run, or
	// ErrImageNotFound. It never pulls from a registry the user did not name.
	ImageID(ctx context.Context, ref string) (string, error)

	// CreatePod creates every container of a pod without starting any. On
	// failure nothing it created is left.
	CreatePod(ctx context.Context, spec PodSpec) (Pod, error)
	// StartPod starts a created or exited pod: each container once its
	// depends_on conditions hold, and returns once the main container is
	// healthy (opts.Healthy) and every container has started (init
	// containers may have exited). A failure is a *StartError.
	StartPod(ctx context.Context, id string, opts StartOptions) (Pod, error)
	// StopPod stops a pod: each container once those that depend on it have
	// stopped, SIGTERM then SIGKILL after grace. A stopped pod is not an error.
	StopPod(ctx context.Context, id string, grace time.Duration) error
	// RemovePod removes a pod and everything the engine made for it, killing
	// what runs. A missing pod is not an error.
	RemovePod(ctx context.Context, id string) error
	// RestartContainer starts again a non-essential sidecar that exited, in
	// its running pod.
	RestartContainer(ctx context.Context, id, container string) error
	// InspectPod returns a pod's state, or ErrNotFound.
	InspectPod(ctx context.Context, id string) (Pod, error)
	// ListPods returns the pods (in any state) carrying all the given
	// labels, of this engine's owner only.
	ListPods(ctx context.Context, labels map[string]string) ([]Pod, error)
	// WaitPod blocks until the pod's main container exits and returns its
	// exit code.
	WaitPod(ctx context.Context, id string) (int, error)
	// Logs streams a container's output lines ("" = the main container) to
	// fn until done (or ctx ends when following).
	Logs(ctx context.Context, id, container string, opts LogOptions, fn func(LogLine)) error
	// Events streams lifecycle events of the owner's pods until ctx ends.
	Events(ctx context.Context) (<-chan PodEvent, <-chan error)
}

// Optional powers. The control plane asks for them with a type assertion
// and says plainly when the engine lacks one. Each implementing package
// guards its claims (var _ runtime.Suspender = (*Engine)(nil)).
type (
	// Builder builds an image from a local directory.
	Builder interface {
		// Build builds contextDir (dockerfile relative to it, "" =
		// Dockerfile) into tag for platform ("" = the host's), writing
		// human-readable progress lines to progress.
		Build(ctx context.Context, contextDir, dockerfile, tag, platform string, args map[string]string, progress io.Writer) (imageID string, err error)
	}
	// PlatformChecker says whether the engine can run an image's platform,
	// or ErrPlatform with what would work.
	PlatformChecker interface {
		CheckPlatform(ctx context.Context, image, platform string) error
	}
	// Suspender freezes a running pod's processes (off the network: its
	// names resolve to the others) and resumes it in milliseconds, with
	// its new Addr.
	Suspender interface {
		Suspend(ctx context.Context, id string) error
		Resume(ctx context.Context, id string) (Pod, error)
	}
	// Deregisterer takes a running pod off its names on the app network
	// while it keeps serving what reached it; it reports whether it was on
	// them.
	Deregisterer interface {
		Deregister(ctx context.Context, id string) (bool, error)
	}
	// PodAttacher connects to a created pod's main container stdio before it
	// starts (interactive tasks).
	PodAttacher interface {
		AttachPod(ctx context.Context, id string) (Stream, error)
		ResizePod(ctx context.Context, id string, height, width uint) error
	}
	// PodExecer runs a command in a running container of a pod.
	PodExecer interface {
		ExecPod(ctx context.Context, id, container string, cmd []string, tty bool) (ExecSession, error)
	}
	// TaskPrewarmer prepares, in the background, for the next task-shaped
	// pod (no port, no aliases, no sidecars) on a network, where that makes
	// its start faster (on Docker: a network holder started ahead). The
	// control plane calls it once it made an app's network; labels are the
	// app's, internalNames as in PodSpec.
	TaskPrewarmer interface {
		WarmTaskNet(network string, labels map[string]string, internalNames []string)
	}
	// HostMemory reports the memory of the machine that runs the pods, to
	// refuse a limit above it.
	HostMemory interface {
		MemTotal(ctx context.Context) (int64, error)
	}
	// InternalGateway is a local engine's address of the host on an app
	// network (and the network's subnet), where the host's internal load
	// balancer listens for the pods' InternalNames.
	InternalGateway interface {
		NetworkAddrs(ctx context.Context, network string) (gateway, subnet string, err error)
	}
	// OwnerSetter makes the engine act for one owner (see Owner): it labels
	// what it creates and sees only what is its owner's.
	OwnerSetter interface {
		SetOwner(Owner)
	}
	// NetworkHeldChecker tells, changing nothing, whether another owner
	// holds a network (ErrNetworkHeld).
	NetworkHeldChecker interface {
		NetworkHeld(ctx context.Context, name string) error
	}
)
