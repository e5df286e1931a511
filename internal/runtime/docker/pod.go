package docker

// A pod on Docker. The engine assembles runtime.PodEngine's pod from
// containers, and nothing of that shows through the contract:
//
//	                 ┌──────── holder (berth/netns, "<pod>_net") ────────┐
//	 app network ───▶│ the pod's network namespace: its address and     │
//	 (aliases)       │ aliases on the app network, the port published   │◀── 127.0.0.1:PORT (Pod.Addr)
//	                 │ on 127.0.0.1, the /etc/hosts internal names      │
//	                 └──────▲─────────────────▲─────────────────▲───────┘
//	                        │ container:<holder>                │
//	                 main ("<pod>")     sidecar ("<pod>-<name>") ...
//
// A pod without sidecars has no holder: its main container joins the app
// network itself, publishes the port and carries the /etc/hosts lines, as
// a lone instance always did. With sidecars the holder lets the containers
// start in any order (an init container before the main one), as a
// Kubernetes pod's pause container does.
//
// The pod is read back from Docker alone, so a restarted daemon (a new
// Engine) finds its pods as they are:
//   - the main container carries the pod's labels and its layout
//     (labelPodLayout: the in-pod names, depends_on, essential, whether it
//     has a holder); its ID is the pod's ID;
//   - each sidecar carries the pod's labels with role "sidecar", its name
//     (runtime.LabelSidecar) and the pod's ID (labelPodID);
//   - the holder is the container whose namespace the main one joins
//     (HostConfig.NetworkMode "container:<holder ID>"), labelled like a
//     sidecar named holderName.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"

	"github.com/berth-dev/berth/internal/runtime"
)

// Pods is the Engine seen through the pod contract. It is the Engine (it
// shares its client, its supervisor and its optional powers) with the
// three methods whose pod-shaped signatures clash with the container-level
// ones runtime.Engine still needs: Logs, Events and Build. Once nothing
// uses runtime.Engine, the two types can become one.
type Pods struct {
	*Engine
}

// Pods returns e as a runtime.PodEngine.
func (e *Engine) Pods() *Pods { return &Pods{Engine: e} }

// Interface guards: the pod contract and the optional powers the Docker
// engine has.
var (
	_ runtime.PodEngine          = (*Pods)(nil)
	_ runtime.Builder            = (*Pods)(nil)
	_ runtime.Suspender          = (*Engine)(nil)
	_ runtime.Deregisterer       = (*Engine)(nil)
	_ runtime.PodAttacher        = (*Engine)(nil)
	_ runtime.PodExecer          = (*Engine)(nil)
	_ runtime.HostMemory         = (*Engine)(nil)
	_ runtime.InternalGateway    = (*Engine)(nil)
	_ runtime.OwnerSetter        = (*Engine)(nil)
	_ runtime.NetworkHeldChecker = (*Engine)(nil)
	_ runtime.TaskPrewarmer      = (*Engine)(nil)
	_ runtime.PlatformChecker    = (*Engine)(nil)
)

// Labels of the engine's own, besides the runtime.Label* ones.
const (
	// labelPodLayout, on a pod's main container, is its podLayout (JSON).
	labelPodLayout = "berth.pod.layout"
	// labelPodID, on a sidecar, is its pod's ID (the main container's).
	labelPodID = "berth.pod.id"
	// labelPodRole, on a sidecar or holder, is the pod's runtime.LabelRole
	// (theirs says "sidecar"), so their events carry the pod's labels.
	labelPodRole = "berth.pod.role"
)

// holderName is the runtime.LabelSidecar label of a pod's network holder
// (and the suffix of its container name); it cannot be a sidecar's name.
const holderName = "_net"

// holderPids bounds the holder's processes: it runs one that sleeps.
const holderPids = 16

// holderGrace is the holder's stop grace: it ends at once on SIGTERM.
const holderGrace = time.Second

// podLayout is what the engine records of a pod's spec, on its main
// container, to start, stop and supervise it later, by a later daemon too.
type podLayout struct {
	// Main is the in-pod name of the main container ("" allowed).
	Main     string                       `json:"main,omitempty"`
	MainDeps map[string]runtime.Condition `json:"main_deps,omitempty"`
	Sidecars []layoutSidecar              `json:"sidecars,omitempty"`
	// Holder: the containers share a network holder's namespace.
	Holder bool `json:"holder,omitempty"`
}

type layoutSidecar struct {
	Name      string                       `json:"name"`
	Essential bool                         `json:"essential,omitempty"`
	Init      bool                         `json:"init,omitempty"`
	DependsOn map[string]runtime.Condition `json:"depends_on,omitempty"`
}

// ErrInvalidPod is wrapped by CreatePod's refusal of a spec it cannot run.
var ErrInvalidPod = errors.New("invalid pod spec")

// layoutOf checks a spec and returns its layout.
func layoutOf(spec runtime.PodSpec) (podLayout, error) {
	l := podLayout{Main: spec.Main.Name, MainDeps: spec.MainDependsOn, Holder: len(spec.Sidecars) > 0}
	if spec.Name == "" {
		return l, fmt.Errorf("%w: a pod needs a name", ErrInvalidPod)
	}
	if spec.Main.Image == "" {
		return l, fmt.Errorf("%w: pod %s: its main container needs an image", ErrInvalidPod, spec.Name)
	}
	names := map[string]bool{l.Main: true}
	for _, s := range spec.Sidecars {
		switch {
		case s.Name == "" || s.Name == holderName:
			return l, fmt.Errorf("%w: pod %s: a sidecar cannot be named %q", ErrInvalidPod, spec.Name, s.Name)
		case names[s.Name]:
			return l, fmt.Errorf("%w: pod %s: two containers are named %q", ErrInvalidPod, spec.Name, s.Name)
		case s.Image == "":
			return l, fmt.Errorf("%w: pod %s: sidecar %s needs an image", ErrInvalidPod, spec.Name, s.Name)
		}
		names[s.Name] = true
		l.Sidecars = append(l.Sidecars, layoutSidecar{Name: s.Name, Essential: s.Essential, Init: spec.Init(s.Name), DependsOn: s.DependsOn})
	}
	for i, deps := range l.deps() {
		for dep, cond := range deps {
			switch {
			case !names[dep]:
				return l, fmt.Errorf("%w: pod %s: %s depends on unknown container %q", ErrInvalidPod, spec.Name, l.name(i), dep)
			case dep == l.name(i):
				return l, fmt.Errorf("%w: pod %s: %s depends on itself", ErrInvalidPod, spec.Name, dep)
			}
			switch cond {
			case runtime.ConditionStart, runtime.ConditionHealthy, runtime.ConditionComplete, runtime.ConditionSuccess:
			default:
				return l, fmt.Errorf("%w: pod %s: %s depends on %s with unknown condition %q", ErrInvalidPod, spec.Name, l.name(i), dep, cond)
			}
		}
	}
	if cycle := l.cycle(); cycle != "" {
		return l, fmt.Errorf("%w: pod %s: depends_on cycle %s", ErrInvalidPod, spec.Name, cycle)
	}
	return l, nil
}

// The layout's containers by index: 0 is the main container, i > 0 the
// sidecar i-1.

func (l podLayout) size() int { return 1 + len(l.Sidecars) }

func (l podLayout) name(i int) string {
	if i == 0 {
		return l.Main
	}
	return l.Sidecars[i-1].Name
}

func (l podLayout) index(name string) int {
	if name == l.Main {
		return 0
	}
	for i, s := range l.Sidecars {
		if s.Name == name {
			return i + 1
		}
	}
	return -1
}

func (l podLayout) deps() []map[string]runtime.Condition {
	out := []map[string]runtime.Condition{l.MainDeps}
	for _, s := range l.Sidecars {
		out = append(out, s.DependsOn)
	}
	return out
}

// cycle names a depends_on cycle ("a -> b -> a"), "" when there is none.
func (l podLayout) cycle() string {
	deps := l.deps()
	state := make([]int, l.size()) // 0 unseen, 1 on the path, 2 done
	var path []int
	var visit func(i int) string
	visit = func(i int) string {
		state[i] = 1
		path = append(path, i)
		for _, dep := range slices.Sorted(maps.Keys(deps[i])) {
			j := l.index(dep)
			if j < 0 {
				continue
			}
			if state[j] == 1 {
				var names []string
				for _, k := range path[slices.Index(path, j):] {
					names = append(names, l.name(k))
				}
				return strings.Join(append(names, l.name(j)), " -> ")
			}
			if state[j] == 0 {
				if c := visit(j); c != "" {
					return c
				}
			}
		}
		path = path[:len(path)-1]
		state[i] = 2
		return ""
	}
	for i := range l.size() {
		if state[i] == 0 {
			if c := visit(i); c != "" {
				return c
			}
		}
	}
	return ""
}

// dependents returns, for each container, the containers that depend on it.
func (l podLayout) dependents() [][]int {
	out := make([][]int, l.size())
	for i, deps := range l.deps() {
		for dep := range deps {
			if j := l.index(dep); j >= 0 {
				out[j] = append(out[j], i)
			}
		}
	}
	return out
}

// CreatePod creates a pod's containers, none started: its network holder
// when it has sidecars, its main container and its sidecars. On failure
// nothing it created is left.
func (e *Engine) CreatePod(ctx context.Context, spec runtime.PodSpec) (runtime.Pod, error) {
	e.supervise()
	layout, err := layoutOf(spec)
	if err != nil {
		return runtime.Pod{}, err
	}
	hosts, err := e.internalHosts(ctx, spec)
	if err != nil {
		return runtime.Pod{}, err
	}
	taken := "" // a ready holder (pod_tasknet.go)
	if taskShaped(spec) {
		taken = e.takeTaskNet(ctx, spec.Network, hosts)
		// The next one starts once this pod is made: not in its way.
		defer e.WarmTaskNet(spec.Network, spec.Labels, spec.InternalNames)
	}
	layout.Holder = layout.Holder || taken != ""
	var made []string
	undo := func() {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), createTimeout)
		defer cancel()
		for _, id := range slices.Backward(made) {
			if err := e.Remove(rctx, id); err != nil {
				e.log.Warn("remove what a failed pod create made", "pod", spec.Name, "id", shortID(id), "err", err)
			}
		}
	}

	main := spec.Main
	main.Name = spec.Name
	main.Labels = podLabels(spec.Labels, main.Labels)
	main.TTY, main.OpenStdin = spec.TTY, spec.OpenStdin
	if main.Platform == "" {
		main.Platform = spec.Platform
	}
	main.Network, main.Aliases, main.Port, main.HostPort, main.ExtraHosts, main.JoinContainer = "", nil, 0, 0, nil, ""
	holderID := ""
	switch {
	case taken != "":
		made = append(made, taken)
		holderID = taken
		main.JoinContainer = taken
	case layout.Holder:
		image, err := e.HolderImage(ctx)
		if err != nil {
			return runtime.Pod{}, fmt.Errorf("pod %s: network holder image: %w", spec.Name, err)
		}
		h, err := e.Create(ctx, runtime.ContainerSpec{
			Name:       spec.Name + holderName,
			Image:      image,
			Labels:     memberLabels(spec.Labels, nil, holderName),
			Port:       spec.Port,
			HostPort:   spec.HostPort,
			Network:    spec.Network,
			Aliases:    spec.Aliases,
			ExtraHosts: hosts,
			PidsLimit:  holderPids,
			StopGrace:  holderGrace,
		})
		if err != nil {
			return runtime.Pod{}, fmt.Errorf("pod %s: create its network holder: %w", spec.Name, err)
		}
		made = append(made, h.ID)
		holderID = h.ID
		main.JoinContainer = h.ID
	default:
		main.Network, main.Aliases, main.Port, main.HostPort, main.ExtraHosts = spec.Network, spec.Aliases, spec.Port, spec.HostPort, hosts
	}
	if err := setLayout(&main, layout); err != nil {
		undo()
		return runtime.Pod{}, err
	}
	m, err := e.Create(ctx, main)
	if err != nil && taken != "" && ctx.Err() == nil {
		// The ready holder went away between the take and the create:
		// the pod joins the network itself, as it always could.
		undo()
		made, holderID, layout.Holder = nil, "", false
		main.JoinContainer = ""
		main.Network, main.ExtraHosts = spec.Network, hosts
		if err = setLayout(&main, layout); err == nil {
			m, err = e.Create(ctx, main)
		}
	}
	if err != nil {
		undo()
		return runtime.Pod{}, err
	}
	made = append(made, m.ID)
	for _, s := range spec.Sidecars {
		cs := s.ContainerSpec
		cs.Name = spec.Name + "-" + s.Name
		cs.Labels = memberLabels(spec.Labels, cs.Labels, s.Name)
		cs.Labels[labelPodID] = m.ID
		if cs.Platform == "" {
			cs.Platform = spec.Platform
		}
		cs.JoinContainer, cs.Network, cs.Aliases, cs.Port, cs.HostPort, cs.ExtraHosts = holderID, "", nil, 0, 0, nil
		c, err := e.Create(ctx, cs)
		if err != nil {
			undo()
			return runtime.Pod{}, fmt.Errorf("sidecar %s: %w", s.Name, err)
		}
		made = append(made, c.ID)
	}
	// Not cancelled: the caller gets the pod it now owns.
	ictx, cancel := context.WithTimeout(context.WithoutCancel(ctx), createTimeout)
	defer cancel()
	return e.InspectPod(ictx, m.ID)
}

// setLayout records the layout on the main container's spec.
func setLayout(main *runtime.ContainerSpec, l podLayout) error {
	b, err := json.Marshal(l)
	if err != nil {
		return err
	}
	main.Labels[labelPodLayout] = string(b)
	return nil
}

// podLabels are the main container's labels: the pod's, over the
// container spec's own.
func podLabels(pod, own map[string]string) map[string]string {
	out := make(map[string]string, len(pod)+len(own)+1)
	maps.Copy(out, own)
	maps.Copy(out, pod)
	return out
}

// memberLabels are a sidecar's or the holder's labels: the pod's, marked
// as a sidecar of that name (as berth always labelled them).
func memberLabels(pod, own map[string]string, name string) map[string]string {
	out := podLabels(pod, own)
	if role, ok := pod[runtime.LabelRole]; ok {
		out[labelPodRole] = role
	}
	out[runtime.LabelRole] = string(runtime.RoleSidecar)
	out[runtime.LabelSidecar] = name
	return out
}

// internalHosts are the /etc/hosts lines pointing a pod's internal names
// at the host's address on its network (InternalGateway).
func (e *Engine) internalHosts(ctx context.Context, spec runtime.PodSpec) ([]string, error) {
	if len(spec.InternalNames) == 0 || spec.Network == "" {
		return nil, nil
	}
	gw, _, err := e.NetworkAddrs(ctx, spec.Network)
	if err != nil {
		return nil, fmt.Errorf("pod %s: internal names: %w", spec.Name, err)
	}
	out := make([]string, len(spec.InternalNames))
	for i, n := range spec.InternalNames {
		out[i] = n + ":" + gw
	}
	return out, nil
}

// podInfo is a pod as Docker has it.
type podInfo struct {
	main   container.InspectResponse
	layout podLayout
	// holder is nil when the pod has none, or it is gone.
	holder *container.InspectResponse
	// sidecars by name; a gone one is missing.
	sidecars map[string]container.InspectResponse
}

func (pi podInfo) id() string   { return pi.main.ID }
func (pi podInfo) name() string { return strings.TrimPrefix(pi.main.Name, "/") }

// containerID is the ID of the pod's container of that in-pod name ("" for
// none).
func (pi podInfo) containerID(name string) string {
	if name == "" || name == pi.layout.Main {
		return pi.main.ID
	}
	if c, ok := pi.sidecars[name]; ok {
		return c.ID
	}
	return ""
}

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
	var sidecars map[string][]container.InspectResponse
	if len(pi.layout.Sidecars) > 0 {
		if sidecars, err = e.listSidecars(ctx, map[string]string{labelPodID: info.ID}); err != nil {
			return podInfo{}, err
		}
	}
	e.fillPod(ctx, &pi, sidecars[info.ID])
	return pi, nil
}

// asPod reads the layout of a pod's main container; false for a container
// that is no main container of this owner's.
func (e *Engine) asPod(info container.InspectResponse) (podInfo, bool, error) {
	if info.Config == nil || info.HostConfig == nil || !e.owner.Owns(info.Config.Labels) {
		return podInfo{}, false, nil
	}
	raw, ok := info.Config.Labels[labelPodLayout]
	if !ok {
		return podInfo{}, false, nil
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
	if mode := pi.main.HostConfig.NetworkMode; pi.layout.Holder && mode.IsContainer() {
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
	summaries, err := e.cli.ContainerList(ctx, container.ListOptions{All: true, Filters: args})
	if err != nil {
		return nil, fmt.Errorf("list containers: %w", err)
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
	pi, err := e.inspectPod(ctx, id)
	if err != nil {
		return runtime.Pod{}, err
	}
	return pi.pod(), nil
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
	args := filters.NewArgs(filters.Arg("label", labelPodLayout))
	for k, v := range labels {
		args.Add("label", k+"="+v)
	}
	mains, err := e.listInspect(ctx, args)
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
		p.ExitCode, p.OOMKilled = s.ExitCode, s.OOMKilled
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
		case labelPodLayout, labelPodID, labelPodRole, labelAliases:
		default:
			out[k] = v
		}
	}
	return out
}

// RemovePod removes a pod's containers, killing what runs; a missing pod
// is not an error. Sidecars whose main container is gone already are
// found by their pod ID and removed too, with their holder.
func (e *Engine) RemovePod(ctx context.Context, id string) error {
	e.supervise()
	release := e.sup.hold(id)
	defer release()
	var ids []string
	holder := ""
	pi, err := e.inspectPod(ctx, id)
	switch {
	case errors.Is(err, runtime.ErrNotFound):
		orphans, err := e.listSidecars(ctx, map[string]string{labelPodID: id})
		if err != nil {
			return err
		}
		for _, c := range orphans[id] {
			ids = append(ids, c.ID)
			if mode := c.HostConfig.NetworkMode; mode.IsContainer() {
				holder = mode.ConnectedContainer()
			}
		}
	case err != nil:
		return err
	default:
		ids = append(ids, pi.main.ID)
		for _, c := range pi.sidecars {
			ids = append(ids, c.ID)
		}
		if pi.holder != nil {
			holder = pi.holder.ID
		}
	}
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	for _, cid := range ids {
		wg.Go(func() {
			if err := e.Remove(ctx, cid); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	// Last: the others live in its namespace.
	if holder != "" {
		if err := e.Remove(ctx, holder); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("remove pod %s: %w", shortID(id), err)
	}
	return nil
}

// podNotFoundOr turns Docker's "no such container" into ErrNotFound.
func podNotFoundOr(id string, err error) error {
	if cerrdefs.IsNotFound(err) {
		return fmt.Errorf("%w: pod %s", runtime.ErrNotFound, id)
	}
	return fmt.Errorf("inspect pod %s: %w", shortID(id), err)
}
