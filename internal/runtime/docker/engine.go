package docker

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"

	"github.com/docker/docker/client"

	"github.com/berth-dev/berth/internal/runtime"
)

// Engine runs berth's pods on a Docker Engine (the pod contract,
// runtime.PodEngine, and its optional powers: see the guards in pod.go).
// It is safe for concurrent use.
type Engine struct {
	cli *client.Client
	log *slog.Logger

	// host is the engine's own platform (see hostPlatform).
	hostMu sync.Mutex
	host   *platform

	// holderImage is the network holder image's ID once built (holder.go).
	holderMu    sync.Mutex
	holderImage string

	// frozenIPs are the addresses containers taken off their network had
	// on it, by container ID, to come back with: frozen ones, and one
	// between the disconnect and the connect of a reconnect (freeze.go,
	// deregister.go).
	frozenMu  sync.Mutex
	frozenIPs map[string]string
	// unlisted are the containers Deregister took off their names, by ID,
	// for Stop to put them back (deregister.go). Guarded by frozenMu.
	unlisted map[string]bool
	// nextAddr is where pickAddress goes on looking, by network.
	nextAddr map[string]netip.Addr

	// owner is the berth server the engine acts for (owner.go); set once,
	// before use.
	owner runtime.Owner

	// sup stops a pod whose main container or essential sidecar died
	// (pod_supervise.go).
	sup supervisor
	// tasks are the network holders kept ready for tasks (pod_tasknet.go).
	tasks taskNets
}

// New returns an Engine for the Docker Engine the environment names
// (DOCKER_HOST, DOCKER_API_VERSION, DOCKER_CERT_PATH, DOCKER_TLS_VERIFY; the
// local socket by default), negotiating the API version so old engines work.
// A nil logger discards. New does not contact the engine; use Ping.
func New(logger *slog.Logger) (*Engine, error) {
	cli, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		return nil, fmt.Errorf("docker client: %w", err)
	}
	return NewWithClient(cli, logger), nil
}

// NewWithClient returns an Engine using cli, which should have API version
// negotiation enabled. The Engine owns cli from then on (see Close).
func NewWithClient(cli *client.Client, logger *slog.Logger) *Engine {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Engine{cli: cli, log: logger}
}

// Ping checks that the Docker Engine answers, with a message saying what to
// do when it does not.
func (e *Engine) Ping(ctx context.Context) error {
	if _, err := e.cli.Ping(ctx); err != nil {
		return fmt.Errorf("docker engine at %s is unreachable (is dockerd running, and may this user use its socket?): %w", e.cli.DaemonHost(), err)
	}
	return nil
}

// Close ends the pod supervisor (pod_supervise.go), waiting for a stop it
// is making, and releases the client's idle connections.
func (e *Engine) Close() error {
	e.stopSupervisor()
	return e.cli.Close()
}
