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
//
// Containers a berth from before pods made carry no layout; they are read
// as pods from their labels (pod_legacy.go).

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"

	"github.com/berth-dev/berth/internal/runtime"
)

// Pods is the Engine: the name the pod contract's engine had while the
// Engine still met the container-level one, kept for its callers.
type Pods = Engine

// Pods returns e, the pod contract's engine: what it was while the Engine
// still met the container-level contract, kept for its callers.
func (e *Engine) Pods() *Engine { return e }

// Interface guards: the pod contract and the optional powers the Docker
// engine has.
var (
	_ runtime.PodEngine          = (*Engine)(nil)
	_ runtime.Builder            = (*Engine)(nil)
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

// CreatePod creates a pod's containers, none started: its network holder
// when it has sidecars, its main container and its sidecars. On failure
// nothing it created is left.
func (e *Engine) CreatePod(ctx context.Context, spec runtime.PodSpec) (pod runtime.Pod, err error) {
	e.supervise()
	layout, err := layoutOf(spec)
	if err != nil {
		return runtime.Pod{}, err
	}
	taken := "" // a ready holder (pod_tasknet.go)
	var takenInfo *container.InspectResponse
	if taskShaped(spec) {
		takenInfo = e.takeTaskNet(ctx, spec.Network, spec.InternalNames)
		if takenInfo != nil {
			taken = takenInfo.ID
		}
		// The next one starts once this pod has started: not in its way.
		warm := func() { e.WarmTaskNet(spec.Network, spec.Labels, spec.InternalNames) }
		defer func() {
			if pod.ID == "" {
				warm()
			} else {
				e.tasks.warmAfter(pod.ID, takenInfo, warm)
			}
		}()
	}
	layout.Holder = layout.Holder || taken != ""
	// A ready holder has the /etc/hosts lines already.
	var hosts []string
	if taken == "" {
		if hosts, err = e.internalHosts(ctx, spec); err != nil {
			return runtime.Pod{}, err
		}
	}
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

	// Only the PodSpec says where and how the pod runs: those fields of
	// its ContainerSpecs are ignored (runtime/pod.go).
	main := spec.Main
	main.Name = spec.Name
	main.Labels = podLabels(spec.Labels)
	main.TTY, main.OpenStdin, main.Platform = spec.TTY, spec.OpenStdin, spec.Platform
	main.Network, main.Aliases, main.Port, main.HostPort, main.ExtraHosts, main.JoinContainer = "", nil, 0, 0, nil, ""
	holderID := ""
	switch {
	case taken != "":
		made = append(made, taken)
		holderID = taken
		main.JoinContainer = taken
	case layout.Holder:
		image, err := e.ensureHolderImage(ctx)
		if err != nil {
			return runtime.Pod{}, fmt.Errorf("pod %s: network holder image: %w", spec.Name, err)
		}
		h, err := e.create(ctx, runtime.ContainerSpec{
			Name:       spec.Name + holderName,
			Image:      image,
			Labels:     memberLabels(spec.Labels, holderName),
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
		made = append(made, h)
		holderID = h
		main.JoinContainer = h
	default:
		main.Network, main.Aliases, main.Port, main.HostPort, main.ExtraHosts = spec.Network, spec.Aliases, spec.Port, spec.HostPort, hosts
	}
	if err := setLayout(&main, layout); err != nil {
		undo()
		return runtime.Pod{}, err
	}
	m, err := e.create(ctx, main)
	if err != nil && taken != "" && ctx.Err() == nil && !e.runs(ctx, taken) {
		// The ready holder went away between the take and the create:
		// the pod joins the network itself, as it always could.
		undo()
		made, holderID, layout.Holder, takenInfo = nil, "", false, nil
		main.JoinContainer = ""
		main.Network = spec.Network
		if main.ExtraHosts, err = e.internalHosts(ctx, spec); err == nil {
			if err = setLayout(&main, layout); err == nil {
				m, err = e.create(ctx, main)
			}
		}
	}
	if err != nil {
		undo()
		return runtime.Pod{}, err
	}
	made = append(made, m)
	for _, s := range spec.Sidecars {
		cs := s.ContainerSpec
		cs.Name = spec.Name + "-" + s.Name
		cs.Labels = memberLabels(spec.Labels, s.Name)
		cs.Labels[labelPodID] = m
		cs.Platform, cs.TTY, cs.OpenStdin = spec.Platform, false, false
		cs.JoinContainer, cs.Network, cs.Aliases, cs.Port, cs.HostPort, cs.ExtraHosts = holderID, "", nil, 0, 0, nil
		c, err := e.create(ctx, cs)
		if err != nil {
			undo()
			return runtime.Pod{}, fmt.Errorf("sidecar %s: %w", s.Name, err)
		}
		made = append(made, c)
	}
	// Not cancelled: the caller gets the pod it now owns. The ready
	// holder runs on as it was just seen.
	ictx, cancel := context.WithTimeout(context.WithoutCancel(ctx), createTimeout)
	defer cancel()
	pi, err := e.inspectPodWith(ictx, m, takenInfo)
	if err != nil {
		return runtime.Pod{}, err
	}
	return pi.pod(), nil
}

// runs reports whether a container runs (and is not frozen).
func (e *Engine) runs(ctx context.Context, id string) bool {
	info, err := e.cli.ContainerInspect(ctx, id)
	return err == nil && info.State != nil && info.State.Running && !info.State.Paused
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

// podLabels are the main container's labels: the pod's, with room for
// the engine's own.
func podLabels(pod map[string]string) map[string]string {
	out := make(map[string]string, len(pod)+4)
	maps.Copy(out, pod)
	return out
}

// memberLabels are a sidecar's or the holder's labels: the pod's, marked
// as a sidecar of that name (as berth always labelled them).
func memberLabels(pod map[string]string, name string) map[string]string {
	out := podLabels(pod)
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
	return hostLines(spec.InternalNames, gw), nil
}

// hostLines are the /etc/hosts lines pointing names at gw.
func hostLines(names []string, gw string) []string {
	if len(names) == 0 {
		return nil
	}
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = n + ":" + gw
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
	// A task's pod never started: the next one's holder starts now
	// (pod_tasknet.go).
	defer e.tasks.warmPending(id)
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
		ids = append(ids, pi.strays...)
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
