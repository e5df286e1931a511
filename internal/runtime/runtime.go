package runtime

import (
	"context"
	"errors"
	"io"
	"time"
)

// Labels berth puts on everything it creates, so a restarted daemon can
// re-adopt what runs without restarting it.
const (
	LabelApp      = "berth.app"
	LabelService  = "berth.service"
	LabelRevision = "berth.revision"
	LabelInstance = "berth.instance"
	LabelRole     = "berth.role"
	LabelTask     = "berth.task"
	LabelSidecar  = "berth.sidecar"
	// LabelOwner is the identity of the berth server that created the
	// container or network (Owner.ID); LabelOwnerDir is its data directory,
	// to name it in messages. Several servers may share one engine: each
	// sees only what carries its own identity, or none (made by a berth
	// that did not label its owner yet, which any server takes as its own).
	LabelOwner    = "berth.owner"
	LabelOwnerDir = "berth.owner.dir"
)

// Owner identifies one berth server (one data directory) on an engine.
type Owner struct {
	ID  string // random, generated once per data directory
	Dir string // the data directory, for messages only
}

// Labels are the labels an owner puts on what it creates.
func (o Owner) Labels() map[string]string {
	return map[string]string{LabelOwner: o.ID, LabelOwnerDir: o.Dir}
}

// Owns reports whether something carrying labels is this owner's: labelled
// with its identity, or with none. The zero Owner owns everything.
func (o Owner) Owns(labels map[string]string) bool {
	id := labels[LabelOwner]
	return o.ID == "" || id == "" || id == o.ID
}

// Role is what a container is for.
type Role string

// Roles, as they appear in the berth.role label.
const (
	RoleInstance Role = "instance"
	RoleTask     Role = "task"
	RoleSidecar  Role = "sidecar"
	// RoleTaskNet is a network holder kept ready for the next task of an
	// app: the task joins its namespace instead of joining the network.
	RoleTaskNet Role = "tasknet"
)

// Errors an engine returns, wrapped with detail. Callers test with errors.Is.
var (
	ErrImageNotFound = errors.New("image not found")
	ErrNotFound      = errors.New("container not found")
	ErrPortInUse     = errors.New("port already in use")
	ErrPlatform      = errors.New("image platform not supported by this host")
	// ErrNetworkNotFound means a network does not exist (any more).
	ErrNetworkNotFound = errors.New("network not found")
	// ErrNetworkHeld means a network of that name belongs to another berth
	// server sharing the engine.
	ErrNetworkHeld = errors.New("network belongs to another berth server")
)

// ContainerSpec is one container of a pod (PodSpec.Main, a SidecarSpec).
// Inside a pod its Port, HostPort, Network, Aliases, JoinContainer,
// ExtraHosts, Labels, Platform, TTY and OpenStdin are ignored: the PodSpec
// says where and how the pod runs (pod.go). A local engine fills them in
// for the containers it makes a pod of.
type ContainerSpec struct {
	// Name is the container name; unique on the engine.
	Name    string
	Image   string
	Command []string // empty: the image's CMD
	Env     map[string]string
	Labels  map[string]string
	// Port is the container port to publish on 127.0.0.1 (HostPort, or a
	// random one when HostPort is 0). 0 publishes nothing.
	Port     int
	HostPort int
	// Network is the app's private network; Aliases are the DNS names the
	// container answers to on it (the service name).
	Network string
	Aliases []string
	// JoinContainer shares another container's network namespace (sidecars);
	// when set, Network, Aliases and Port are ignored.
	JoinContainer string
	// ExtraHosts are "name:IP" lines added to the container's /etc/hosts
	// (internal service names that resolve to the edge).
	ExtraHosts []string
	CPU        float64 // vCPUs, 0 = unlimited
	Memory     int64   // bytes, 0 = unlimited
	PidsLimit  int64   // 0 = engine default
	Platform   string  // os/arch[/variant], "" = host's
	// TTY and OpenStdin are for interactive tasks.
	TTY       bool
	OpenStdin bool
	// StopGrace is the time between SIGTERM and SIGKILL on Stop.
	StopGrace time.Duration
}

// LogOptions select which log lines to read.
type LogOptions struct {
	Follow bool
	Since  time.Time // zero: from the start
	Tail   int       // 0: all
}

// LogLine is one line of a container's output, without its newline.
type LogLine struct {
	Time   time.Time
	Stream string // "stdout" or "stderr"
	Text   string
}

// Stream is an attached container's stdio.
type Stream interface {
	// Stdin writes to the container's stdin; Close on it sends EOF.
	Stdin() io.WriteCloser
	// Stdout and Stderr read the output (with a TTY, Stderr yields nothing).
	Stdout() io.Reader
	Stderr() io.Reader
	Close() error
}

// ExecSession is one exec'd command.
type ExecSession interface {
	Stream
	Resize(ctx context.Context, height, width uint) error
	// Wait returns the command's exit code once it ends.
	Wait(ctx context.Context) (int, error)
}
