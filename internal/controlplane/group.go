package controlplane

// An instance is a group of containers that live and die together: the
// service's own container and its sidecars, as an ECS task or a Kubernetes
// pod. They share one network namespace, so they reach each other on
// localhost. The namespace belongs to a network holder, a container that
// does nothing but hold it (and the app network's alias and the published
// port), so the others can start in any order: an init container before
// the service's own container, a log shipper once it is healthy.
//
//	                  holder started
//	created ──▶ holder ─────────────▶ each container starts when its depends_on
//	                                  conditions hold:  start    (the other started)
//	                                                    healthy  (the service passed its check)
//	                                                    complete (the other exited)
//	                                                    success  (the other exited 0)
//	           ──▶ healthy: the service's container passed its health check and
//	               every container has started (init containers may have exited)
//
// Afterwards an essential container's death (the service's own included)
// takes the whole instance down and the reconciler replaces it; a
// non-essential sidecar is restarted alone, with the crash-loop backoff;
// init containers ran once and stay exited. Stopping goes the other way:
// a container stops once every container that depends on it has stopped,
// then the holder.
//
// A service without sidecars needs no holder: its container joins the app
// network itself, and the same code starts it as a group of one.

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/berth-dev/berth/internal/api"
	"github.com/berth-dev/berth/internal/runtime"
	"github.com/berth-dev/berth/internal/runtime/docker"
	"github.com/berth-dev/berth/internal/spec"
)

// holderName is the berth.sidecar label of a network holder; it cannot be a
// sidecar's name.
const holderName = "_net"

// holderImager is the optional engine power to provide the network holder's
// image.
type holderImager interface {
	HolderImage(ctx context.Context) (string, error)
}

var _ holderImager = (*docker.Engine)(nil)

// group is what an instance has besides its own container.
type group struct {
	holderID string
	members  []*member // sidecars, in spec order
	// mainDeps are the service container's depends_on targets.
	mainDeps []string
}

// member is one sidecar of an instance. The counters are guarded by the
// service's mu.
type member struct {
	name        string
	containerID string
	essential   bool
	once        bool     // an init container: runs once per start
	deps        []string // depends_on targets
	restarts    int
	restarting  bool
	startedAt   time.Time
	lastExit    string
}

// sidecarNames returns a service's sidecars in file order.
func sidecarNames(sp *spec.Service) []string {
	if len(sp.SidecarOrder) == len(sp.Sidecars) {
		ok := true
		for _, n := range sp.SidecarOrder {
			if _, in := sp.Sidecars[n]; !in {
				ok = false
			}
		}
		if ok {
			return sp.SidecarOrder
		}
	}
	names := make([]string, 0, len(sp.Sidecars))
	for n := range sp.Sidecars {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func depNames(deps map[string]spec.Condition) []string {
	out := make([]string, 0, len(deps))
	for n := range deps {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// containerName is the engine name of an instance's container.
func containerName(app string, rev revision, id string) string {
	return fmt.Sprintf("berth-%s-%s-%d-%s", app, rev.spec.Name, rev.number, id)
}

// memberLabels are the labels of an instance's sidecar or holder.
func memberLabels(app string, rev revision, id, name string) map[string]string {
	return map[string]string{
		runtime.LabelApp:      app,
		runtime.LabelService:  rev.spec.Name,
		runtime.LabelRevision: strconv.Itoa(rev.number),
		runtime.LabelInstance: id,
		runtime.LabelRole:     string(runtime.RoleSidecar),
		runtime.LabelSidecar:  name,
	}
}

// holderSpec is the network holder of an instance: the app network, the
// service's alias and published port, and the internal host names, which
// every container of the instance shares.
func (d *Daemon) holderSpec(app string, rev revision, id, image string) runtime.ContainerSpec {
	sp := rev.spec
	return runtime.ContainerSpec{
		Name:       containerName(app, rev, id) + holderName,
		Image:      image,
		Labels:     memberLabels(app, rev, id, holderName),
		Port:       sp.Port,
		Network:    networkName(app),
		Aliases:    []string{sp.Name},
		ExtraHosts: d.internalHosts(app),
		PidsLimit:  spec.MinPids,
		StopGrace:  time.Second,
	}
}

// sidecarSpec is one sidecar of an instance: its own image, command, env,
// secrets and limits, in the holder's network namespace. It runs on the
// service's platform, as an ECS task's containers share one.
func (d *Daemon) sidecarSpec(app string, rev revision, id string, sc *spec.Sidecar, secrets map[string]string, holderID string) runtime.ContainerSpec {
	env := map[string]string{}
	for k, v := range sc.Env {
		env[k] = v
	}
	for _, k := range sc.Secrets {
		if v, ok := secrets[k]; ok {
			env[k] = v
		}
	}
	return runtime.ContainerSpec{
		Name:          containerName(app, rev, id) + "-" + sc.Name,
		Image:         sc.Image,
		Command:       sc.Command,
		Env:           env,
		Labels:        memberLabels(app, rev, id, sc.Name),
		JoinContainer: holderID,
		CPU:           sc.CPU,
		Memory:        sc.Memory,
		PidsLimit:     sc.Pids,
		Platform:      rev.spec.Platform,
		StopGrace:     spec.DefaultStopGrace,
	}
}

// createInstance creates (but does not start) a new instance of rev: its
// container, and for a service with sidecars the holder and the sidecars.
// On failure nothing it created is left.
func (d *Daemon) createInstance(ctx context.Context, app string, rev revision, secrets map[string]string) (*instance, error) {
	sp := rev.spec
	in := &instance{id: newID(), rev: rev.number, state: stateStarting}
	main := d.containerSpec(app, rev, in.id, secrets)
	if len(sp.Sidecars) == 0 {
		c, err := d.engine.Create(ctx, main)
		if err != nil {
			return nil, err
		}
		in.containerID = c.ID
		return in, nil
	}
	hi, ok := d.engine.(holderImager)
	if !ok {
		return nil, fmt.Errorf("%w: this engine cannot run sidecars", ErrInvalid)
	}
	image, err := hi.HolderImage(ctx)
	if err != nil {
		return nil, fmt.Errorf("network holder image: %w", err)
	}
	g := &group{mainDeps: depNames(sp.DependsOn)}
	in.group = g
	undo := func() { d.removeInstance(context.WithoutCancel(ctx), in) }
	h, err := d.engine.Create(ctx, d.holderSpec(app, rev, in.id, image))
	if err != nil {
		return nil, fmt.Errorf("create the network holder: %w", err)
	}
	g.holderID = h.ID
	main.JoinContainer, main.Network, main.Aliases, main.Port, main.HostPort, main.ExtraHosts = h.ID, "", nil, 0, 0, nil
	c, err := d.engine.Create(ctx, main)
	if err != nil {
		undo()
		return nil, err
	}
	in.containerID = c.ID
	inits := sp.InitContainers()
	for _, name := range sidecarNames(sp) {
		sc := sp.Sidecars[name]
		c, err := d.engine.Create(ctx, d.sidecarSpec(app, rev, in.id, sc, secrets, h.ID))
		if err != nil {
			undo()
			return nil, fmt.Errorf("sidecar %s: %w", name, err)
		}
		g.members = append(g.members, &member{name: name, containerID: c.ID, essential: sc.Essential, once: inits[name], deps: depNames(sc.DependsOn)})
	}
	return in, nil
}

// errIncomplete means a stopped instance lacks some of its containers and
// cannot be started again.
var errIncomplete = errors.New("instance is incomplete")

// existingInstance rebuilds the instance whose container is mainID (a
// stopped one, for a rollback or resume) from the engine's labels.
func (d *Daemon) existingInstance(ctx context.Context, app string, rev revision, mainID string) (*instance, error) {
	c, err := d.engine.Inspect(ctx, mainID)
	if err != nil {
		return nil, err
	}
	in := &instance{id: c.Labels[runtime.LabelInstance], containerID: mainID, rev: rev.number, state: stateStarting}
	sp := rev.spec
	if len(sp.Sidecars) == 0 {
		return in, nil
	}
	ms, err := d.engine.List(ctx, map[string]string{
		runtime.LabelApp: app, runtime.LabelService: sp.Name,
		runtime.LabelInstance: in.id, runtime.LabelRole: string(runtime.RoleSidecar),
	})
	if err != nil {
		return nil, err
	}
	in.group = attachGroup(sp, ms)
	if in.group.holderID == "" || len(in.group.members) != len(sp.Sidecars) {
		return in, errIncomplete
	}
	return in, nil
}

// attachGroup builds a group from an instance's sidecar-role containers.
func attachGroup(sp *spec.Service, cs []runtime.Container) *group {
	byName := map[string]runtime.Container{}
	for _, c := range cs {
		byName[c.Labels[runtime.LabelSidecar]] = c
	}
	g := &group{mainDeps: depNames(sp.DependsOn)}
	if h, ok := byName[holderName]; ok {
		g.holderID = h.ID
	}
	inits := sp.InitContainers()
	for _, name := range sidecarNames(sp) {
		c, ok := byName[name]
		if !ok {
			continue
		}
		sc := sp.Sidecars[name]
		g.members = append(g.members, &member{name: name, containerID: c.ID, essential: sc.Essential, once: inits[name], deps: depNames(sc.DependsOn), startedAt: c.StartedAt})
	}
	return g
}

// startNode is one container of a starting instance.
type startNode struct {
	name      string
	id        string
	deps      map[string]spec.Condition
	essential bool
	main      bool
	// Closed when the container started, exited (code is then set), and,
	// for the service's own container, passed its health check.
	started, exited, healthy chan struct{}
	code                     int
}

// runInstance starts a created (or stopped) instance: the holder, then every
// container as its depends_on conditions allow, and waits until the
// service's container is healthy and every container has started. On
// failure the error is an *instanceFailure with the output of the container
// that failed; the caller removes the instance.
func (d *Daemon) runInstance(ctx context.Context, in *instance, sp *spec.Service) error {
	in.startedAt = time.Now()
	if g := in.group; g != nil {
		c, err := d.engine.Start(ctx, g.holderID)
		if err != nil {
			return &instanceFailure{err: fmt.Errorf("start the network holder of instance %s: %w", in.id, err)}
		}
		in.addr = c.HostAddr
	}
	nodes := map[string]*startNode{sp.Name: {name: sp.Name, id: in.containerID, deps: sp.DependsOn, essential: true, main: true}}
	if g := in.group; g != nil {
		for _, m := range g.members {
			nodes[m.name] = &startNode{name: m.name, id: m.containerID, deps: sp.Sidecars[m.name].DependsOn, essential: m.essential}
		}
	}
	for _, n := range nodes {
		n.started, n.exited, n.healthy = make(chan struct{}), make(chan struct{}), make(chan struct{})
	}

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	// Exit watchers outlive their node's start but not the instance's.
	watchCtx, stopWatch := context.WithCancel(context.WithoutCancel(ctx))
	defer stopWatch()
	var (
		mu    sync.Mutex
		first error
		wg    sync.WaitGroup
	)
	fail := func(err error) {
		mu.Lock()
		defer mu.Unlock()
		if first == nil {
			first = err
			cancel(err)
		}
	}
	for _, n := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := d.startNode(ctx, watchCtx, in, sp, n, nodes, fail); err != nil {
				fail(err)
			}
		}()
	}
	wg.Wait()
	if first != nil {
		return first
	}
	return nil
}

// startNode waits for n's dependencies, starts it, watches its exit and,
// for the service's own container, waits until it is healthy.
func (d *Daemon) startNode(ctx, watchCtx context.Context, in *instance, sp *spec.Service, n *startNode, nodes map[string]*startNode, fail func(error)) error {
	for _, dep := range depNames(n.deps) {
		cond, t := n.deps[dep], nodes[dep]
		if t == nil {
			return fmt.Errorf("%w: %s depends on unknown container %s", ErrInvalid, n.name, dep)
		}
		var ready chan struct{}
		switch cond {
		case spec.ConditionStart:
			ready = t.started
		case spec.ConditionHealthy:
			ready = t.healthy
		default: // complete, success
			ready = t.exited
		}
		select {
		case <-ready:
		case <-ctx.Done():
			return context.Cause(ctx)
		}
		if cond == spec.ConditionSuccess && t.code != 0 {
			return &instanceFailure{
				err:      fmt.Errorf("%w: init container %s of instance %s exited with code %d%s, so %s never started", ErrUnhealthy, dep, in.id, t.code, d.oomNote(t.id), n.name),
				lastLogs: d.lastLogs(t.id, 20),
			}
		}
	}
	c, err := d.engine.Start(ctx, n.id)
	if err != nil {
		return &instanceFailure{err: fmt.Errorf("start %s of instance %s: %w", n.name, in.id, err), lastLogs: d.lastLogs(n.id, 20)}
	}
	if n.main && in.group == nil {
		in.addr = c.HostAddr
	}
	close(n.started)
	// Tracked by d.bg like all daemon work; it ends with runInstance
	// (watchCtx), which ends with its caller's ctx.
	d.bg.Add(1)
	go func() {
		defer d.bg.Done()
		defer d.contain("watch a starting container", "instance", in.id, "container", n.name)
		code, err := d.engine.Wait(watchCtx, n.id)
		if err != nil {
			return
		}
		n.code = code
		close(n.exited)
		if n.essential && !n.main {
			// An essential sidecar that exits while its instance starts
			// fails the start (the service's own exit is seen by
			// waitHealthy, with its own message).
			select {
			case <-ctx.Done():
			default:
				fail(&instanceFailure{
					err:      fmt.Errorf("%w: essential sidecar %s of instance %s exited with code %d while starting%s", ErrUnhealthy, n.name, in.id, code, d.oomNote(n.id)),
					lastLogs: d.lastLogs(n.id, 20),
				})
			}
		}
	}()
	if !n.main {
		return nil
	}
	if err := d.waitHealthy(ctx, in, sp); err != nil {
		if cause := context.Cause(ctx); ctx.Err() != nil && cause != nil {
			var f *instanceFailure
			if errors.As(cause, &f) {
				return cause // another container failed first; say so
			}
		}
		return &instanceFailure{err: err, lastLogs: d.lastLogs(n.id, 20)}
	}
	close(n.healthy)
	return nil
}

// oomNote says why a container died when the kernel killed it for memory.
func (d *Daemon) oomNote(containerID string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if c, err := d.engine.Inspect(ctx, containerID); err == nil && c.OOMKilled {
		return " (killed: out of memory; raise memory in berth.yaml)"
	}
	return ""
}

// stopGroup stops an instance's containers in reverse dependency order (a
// container once all that depend on it have stopped), then its holder.
func (d *Daemon) stopGroup(ctx context.Context, in *instance, grace time.Duration) {
	stop := func(id, what string) {
		if err := d.engine.Stop(ctx, id, grace); err != nil && !errors.Is(err, runtime.ErrNotFound) {
			d.log.Warn("stop container", "instance", in.id, "container", what, "err", err)
		}
	}
	g := in.group
	if g == nil {
		stop(in.containerID, "main")
		return
	}
	const mainKey = "\x00main" // cannot clash with a sidecar's name
	deps := map[string][]string{mainKey: g.mainDeps}
	ids := map[string]string{mainKey: in.containerID}
	for _, m := range g.members {
		deps[m.name], ids[m.name] = m.deps, m.containerID
	}
	stopped := map[string]chan struct{}{}
	for k := range ids {
		stopped[k] = make(chan struct{})
	}
	// The service's own name in a sidecar's depends_on means the main
	// container.
	key := func(dep string) string {
		if _, ok := ids[dep]; ok {
			return dep
		}
		return mainKey
	}
	var wg sync.WaitGroup
	for k, id := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer close(stopped[k])
			for other, ds := range deps {
				if other == k {
					continue
				}
				for _, dep := range ds {
					if key(dep) == k {
						<-stopped[other]
					}
				}
			}
			stop(id, k)
		}()
	}
	wg.Wait()
	stop(g.holderID, holderName)
}

// removeGroup removes every container of an instance.
func (d *Daemon) removeGroup(ctx context.Context, in *instance) {
	ids := []string{in.containerID}
	if g := in.group; g != nil {
		for _, m := range g.members {
			ids = append(ids, m.containerID)
		}
		ids = append(ids, g.holderID)
	}
	var wg sync.WaitGroup
	for _, id := range ids {
		if id == "" {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := d.engine.Remove(ctx, id); err != nil {
				d.log.Warn("remove container", "instance", in.id, "container", shortID(id), "err", err)
			}
		}()
	}
	wg.Wait()
}

// containerChoices names the containers of a service's instances, for
// messages about an unknown one.
func containerChoices(sp *spec.Service, service string) string {
	names := []string{service}
	if sp != nil {
		names = append(names, sidecarNames(sp)...)
	}
	if len(names) == 1 {
		return fmt.Sprintf("its only container is %s", service)
	}
	return fmt.Sprintf("its containers are %s (the service) and the sidecars %s", service, strings.Join(names[1:], ", "))
}

// exitWhy says how a container ended, for events.
func exitWhy(c runtime.Container, found bool) string {
	switch {
	case !found:
		return "disappeared from the engine"
	case c.OOMKilled:
		return "was killed: out of memory (raise memory in berth.yaml)"
	default:
		return fmt.Sprintf("exited with code %d", c.ExitCode)
	}
}

// restartMember starts a non-essential sidecar that exited again, in its
// instance's namespace, after the crash-loop backoff. Call with s.mu held.
func (d *Daemon) restartMember(s *service, in *instance, m *member, why string) {
	m.restarting = true
	m.restarts++
	m.lastExit = why
	n := m.restarts
	wait := backoff(n)
	d.event(s.app, s.name, "sidecar-restart", fmt.Sprintf("sidecar %s of instance %s %s; restarting it alone (restart %d, backoff %s)", m.name, in.id, why, n, wait))
	d.bg.Add(1)
	go func() {
		defer d.bg.Done()
		defer d.contain("sidecar restart")
		select {
		case <-time.After(wait):
		case <-d.ctx.Done():
			return
		}
		ctx, cancel := context.WithTimeout(d.ctx, 30*time.Second)
		defer cancel()
		_, err := d.engine.Start(ctx, m.containerID)
		s.mu.Lock()
		m.restarting = false
		m.startedAt = time.Now()
		live := slices.Contains(s.instances, in)
		s.mu.Unlock()
		if err != nil && live && d.ctx.Err() == nil {
			d.log.Warn("restart sidecar", "instance", in.id, "sidecar", m.name, "err", err)
		}
	}()
}

// listMembers lists the sidecars and holders of a service's instances by
// container ID (nil when the serving revision has no sidecars).
func (d *Daemon) listMembers(ctx context.Context, s *service) (map[string]runtime.Container, []runtime.Container, error) {
	cs, err := d.engine.List(ctx, map[string]string{runtime.LabelApp: s.app, runtime.LabelService: s.name, runtime.LabelRole: string(runtime.RoleSidecar)})
	if err != nil {
		return nil, nil, err
	}
	out := make(map[string]runtime.Container, len(cs))
	for _, c := range cs {
		out[c.ID] = c
	}
	return out, cs, nil
}

// sweepOrphans removes sidecars and holders whose instance's own container
// is gone (removed by a path that knew only it). A member that was never
// started may belong to an instance being created, and is left alone.
func (d *Daemon) sweepOrphans(ctx context.Context, mains, members []runtime.Container) {
	have := map[string]bool{}
	for _, c := range mains {
		have[c.Labels[runtime.LabelInstance]] = true
	}
	for _, c := range members {
		if have[c.Labels[runtime.LabelInstance]] || c.State == "created" {
			continue
		}
		if err := d.engine.Remove(ctx, c.ID); err != nil {
			d.log.Warn("remove orphaned sidecar", "container", c.Name, "err", err)
		}
	}
}

// adoptGroups gives adopted instances their holder (and so their address)
// and sidecars, marks an instance whose group is broken unhealthy (the
// reconciler replaces it), stops the sidecars of kept stopped instances and
// removes the rest. Call with s.mu held, after the instances were adopted.
func (d *Daemon) adoptGroups(ctx context.Context, s *service, mains []runtime.Container, keep map[int]bool) {
	members, err := d.engine.List(ctx, map[string]string{runtime.LabelApp: s.app, runtime.LabelService: s.name, runtime.LabelRole: string(runtime.RoleSidecar)})
	if err != nil {
		d.log.Warn("adopt sidecars", "service", s.name, "err", err)
		return
	}
	byInstance := map[string][]runtime.Container{}
	for _, c := range members {
		byInstance[c.Labels[runtime.LabelInstance]] = append(byInstance[c.Labels[runtime.LabelInstance]], c)
	}
	adopted := map[string]bool{}
	if s.spec != nil && len(s.spec.Sidecars) > 0 {
		for _, in := range s.instances {
			adopted[in.id] = true
			g := attachGroup(s.spec, byInstance[in.id])
			in.group = g
			holder := slices.IndexFunc(byInstance[in.id], func(c runtime.Container) bool { return c.ID == g.holderID })
			if holder < 0 || !byInstance[in.id][holder].Running {
				in.state, in.crashWhy = stateUnhealthy, "lost its network holder while the daemon was down"
				continue
			}
			in.addr = byInstance[in.id][holder].HostAddr
			for _, name := range sidecarNames(s.spec) {
				if !slices.ContainsFunc(g.members, func(m *member) bool { return m.name == name }) && s.spec.Sidecars[name].Essential {
					in.state, in.crashWhy = stateUnhealthy, "lost its essential sidecar "+name+" while the daemon was down"
				}
			}
		}
	}
	mainOf := map[string]runtime.Container{}
	for _, c := range mains {
		mainOf[c.Labels[runtime.LabelInstance]] = c
	}
	for id, cs := range byInstance {
		if adopted[id] {
			continue
		}
		main, ok := mainOf[id]
		n, _ := strconv.Atoi(main.Labels[runtime.LabelRevision])
		kept := ok && !main.Running && (keep[n] || (n == s.rev && s.paused))
		for _, c := range cs {
			switch {
			case kept && c.Running:
				d.cleanUpLater(ctx, "stop", c, func(ctx context.Context) error { return d.engine.Stop(ctx, c.ID, 0) })
			case kept:
			case ok && keep[n]:
				// Its main container is being stopped by adopt.
				d.cleanUpLater(ctx, "stop", c, func(ctx context.Context) error { return d.engine.Stop(ctx, c.ID, 0) })
			default:
				d.cleanUpLater(ctx, "remove", c, func(ctx context.Context) error { return d.engine.Remove(ctx, c.ID) })
			}
		}
	}
}

// cleanUpTimeout bounds a stop or removal that adopt leaves running.
const cleanUpTimeout = 30 * time.Second

// cleanUpLater stops or removes (call) a container that adopt does not
// keep, without holding up the start. d.bg tracks it, since the store
// closes only once such work is over (server.go). The daemon stopping does
// not cancel it (a half-done removal is wasted work), but cleanUpTimeout
// bounds it, so a stuck engine cannot hold up the shutdown.
func (d *Daemon) cleanUpLater(ctx context.Context, what string, c runtime.Container, call func(context.Context) error) {
	d.bg.Add(1)
	go func() {
		defer d.bg.Done()
		defer d.contain("adopt: "+what, "container", c.Name)
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanUpTimeout)
		defer cancel()
		if err := call(ctx); err != nil {
			d.log.Warn("adopt: "+what+" a container it does not keep", "container", c.Name, "err", err)
		}
	}()
}

// sidecarStatus reports an instance's sidecars as the daemon sees them, and
// their restarts in all. Call with the service's mu held.
func sidecarStatus(sp *spec.Service, in *instance) ([]api.SidecarStatus, int) {
	if in.group == nil {
		return nil, 0
	}
	var (
		out      []api.SidecarStatus
		restarts int
	)
	for _, m := range in.group.members {
		st := api.SidecarStatus{Name: m.name, State: "running", ContainerID: shortID(m.containerID), Essential: m.essential, Init: m.once, Restarts: m.restarts, LastExit: m.lastExit}
		switch {
		case m.once:
			st.State = "completed"
		case m.restarting:
			st.State = "restarting"
		}
		if sc := sp.Sidecars[m.name]; sc != nil {
			st.Limits = limitsOf(&spec.Service{CPU: sc.CPU, Memory: sc.Memory, Pids: sc.Pids})
		}
		restarts += m.restarts
		out = append(out, st)
	}
	return out, restarts
}

// limitsOf reports a service's resource limits, nil when it has none.
func limitsOf(sp *spec.Service) *api.Limits {
	if sp == nil || sp.CPU == 0 && sp.Memory == 0 && sp.Pids == 0 {
		return nil
	}
	return &api.Limits{CPU: sp.CPU, Memory: sp.Memory, Pids: sp.Pids}
}
