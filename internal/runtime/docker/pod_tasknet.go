package docker

// Task networks kept ready. A container joining an app network costs the
// engine about 0.3 s at start (a veth pair, its addresses, the embedded
// DNS rules in the new namespace): most of a task's start. So the engine
// keeps, per app network, one network holder started on it, and the next
// task-shaped pod (no sidecars, no port, no names on the network: a task)
// joins that holder's namespace instead, which starts like a container
// with no network at all. It has the same reach: the app's services by
// name, its internal names (the holder's /etc/hosts), nothing else. Each
// such pod gets a holder of its own, removed with it; the next one is
// started in the background once the pod that took one has started (see
// warmAfter: not while it starts), and by WarmTaskNet, which the control
// plane calls once it made an app's network. With none ready (a burst of tasks, the first of
// an app) the pod joins the network itself, as it always could.
//
// The ready holders are labelled as berth always labelled them
// (runtime.RoleTaskNet, the internal names they resolve), so a later
// daemon takes back those it left, and RemoveNetwork removes them first.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"

	"github.com/berth-dev/berth/internal/runtime"
)

// labelTaskNetHosts on a ready holder are the /etc/hosts lines it has
// (fixed at create): one made before the app's internal names changed is
// not used.
const labelTaskNetHosts = "berth.tasknet.hosts"

// taskNets are the ready holders, by network. The zero value is ready.
type taskNets struct {
	mu   sync.Mutex
	nets map[string]*netPool
	// pending are the warms (and the holders joined) left for later by
	// the task pods created, by pod ID (warmAfter).
	pending map[string]pendingTask
}

type netPool struct {
	ready   []readyNet
	filling chan struct{} // closed when the fill under way ends; nil: none
	closed  bool          // RemoveNetwork: no more holders until EnsureNetwork
	adopted bool          // an earlier daemon's holders were looked at
}

// readyNet is a started holder and the /etc/hosts lines it has.
type readyNet struct {
	id    string
	hosts string
}

func (t *taskNets) pool(network string) *netPool {
	if t.nets == nil {
		t.nets = map[string]*netPool{}
	}
	p := t.nets[network]
	if p == nil {
		p = &netPool{}
		t.nets[network] = p
	}
	return p
}

// hostsKey is how a holder records its /etc/hosts lines.
func hostsKey(hosts []string) string { return strings.Join(hosts, ",") }

// taskShaped reports whether a pod may join a ready holder: a task's pod.
func taskShaped(spec runtime.PodSpec) bool {
	return spec.Network != "" && len(spec.Sidecars) == 0 && spec.Port == 0 && len(spec.Aliases) == 0
}

// takeTaskNet returns a ready holder on network whose /etc/hosts points
// names at its gateway there, for a pod to join, as just inspected; nil
// when none is ready. The holder's own inspect says the gateway: the
// pod's start needs no look at the network.
func (e *Engine) takeTaskNet(ctx context.Context, network string, names []string) *container.InspectResponse {
	for {
		e.tasks.mu.Lock()
		p := e.tasks.pool(network)
		var r readyNet
		if n := len(p.ready); n > 0 {
			r, p.ready = p.ready[n-1], p.ready[:n-1]
		}
		e.tasks.mu.Unlock()
		if r.id == "" {
			return nil
		}
		// One that died meanwhile (removed by hand, the engine restarted)
		// or lost its network is dropped; one made for other names, or
		// for the gateway of a network since made again, too.
		info, ok := e.readyOn(ctx, r.id, network)
		if ok && r.hosts == hostsKey(hostLines(names, info.NetworkSettings.Networks[network].Gateway)) {
			return &info
		}
		e.removeQuietly(ctx, r.id, "a task network holder that is dead or has other names")
	}
}

// WarmTaskNet starts, in the background, a network holder on network for
// the next task-shaped pod, unless one is ready or on its way. labels are
// the app's (runtime.LabelApp, to list and remove it with the app);
// internalNames the names the pods must resolve (PodSpec.InternalNames).
// Ready holders with other names are replaced. It returns at once; Close
// ends the work.
func (e *Engine) WarmTaskNet(network string, labels map[string]string, internalNames []string) {
	e.supervise()
	e.sup.mu.Lock()
	ctx, ok := e.sup.ctx, e.sup.started && !e.sup.closed
	e.sup.mu.Unlock()
	if !ok || network == "" {
		return
	}
	e.sup.wg.Go(func() {
		if err := e.warmTaskNet(ctx, network, labels, internalNames); err != nil && ctx.Err() == nil {
			e.log.Warn("start a network holder for the next task", "network", network, "err", err)
		}
	})
}

func (e *Engine) warmTaskNet(ctx context.Context, network string, labels map[string]string, internalNames []string) error {
	hosts, err := e.internalHosts(ctx, runtime.PodSpec{Name: network, Network: network, InternalNames: internalNames})
	if err != nil {
		return err
	}
	key := hostsKey(hosts)
	e.tasks.mu.Lock()
	p := e.tasks.pool(network)
	adopt := !p.adopted
	p.adopted = true
	e.tasks.mu.Unlock()
	if adopt {
		e.adoptTaskNets(ctx, network)
	}

	e.tasks.mu.Lock()
	ready := slices.Clone(p.ready)
	e.tasks.mu.Unlock()
	// Those that died or lost their network (it was removed and made
	// again) are replaced now, not found out by the next task.
	dead := map[string]bool{}
	for _, r := range ready {
		_, ok := e.readyOn(ctx, r.id, network)
		dead[r.id] = !ok
	}
	e.tasks.mu.Lock()
	var stale []string
	p.ready = slices.DeleteFunc(p.ready, func(r readyNet) bool {
		if r.hosts != key || dead[r.id] {
			stale = append(stale, r.id)
			return true
		}
		return false
	})
	busy := p.closed || p.filling != nil || len(p.ready) > 0
	if !busy {
		p.filling = make(chan struct{})
	}
	e.tasks.mu.Unlock()
	for _, id := range stale {
		e.removeQuietly(ctx, id, "a task network holder with other names")
	}
	if busy {
		return nil
	}
	id, err := e.startTaskNet(ctx, network, labels, hosts)
	e.tasks.mu.Lock()
	close(p.filling)
	p.filling = nil
	keep := id != "" && !p.closed
	if keep {
		p.ready = append(p.ready, readyNet{id: id, hosts: key})
	}
	e.tasks.mu.Unlock()
	if id != "" && !keep {
		e.removeQuietly(context.WithoutCancel(ctx), id, "a task network holder made while its network went")
	}
	return err
}

// readyOn inspects a ready holder and reports whether it runs on network.
func (e *Engine) readyOn(ctx context.Context, id, network string) (container.InspectResponse, bool) {
	info, err := e.cli.ContainerInspect(ctx, id)
	return info, err == nil && info.State != nil && info.State.Running && !info.State.Paused &&
		info.NetworkSettings != nil && info.NetworkSettings.Networks[network] != nil
}

// taskWarmLimit is how long a task's pod may stay unstarted before the
// next task's holder starts all the same.
const taskWarmLimit = 10 * time.Second

// warmAfter has warm run (start the next task's holder) once the pod has
// started (StartPod, which the task's attach precedes), is removed, or
// stayed unstarted taskWarmLimit, whichever comes first. Starting a
// holder on a network is the heaviest thing the engine does for a task
// (about 0.3 s of its time): done while the task starts, it slows the
// start. (Later still, at the task's removal, it is too late for the
// next task when they follow each other closely: bench/task.)
//
// holder is the ready holder the pod joined, as CreatePod took it (nil:
// none); until then StartPod takes it as running (joined), which saves
// the start an inspect of it.
func (t *taskNets) warmAfter(pod string, holder *container.InspectResponse, warm func()) {
	t.mu.Lock()
	if t.pending == nil {
		t.pending = map[string]pendingTask{}
	}
	t.pending[pod] = pendingTask{warm: warm, holder: holder}
	t.mu.Unlock()
	time.AfterFunc(taskWarmLimit, func() { t.warmPending(pod) })
}

// pendingTask is what a task pod's creation left for its start.
type pendingTask struct {
	warm   func()
	holder *container.InspectResponse
}

// joined is the ready holder a task pod created moments ago joined, as
// taken (nil: none, or the pod started, was removed or is older).
func (t *taskNets) joined(pod string) *container.InspectResponse {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.pending[pod].holder
}

// warmPending runs the warm a pod's creation left for later, if any.
func (t *taskNets) warmPending(pod string) {
	t.mu.Lock()
	p := t.pending[pod]
	delete(t.pending, pod)
	t.mu.Unlock()
	if p.warm != nil {
		p.warm()
	}
}

func (e *Engine) startTaskNet(ctx context.Context, network string, labels map[string]string, hosts []string) (string, error) {
	image, err := e.ensureHolderImage(ctx)
	if err != nil {
		return "", err
	}
	var rnd [5]byte
	_, _ = rand.Read(rnd[:])
	l := map[string]string{runtime.LabelRole: string(runtime.RoleTaskNet), labelTaskNetHosts: hostsKey(hosts)}
	if app := labels[runtime.LabelApp]; app != "" {
		l[runtime.LabelApp] = app
	}
	c, err := e.createContainer(ctx, runtime.ContainerSpec{
		Name:       network + "-tasknet-" + hex.EncodeToString(rnd[:]),
		Image:      image,
		Labels:     l,
		Network:    network,
		ExtraHosts: hosts,
		PidsLimit:  holderPids,
		StopGrace:  holderGrace,
	})

	if err != nil {
		return "", err
	}
	if _, err := e.startContainer(ctx, c.ID); err != nil {
		e.removeQuietly(context.WithoutCancel(ctx), c.ID, "a task network holder that did not start")
		return "", err
	}
	return c.ID, nil
}

// adoptTaskNets takes back the ready holders on network an earlier daemon
// of this owner left (those no pod joined), and removes the stopped ones.
func (e *Engine) adoptTaskNets(ctx context.Context, network string) {
	holders, inUse, err := e.taskNetsOn(ctx, network)
	if err != nil {
		e.log.Warn("list the task network holders an earlier daemon left", "network", network, "err", err)
		return
	}
	var found []readyNet
	for _, h := range holders {
		switch {
		case inUse[h.ID]:
		case h.State == container.StateRunning:
			found = append(found, readyNet{id: h.ID, hosts: h.Labels[labelTaskNetHosts]})
		default:
			e.removeQuietly(ctx, h.ID, "a stopped task network holder")
		}
	}
	e.tasks.mu.Lock()
	p := e.tasks.pool(network)
	for _, r := range found {
		if !slices.Contains(p.ready, r) {
			p.ready = append(p.ready, r)
		}
	}
	e.tasks.mu.Unlock()
}

// taskNetsOn lists the owner's task network holders on network, and which
// of them a container joined.
func (e *Engine) taskNetsOn(ctx context.Context, network string) ([]container.Summary, map[string]bool, error) {
	hs, err := e.cli.ContainerList(ctx, container.ListOptions{All: true, Filters: filters.NewArgs(
		filters.Arg("label", runtime.LabelRole+"="+string(runtime.RoleTaskNet)),
		filters.Arg("network", network),
	)})
	if err != nil {
		return nil, nil, fmt.Errorf("list task network holders: %w", err)
	}
	hs = slices.DeleteFunc(hs, func(c container.Summary) bool { return !e.owner.Owns(c.Labels) })
	inUse := map[string]bool{}
	if len(hs) == 0 {
		return hs, inUse, nil
	}
	// Whatever joined one, a pod's main container or a task container of
	// a daemon from before pods.
	all, err := e.cli.ContainerList(ctx, container.ListOptions{All: true})
	if err != nil {
		return nil, nil, fmt.Errorf("list containers: %w", err)
	}
	for _, m := range all {
		if mode := container.NetworkMode(m.HostConfig.NetworkMode); mode.IsContainer() {
			inUse[mode.ConnectedContainer()] = true
		}
	}
	return hs, inUse, nil
}

// closeTaskNets stops holders being made on network, waits for one under
// way, and removes the ready ones and those an earlier daemon left (that
// no pod joined): the network is about to go.
func (e *Engine) closeTaskNets(ctx context.Context, network string) {
	e.tasks.mu.Lock()
	p := e.tasks.pool(network)
	p.closed = true
	filling, ready := p.filling, p.ready
	p.ready = nil
	e.tasks.mu.Unlock()
	if filling != nil {
		select {
		case <-filling:
		case <-ctx.Done():
		}
	}
	for _, r := range ready {
		e.removeQuietly(ctx, r.id, "a ready task network holder")
	}
	holders, inUse, err := e.taskNetsOn(ctx, network)
	if err != nil {
		return
	}
	for _, h := range holders {
		if !inUse[h.ID] {
			e.removeQuietly(ctx, h.ID, "a task network holder")
		}
	}
}

// openTaskNets lets network have ready holders again.
func (e *Engine) openTaskNets(network string) {
	e.tasks.mu.Lock()
	defer e.tasks.mu.Unlock()
	if p := e.tasks.nets[network]; p != nil {
		p.closed = false
	}
}

// removeQuietly removes a container the caller no longer needs, logging a
// failure.
func (e *Engine) removeQuietly(ctx context.Context, id, what string) {
	if err := e.Remove(ctx, id); err != nil {
		e.log.Warn("remove "+what, "id", shortID(id), "err", err)
	}
}
