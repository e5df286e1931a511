package docker

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/go-connections/nat"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-dev/berth/internal/runtime"
)

// Log rotation for every container: enough to debug a crash, bounded so a
// chatty service cannot fill the disk.
const (
	logMaxSize  = "10m"
	logMaxFiles = "3"
)

// createContainer creates (but does not start) a container from spec and
// returns it as created. The image must be present; it is never pulled.
func (e *Engine) createContainer(ctx context.Context, spec runtime.ContainerSpec) (Container, error) {
	id, err := e.create(ctx, spec)
	if err != nil {
		return Container{}, err
	}
	// Not cancelled: the caller gets the container it now owns.
	ictx, cancel := context.WithTimeout(context.WithoutCancel(ctx), createTimeout)
	defer cancel()
	return e.inspectContainer(ictx, id)
}

// create creates a container from spec and returns its ID (see
// createContainer).
func (e *Engine) create(ctx context.Context, spec runtime.ContainerSpec) (string, error) {
	start := time.Now()
	img, err := e.cli.ImageInspect(ctx, spec.Image)
	if err != nil {
		return "", imageError(spec.Image, err)
	}
	host, err := e.hostPlatform(ctx)
	if err != nil {
		return "", err
	}
	var (
		want platform          // zero: whatever the image is
		plat *ocispec.Platform // nil: the engine's own
	)
	if spec.Platform != "" {
		if want, err = parsePlatform(spec.Platform); err != nil {
			return "", err
		}
		plat = want.oci()
	}
	if err := checkPlatform(spec.Image, img, want, host); err != nil {
		return "", err
	}

	spec.Labels = e.withOwner(spec.Labels)
	cfg, hostCfg, netCfg := containerConfig(spec)
	if netCfg != nil {
		// berth hands out the addresses on its networks itself (see
		// pickAddress); "" leaves it to the engine.
		if ip := e.pickAddress(ctx, spec.Network); ip != "" {
			netCfg.EndpointsConfig[spec.Network].IPAMConfig = &network.EndpointIPAMConfig{IPv4Address: ip}
		}
	}
	// The engine finishes a create whose caller went away (a daemon
	// stopping, a deploy cancelled), leaving a container nobody knows of.
	// So the call itself is not cancelled; a caller gone by its end gets
	// the container removed and its context's error.
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), createTimeout)
	created, err := e.cli.ContainerCreate(cctx, cfg, hostCfg, netCfg, plat, spec.Name)
	cancel()
	if err == nil && ctx.Err() != nil {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), createTimeout)
		defer cancel()
		if rerr := e.cli.ContainerRemove(rctx, created.ID, container.RemoveOptions{Force: true}); rerr != nil {
			e.log.Warn("remove a container created for a caller that went away", "name", spec.Name, "err", rerr)
		}
		return "", fmt.Errorf("create container %s: %w", spec.Name, context.Cause(ctx))
	}
	if err != nil {
		switch {
		case strings.Contains(err.Error(), "does not match the specified platform"):
			return "", fmt.Errorf("%w: %s: %v", runtime.ErrPlatform, spec.Image, err)
		case cerrdefs.IsNotFound(err) && strings.Contains(strings.ToLower(err.Error()), "image"):
			return "", imageError(spec.Image, err)
		}
		return "", fmt.Errorf("create container %s: %w", spec.Name, err)
	}
	for _, w := range created.Warnings {
		e.log.Warn("container created with a warning", "name", spec.Name, "warning", w)
	}
	e.log.Debug("container created", "name", spec.Name, "id", shortID(created.ID), "took", time.Since(start))
	return created.ID, nil
}

// Container is what the Docker engine reports about one container (List):
// beneath the pod contract, which reports pods (runtime.Pod).
type Container struct {
	ID     string
	Name   string
	Image  string
	Labels map[string]string
	// State is "created", "running", "exited", ...; Running is State=="running"
	// and not paused (frozen).
	State   string
	Running bool
	// HostAddr is "127.0.0.1:PORT" of the published port while running, "" otherwise.
	HostAddr   string
	ExitCode   int
	OOMKilled  bool
	StartedAt  time.Time
	FinishedAt time.Time
	// CreatedAt is when the engine created it.
	CreatedAt time.Time
}

// createTimeout bounds a container create (or the removal of one made for
// a caller that went away) that no caller's context bounds.
const createTimeout = 30 * time.Second

// containerConfig translates a spec into Docker's three create structs,
// adding the policy every berth container gets.
func containerConfig(spec runtime.ContainerSpec) (*container.Config, *container.HostConfig, *network.NetworkingConfig) {
	env := make([]string, 0, len(spec.Env))
	for k, v := range spec.Env {
		env = append(env, k+"="+v)
	}
	sort.Strings(env) // deterministic, so two creates of one spec compare equal

	labels := make(map[string]string, len(spec.Labels))
	for k, v := range spec.Labels {
		labels[k] = v
	}

	cfg := &container.Config{
		Image:     spec.Image,
		Env:       env,
		Labels:    labels,
		Tty:       spec.TTY,
		OpenStdin: spec.OpenStdin,
		// One attached client owns stdin: when it closes its end, the
		// process sees EOF (a task reading stdin can finish).
		StdinOnce:   spec.OpenStdin,
		AttachStdin: spec.OpenStdin,
	}
	if len(spec.Command) > 0 {
		cfg.Cmd = append([]string(nil), spec.Command...)
	}
	if spec.StopGrace > 0 {
		secs := ceilSeconds(spec.StopGrace)
		cfg.StopTimeout = &secs
	}

	init := true
	hostCfg := &container.HostConfig{
		// Tini as PID 1 forwards SIGTERM to the app and reaps zombies, so a
		// binary written without PID 1 in mind still stops gracefully.
		Init:          &init,
		RestartPolicy: container.RestartPolicy{Name: container.RestartPolicyDisabled},
		LogConfig: container.LogConfig{
			Type:   "json-file",
			Config: map[string]string{"max-size": logMaxSize, "max-file": logMaxFiles},
		},
		SecurityOpt: []string{"no-new-privileges"},
		Resources: container.Resources{
			NanoCPUs: int64(math.Round(spec.CPU * 1e9)),
			Memory:   spec.Memory,
		},
	}
	if spec.Memory > 0 {
		hostCfg.MemorySwap = spec.Memory // no swap: the limit is the limit
	}
	if spec.PidsLimit > 0 {
		pids := spec.PidsLimit
		hostCfg.PidsLimit = &pids
	}
	if len(spec.ExtraHosts) > 0 && spec.JoinContainer == "" {
		// A joined container shares the other's /etc/hosts-relevant
		// network settings; Docker refuses extra hosts on it.
		hostCfg.ExtraHosts = append([]string(nil), spec.ExtraHosts...)
	}

	var netCfg *network.NetworkingConfig
	switch {
	case spec.JoinContainer != "":
		hostCfg.NetworkMode = container.NetworkMode("container:" + spec.JoinContainer)
	default:
		if spec.Network != "" {
			hostCfg.NetworkMode = container.NetworkMode(spec.Network)
			netCfg = &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{
				spec.Network: {Aliases: append([]string(nil), spec.Aliases...)},
			}}
			if len(spec.Aliases) > 0 {
				labels[labelAliases] = strings.Join(spec.Aliases, ",")
			}
		}
		if spec.Port > 0 {
			port := nat.Port(strconv.Itoa(spec.Port) + "/tcp")
			cfg.ExposedPorts = nat.PortSet{port: struct{}{}}
			hostPort := ""
			if spec.HostPort > 0 {
				hostPort = strconv.Itoa(spec.HostPort)
			}
			hostCfg.PortBindings = nat.PortMap{port: {{HostIP: "127.0.0.1", HostPort: hostPort}}}
		}
	}
	return cfg, hostCfg, netCfg
}

// ceilSeconds rounds up, so a 500ms grace is 1s and never "kill now".
func ceilSeconds(d time.Duration) int {
	return int((d + time.Second - 1) / time.Second)
}

// portInUse matches the engine's two ways of saying a host port is taken:
// by another process ("address already in use", from docker-proxy) or by
// another container ("port is already allocated").
var portInUse = regexp.MustCompile(`(?i)address already in use|port is already allocated`)

// hostPortInError finds "127.0.0.1:PORT" in an engine error.
var hostPortInError = regexp.MustCompile(`127\.0\.0\.1:(\d+)`)

// startContainer starts a created or stopped container and returns its
// state after the start, with a fresh HostAddr (a restart gets a new random port). A
// frozen container (see freeze) is thawed; one stopped while frozen is put
// back on its network first.
func (e *Engine) startContainer(ctx context.Context, id string) (Container, error) {
	info, err := e.cli.ContainerInspect(ctx, id)
	if err != nil {
		return Container{}, notFoundOr(id, "start", err)
	}
	return e.start(ctx, info, true)
}

// start starts a container as it was just inspected (see startContainer). Its state
// after the start is read again only when the caller needs it (inspect:
// the address of its published port); otherwise the Container returned
// is the zero one.
func (e *Engine) start(ctx context.Context, info container.InspectResponse, inspect bool) (Container, error) {
	start := time.Now()
	id := info.ID
	if info.State != nil && info.State.Paused {
		return e.thaw(ctx, info)
	}
	if err := e.ensureConnected(ctx, info); err != nil {
		return Container{}, err
	}
	err := e.cli.ContainerStart(ctx, id, container.StartOptions{})
	if err != nil && networkGone(err) {
		// Its network was removed and made again since it stopped (by
		// hand; the reconciler re-creates it): its endpoint names the old
		// one, so it is put on the new one of the same name.
		err = e.renewAddress(ctx, info)
		if err == nil {
			err = e.cli.ContainerStart(ctx, id, container.StartOptions{})
		}
	}
	if err != nil && (ipTaken(err) || ipOutsideSubnet(err)) {
		// On a network with a configured subnet the engine gives a
		// restarted container its former address, which another may
		// have taken while it was stopped, or which a network made again
		// on another subnet does not hold: it gets a fresh one instead.
		err = e.renewAddress(ctx, info)
		if err == nil {
			err = e.cli.ContainerStart(ctx, id, container.StartOptions{})
		}
	}
	if err != nil {
		if cerrdefs.IsNotFound(err) {
			return Container{}, notFoundOr(id, "start", err)
		}
		if portInUse.MatchString(err.Error()) {
			port := e.askedHostPort(ctx, id)
			if m := hostPortInError.FindStringSubmatch(err.Error()); m != nil {
				port = m[1]
			}
			return Container{}, fmt.Errorf("%w: 127.0.0.1:%s (choose another host port or stop what holds it): %v", runtime.ErrPortInUse, port, err)
		}
		return Container{}, fmt.Errorf("start container %s: %w", shortID(id), err)
	}
	if !inspect {
		e.log.Debug("container started", "name", strings.TrimPrefix(info.Name, "/"), "id", shortID(id), "took", time.Since(start))
		return Container{}, nil
	}
	c, err := e.inspectContainer(ctx, id)
	if err != nil {
		return Container{}, err
	}
	e.log.Debug("container started", "name", c.Name, "id", shortID(c.ID), "addr", c.HostAddr, "took", time.Since(start))
	return c, nil
}

// networkGone tells the engine's "network X not found" at a start from the
// container itself being missing (both are not-found errors).
func networkGone(err error) bool {
	return cerrdefs.IsNotFound(err) && strings.Contains(err.Error(), "network ") && !strings.Contains(err.Error(), "No such container")
}

// ipTaken tells the engine's "Address already in use" about a container's
// address on its network from the same words about a host port (which
// name the port).
func ipTaken(err error) bool {
	return strings.Contains(err.Error(), "Address already in use") && !hostPortInError.MatchString(err.Error())
}

// ipOutsideSubnet tells the engine's refusal of a container's former
// address on a network that was made again on another subnet.
func ipOutsideSubnet(err error) bool {
	return strings.Contains(err.Error(), "does not belong to any of this network's subnets")
}

// renewAddress takes a stopped container off its network and puts it back
// with no address of its own, so its start picks a free one.
func (e *Engine) renewAddress(ctx context.Context, info container.InspectResponse) error {
	netName := ownNetwork(info)
	if netName == "" {
		return fmt.Errorf("start container %s: its address is taken", shortID(info.ID))
	}
	if err := e.cli.NetworkDisconnect(ctx, netName, info.ID, true); err != nil && !cerrdefs.IsNotFound(err) {
		return fmt.Errorf("start container %s: renew its address on %s: %w", shortID(info.ID), netName, err)
	}
	e.frozenIP(info.ID) // not the one taken
	return e.connect(ctx, info.ID, netName, info.Config.Labels)
}

// askedHostPort is the host port a container's spec asked for ("" for a
// random one), to name it when the engine's error does not.
func (e *Engine) askedHostPort(ctx context.Context, id string) string {
	info, err := e.cli.ContainerInspect(ctx, id)
	if err != nil || info.HostConfig == nil {
		return ""
	}
	for _, bindings := range info.HostConfig.PortBindings {
		for _, b := range bindings {
			if b.HostPort != "" {
				return b.HostPort
			}
		}
	}
	return ""
}

// stopContainer sends SIGTERM, then SIGKILL after grace. A grace of 0 uses the
// container's own StopGrace (Docker's 10s when it had none). Stopping a
// stopped container is not an error. A container Deregister took off its
// names is put back under them once stopped.
func (e *Engine) stopContainer(ctx context.Context, id string, grace time.Duration) error {
	start := time.Now()
	var opts container.StopOptions
	if grace > 0 {
		secs := ceilSeconds(grace)
		opts.Timeout = &secs
	}
	if err := e.cli.ContainerStop(ctx, id, opts); err != nil {
		return notFoundOr(id, "stop", err)
	}
	e.relist(ctx, id)
	e.log.Debug("container stopped", "id", shortID(id), "took", time.Since(start))
	return nil
}

// Remove removes a container and its anonymous volumes, killing it if it
// runs. A missing container, or one already being removed, is not an error.
// It is the Docker engine's own, under the pod contract (RemovePod), for
// tools and tests that made containers of their own.
func (e *Engine) Remove(ctx context.Context, id string) error {
	e.frozenIP(id)
	e.forgetUnlisted(id)
	err := e.cli.ContainerRemove(ctx, id, container.RemoveOptions{Force: true, RemoveVolumes: true})
	switch {
	case err == nil:
		e.log.Debug("container removed", "id", shortID(id))
		return nil
	case cerrdefs.IsNotFound(err), strings.Contains(err.Error(), "already in progress"):
		return nil
	default:
		return fmt.Errorf("remove container %s: %w", shortID(id), err)
	}
}

// inspectContainer returns a container's state, or runtime.ErrNotFound.
func (e *Engine) inspectContainer(ctx context.Context, id string) (Container, error) {
	info, err := e.cli.ContainerInspect(ctx, id)
	if err != nil {
		return Container{}, notFoundOr(id, "inspect", err)
	}
	return toContainer(info), nil
}

func toContainer(info container.InspectResponse) Container {
	c := Container{ID: info.ID, Name: strings.TrimPrefix(info.Name, "/"), CreatedAt: parseTime(info.Created)}
	if info.Config != nil {
		c.Image = info.Config.Image
		c.Labels = info.Config.Labels
	}
	if s := info.State; s != nil {
		c.State = string(s.Status)
		// Docker counts a paused (frozen) container as running; berth does
		// not: it serves nothing until thawed.
		c.Running = s.Running && !s.Paused
		c.ExitCode = s.ExitCode
		c.OOMKilled = oomKilledRead(info.ID, s)
		c.StartedAt = parseTime(s.StartedAt)
		c.FinishedAt = parseTime(s.FinishedAt)
	}
	if c.Running && info.HostConfig != nil && info.NetworkSettings != nil {
		c.HostAddr = hostAddr(info.HostConfig.PortBindings, info.NetworkSettings.Ports)
	}
	return c
}

// hostAddr is the 127.0.0.1 address the engine actually bound for the port
// berth asked to publish.
func hostAddr(asked, bound nat.PortMap) string {
	ports := make([]string, 0, len(asked))
	for p := range asked {
		ports = append(ports, string(p))
	}
	sort.Strings(ports)
	for _, p := range ports {
		for _, b := range bound[nat.Port(p)] {
			if b.HostPort != "" && (b.HostIP == "127.0.0.1" || b.HostIP == "") {
				return net.JoinHostPort("127.0.0.1", b.HostPort)
			}
		}
	}
	return ""
}

// parseTime reads the engine's RFC 3339 times; its "0001-01-01T00:00:00Z"
// for "never" becomes the zero time.
func parseTime(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil || t.Year() <= 1 {
		return time.Time{}
	}
	return t
}

// List returns the owner's containers, running or not, carrying all the
// given labels, ordered by name, each inspected (exit codes, ports). It
// sees containers, not pods (ListPods): it is the Docker engine's own, for
// tools and tests that look beneath the pod contract.
func (e *Engine) List(ctx context.Context, labels map[string]string) ([]Container, error) {
	args := filters.NewArgs()
	for k, v := range labels {
		args.Add("label", k+"="+v)
	}
	summaries, err := e.cli.ContainerList(ctx, container.ListOptions{All: true, Filters: args})
	if err != nil {
		return nil, fmt.Errorf("list containers: %w", err)
	}
	out := make([]Container, 0, len(summaries))
	for _, s := range summaries {
		c, err := e.inspectContainer(ctx, s.ID)
		if errors.Is(err, runtime.ErrNotFound) {
			continue // removed since the listing
		}
		if err != nil {
			return nil, err
		}
		if !e.owner.Owns(c.Labels) {
			continue // another berth server's (owner.go)
		}
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// waitContainer blocks until the container exits and returns its exit code. A
// container that has not started yet is waited for through its next exit;
// one that already exited returns at once with its last exit code.
func (e *Engine) waitContainer(ctx context.Context, id string) (int, error) {
	info, err := e.cli.ContainerInspect(ctx, id)
	if err != nil {
		return 0, notFoundOr(id, "inspect", err)
	}
	return e.wait(ctx, info)
}

// wait is waitContainer of a container as it was just inspected.
func (e *Engine) wait(ctx context.Context, info container.InspectResponse) (int, error) {
	id := info.ID
	// "not-running" is satisfied by a created container at once, so a
	// container that has not run yet must wait for its next exit instead.
	cond := container.WaitConditionNotRunning
	if info.State != nil && info.State.Status == container.StateCreated {
		cond = container.WaitConditionNextExit
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// ContainerWait returns once the engine registered the wait.
	results, errs := e.cli.ContainerWait(ctx, id, cond)
	if cond == container.WaitConditionNextExit {
		// It may have started and exited between the inspect and the
		// registration; then the next exit is one that will never come.
		if c, err := e.inspectContainer(ctx, id); err == nil && c.State != "created" && !c.Running && c.State != "restarting" {
			return c.ExitCode, nil
		}
	}
	select {
	case res := <-results:
		if res.Error != nil && res.Error.Message != "" {
			return int(res.StatusCode), fmt.Errorf("wait container %s: %s", shortID(id), res.Error.Message)
		}
		return int(res.StatusCode), nil
	case err := <-errs:
		if cerrdefs.IsNotFound(err) {
			return 0, fmt.Errorf("%w: %s", runtime.ErrNotFound, id)
		}
		if ctx.Err() != nil {
			return 0, ctx.Err()
		}
		return 0, fmt.Errorf("wait container %s: %w", shortID(id), err)
	}
}

func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}
