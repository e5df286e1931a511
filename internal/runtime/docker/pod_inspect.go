package docker

// Reading a pod back from Docker alone (see pod.go for the labels that
// make it possible, pod_legacy.go for the pods made before them):
// InspectPod, ListPods, and what the contract reports of a pod (its state,
// Addr, Broken, containers).

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"

	"github.com/berth-dev/berth/internal/runtime"
)

// podInfo is a pod as Docker has it.
type podInfo struct {
	main   container.InspectResponse
	layout podLayout
	// holder is nil when the pod has none, or it is gone.
	holder *container.InspectResponse
	// sidecars by name; a gone one is missing.
	sidecars map[string]container.InspectResponse
	// legacy: made before pods, its layout read from its labels
	// (pod_legacy.go); strays are its members that fit no place in it,
	// removed with it.
	legacy bool
	strays []string
}

func (pi podInfo) id() string   { return pi.main.ID }
func (pi podInfo) name() string { return strings.TrimPrefix(pi.main.Name, "/") }

// inspect returns the container of index i of the layout (false: gone).
func (pi podInfo) inspect(i int) (container.InspectResponse, bool) {
	if i == 0 {
		return pi.main, true
	}
	c, ok := pi.sidecars[pi.layout.Sidecars[i-1].Name]
	return c, ok
}

// inspectPod reads a pod from Docker by its ID, or ErrNotFound (also for a
// container that is no pod's main one, or another owner's pod).
func (e *Engine) inspectPod(ctx context.Context, id string) (podInfo, error) {
	return e.inspectPodWith(ctx, id, nil)
}

// inspectPodWith is inspectPod of a pod whose holder the caller has just
// inspected (nil: not), which it does not inspect again.
func (e *Engine) inspectPodWith(ctx context.Context, id string, holder *container.InspectResponse) (podInfo, error) {
	pi, err := e.podMain(ctx, id)
	if err != nil {
		return podInfo{}, err
	}
	return e.completePod(ctx, pi, holder)
}

// completePod adds to a pod read by podMain its holder (unless the caller
// has just inspected it: holder) and its sidecars.
func (e *Engine) completePod(ctx context.Context, pi podInfo, holder *container.InspectResponse) (podInfo, error) {
	info := pi.main
	var err error
	if pi.legacy {
		var members map[string][]container.InspectResponse
		if pi.hasLegacyMembers() {
			if members, err = e.listLegacyMembers(ctx, info.Config.Labels); err != nil {
				return podInfo{}, err
			}
		}
		e.fillLegacy(ctx, &pi, members[legacyKey(info.Config.Labels)])
		return pi, nil
	}
	var sidecars map[string][]container.InspectResponse
	if len(pi.layout.Sidecars) > 0 {
		if sidecars, err = e.listSidecars(ctx, map[string]string{labelPodID: info.ID}); err != nil {
			return podInfo{}, err
		}
	}
	if mode := info.HostConfig.NetworkMode; holder != nil && mode.IsContainer() && mode.ConnectedContainer() == holder.ID {
		pi.holder = holder
	}
	e.fillPod(ctx, &pi, sidecars[info.ID])
	return pi, nil
}

// podMain reads a pod's main container alone, with the pod's layout: all
// that attaching to it, waiting for it or reading its logs need. Its
// holder and sidecars are not read. ErrNotFound as for inspectPod.
func (e *Engine) podMain(ctx context.Context, id string) (podInfo, error) {
	if id == "" {
		return podInfo{}, fmt.Errorf("%w: pod \"\"", runtime.ErrNotFound)
	}
	info, err := e.cli.ContainerInspect(ctx, id)
	if err != nil {
		return podInfo{}, podNotFoundOr(id, err)
	}
	pi, ok, err := e.asPod(info)
	if err != nil || !ok {
		return podInfo{}, fmt.Errorf("%w: pod %s", runtime.ErrNotFound, id)
	}
	return pi, nil
}

// asPod reads the layout of a pod's main container (made before pods:
// from its labels); false for a container that is no main container of
// this owner's.
func (e *Engine) asPod(info container.InspectResponse) (podInfo, bool, error) {
	if info.Config == nil || info.HostConfig == nil || !e.owner.Owns(info.Config.Labels) {
		return podInfo{}, false, nil
	}
	raw, ok := info.Config.Labels[labelPodLayout]
	if !ok {
		l, ok := legacyLayout(info)
		return podInfo{main: info, layout: l, legacy: ok}, ok, nil
	}
	var l podLayout
	if err := json.Unmarshal([]byte(raw), &l); err != nil {
		return podInfo{}, false, fmt.Errorf("container %s: unreadable pod layout: %w", shortID(info.ID), err)
	}
	return podInfo{main: info, layout: l}, true, nil
}

// fillPod adds a pod's holder and its sidecars (of those listed).
func (e *Engine) fillPod(ctx context.Context, pi *podInfo, sidecars []container.InspectResponse) {
	pi.sidecars = map[string]container.InspectResponse{}
	for _, c := range sidecars {
		pi.sidecars[c.Config.Labels[runtime.LabelSidecar]] = c
	}
	if mode := pi.main.HostConfig.NetworkMode; pi.holder == nil && pi.layout.Holder && mode.IsContainer() {
		if h, err := e.cli.ContainerInspect(ctx, mode.ConnectedContainer()); err == nil {
			pi.holder = &h
		}
	}
}

// listSidecars lists and inspects the sidecars carrying labels, by pod ID.
func (e *Engine) listSidecars(ctx context.Context, labels map[string]string) (map[string][]container.InspectResponse, error) {
	args := filters.NewArgs(filters.Arg("label", labelPodID))
	for k, v := range labels {
		args.Add("label", k+"="+v)
	}
	infos, err := e.listInspect(ctx, args)
	if err != nil {
		return nil, err
	}
	out := map[string][]container.InspectResponse{}
	for _, c := range infos {
		id := c.Config.Labels[labelPodID]
		out[id] = append(out[id], c)
	}
	return out, nil
}

// listInspect lists the containers matching args and inspects each (a
// listing lacks exit codes and times), skipping those removed meanwhile.
// The inspections run a few at a time: one is a round trip to the engine.
func (e *Engine) listInspect(ctx context.Context, args filters.Args) ([]container.InspectResponse, error) {
	return e.listInspectIf(ctx, args, nil)
}

// listInspectIf is listInspect of the listed containers keep accepts (nil:
// all).
func (e *Engine) listInspectIf(ctx context.Context, args filters.Args, keep func(container.Summary) bool) ([]container.InspectResponse, error) {
	summaries, err := e.cli.ContainerList(ctx, container.ListOptions{All: true, Filters: args})
	if err != nil {
		return nil, fmt.Errorf("list containers: %w", err)
	}
	if keep != nil {
		summaries = slices.DeleteFunc(summaries, func(s container.Summary) bool { return !keep(s) })
	}
	out := make([]container.InspectResponse, len(summaries))
	errs := make([]error, len(summaries))
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for i, s := range summaries {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			out[i], errs[i] = e.cli.ContainerInspect(ctx, s.ID)
		})
	}
	wg.Wait()
	kept := out[:0]
	for i, c := range out {
		switch {
		case errs[i] == nil && c.Config != nil:
			kept = append(kept, c)
		case errs[i] != nil && !cerrdefs.IsNotFound(errs[i]):
			return nil, fmt.Errorf("inspect container %s: %w", shortID(summaries[i].ID), errs[i])
		}
	}
	return kept, nil
}

// InspectPod returns a pod's state, or ErrNotFound.
func (e *Engine) InspectPod(ctx context.Context, id string) (runtime.Pod, error) {
	e.supervise()
	pi, err := e.podMain(ctx, id)
	if err != nil {
		return runtime.Pod{}, err
	}
	// What is reported of a pod whose main container exited does not
	// depend on its holder (its state, Addr and Broken do only while the
	// main container runs or never ran): a task's pod read at its exit
	// is read in one call.
	if !pi.exited() || pi.legacy || len(pi.layout.Sidecars) > 0 {
		if pi, err = e.completePod(ctx, pi, nil); err != nil {
			return runtime.Pod{}, err
		}
	}
	return pi.pod(), nil
}

// exited reports whether the pod's main container ran and exited.
func (pi podInfo) exited() bool {
	s := pi.main.State
	return s != nil && !s.Running && !s.Paused && !s.Restarting && s.Status != container.StateCreated
}

// ListPods returns the owner's pods, in any state, whose labels include
// all of labels, ordered by name.
func (e *Engine) ListPods(ctx context.Context, labels map[string]string) ([]runtime.Pod, error) {
	e.supervise()
	pis, err := e.listPods(ctx, labels)
	if err != nil {
		return nil, err
	}
	out := make([]runtime.Pod, len(pis))
	for i, pi := range pis {
		out[i] = pi.pod()
	}
	return out, nil
}

func (e *Engine) listPods(ctx context.Context, labels map[string]string) ([]podInfo, error) {
	// One listing finds the main containers of both kinds: those with a
	// layout, and those made before pods (pod_legacy.go).
	args := filters.NewArgs()
	for k, v := range labels {
		args.Add("label", k+"="+v)
	}
	mains, err := e.listInspectIf(ctx, args, func(s container.Summary) bool {
		_, ok := s.Labels[labelPodLayout]
		return (ok || legacyMain(s.Labels)) && e.owner.Owns(s.Labels)
	})
	if err != nil {
		return nil, err
	}
	var pis []podInfo
	for _, info := range mains {
		if pi, ok, err := e.asPod(info); err != nil {
			e.log.Warn("a container that is not a readable pod", "err", err)
		} else if ok {
			pis = append(pis, pi)
		}
	}
	if len(pis) == 0 {
		return nil, nil
	}
	// The sidecars of all of them in one listing, narrowed by the labels
	// a pod's sidecars share with it (all but its role) when it asked for
	// some; a pod that seems to lack some (labelled apart: its main
	// container's own labels) is looked at alone.
	narrow := maps.Clone(labels)
	delete(narrow, runtime.LabelRole)
	var sidecars map[string][]container.InspectResponse
	if slices.ContainsFunc(pis, func(pi podInfo) bool { return len(pi.layout.Sidecars) > 0 }) {
		if sidecars, err = e.listSidecars(ctx, narrow); err != nil {
			return nil, err
		}
	}
	// Those made before pods: their sidecars and holders carry the
	// legacyKeys labels they share with them (listLegacyMembers uses only
	// those of the labels asked for).
	var members map[string][]container.InspectResponse
	if slices.ContainsFunc(pis, podInfo.hasLegacyMembers) {
		if members, err = e.listLegacyMembers(ctx, narrow); err != nil {
			return nil, err
		}
	}
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	sem := make(chan struct{}, 8)
	for i := range pis {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			if pis[i].legacy {
				e.fillLegacy(ctx, &pis[i], members[legacyKey(pis[i].main.Config.Labels)])
				return
			}
			id := pis[i].id()
			found := sidecars[id]
			if len(found) < len(pis[i].layout.Sidecars) && len(narrow) > 0 {
				all, err := e.listSidecars(ctx, map[string]string{labelPodID: id})
				if err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
					return
				}
				found = all[id]
			}
			e.fillPod(ctx, &pis[i], found)
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	slices.SortFunc(pis, func(a, b podInfo) int { return strings.Compare(a.name(), b.name()) })
	return pis, nil
}

// pod is what the contract reports of a pod.
func (pi podInfo) pod() runtime.Pod {
	m := pi.main
	p := runtime.Pod{
		ID:        m.ID,
		Name:      pi.name(),
		Labels:    publicLabels(m.Config.Labels),
		State:     pi.state(),
		CreatedAt: parseTime(m.Created),
	}
	if s := m.State; s != nil {
		p.ExitCode, p.OOMKilled = s.ExitCode, oomKilledRead(m.ID, s)
		p.StartedAt = parseTime(s.StartedAt)
	}
	if p.State == runtime.PodRunning {
		p.Broken = pi.broken()
		addrOf := toContainer(m)
		if pi.holder != nil {
			addrOf = toContainer(*pi.holder)
		}
		if p.Broken == "" {
			p.Addr = addrOf.HostAddr
		}
	}
	p.Containers = append(p.Containers, containerStatus(pi.layout.Main, m, true))
	for _, s := range pi.layout.Sidecars {
		if c, ok := pi.sidecars[s.Name]; ok {
			p.Containers = append(p.Containers, containerStatus(s.Name, c, false))
		}
	}
	return p
}

// state is the pod's state: its main container's, except that a main
// container that never ran is "created" only while nothing of the pod
// ran or failed to start either (a failed start leaves the pod exited),
// or while its holder runs (a start is under way).
func (pi podInfo) state() runtime.PodState {
	s := pi.main.State
	switch {
	case s == nil:
		return runtime.PodExited
	case s.Paused:
		return runtime.PodSuspended
	case s.Running || s.Restarting:
		return runtime.PodRunning
	case s.Status != container.StateCreated:
		return runtime.PodExited
	}
	if pi.holder != nil && pi.holder.State != nil && pi.holder.State.Running {
		return runtime.PodCreated
	}
	ran := func(c container.InspectResponse) bool {
		return c.State != nil && (c.State.Error != "" || c.State.ExitCode != 0 || !parseTime(c.State.StartedAt).IsZero())
	}
	if ran(pi.main) || pi.holder != nil && ran(*pi.holder) || pi.layout.Holder && pi.holder == nil {
		return runtime.PodExited
	}
	for _, c := range pi.sidecars {
		if ran(c) {
			return runtime.PodExited
		}
	}
	return runtime.PodCreated
}

// broken says why a pod whose main container runs cannot serve: its
// network holder is gone or stopped.
func (pi podInfo) broken() string {
	if !pi.layout.Holder {
		return ""
	}
	h := pi.holder
	switch {
	case h == nil:
		return "its network holder is gone"
	case h.State == nil || !h.State.Running:
		code := 0
		if h.State != nil {
			code = h.State.ExitCode
		}
		return fmt.Sprintf("its network holder exited with code %d", code)
	case h.State.Paused && !pi.main.State.Paused:
		return "its network holder is frozen"
	}
	return ""
}

func containerStatus(name string, c container.InspectResponse, main bool) runtime.ContainerStatus {
	rc := toContainer(c)
	return runtime.ContainerStatus{
		Name: name, ID: c.ID, Main: main, Running: rc.Running,
		ExitCode: rc.ExitCode, OOMKilled: rc.OOMKilled, StartedAt: rc.StartedAt, FinishedAt: rc.FinishedAt,
	}
}

// publicLabels are a container's labels without the engine's own.
func publicLabels(labels map[string]string) map[string]string {
	out := make(map[string]string, len(labels))
	for k, v := range labels {
		switch k {
		case labelPodLayout, labelPodID, labelPodRole, labelAliases, labelTaskNet:
		default:
			out[k] = v
		}
	}
	return out
}
