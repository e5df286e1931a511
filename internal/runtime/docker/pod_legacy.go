package docker

// Pods made before pods. A berth from before the pod contract made the
// same containers under the same names, but recorded no layout: the
// control plane labelled them itself. A daemon upgraded under load
// (SIGHUP with a new binary) must see them as pods, or it starts new
// instances while the old ones serve on unseen and then removes them as
// leftovers. So the engine reads them as pods, synthesizing the layout
// from their labels and network mode:
//
//	main container     berth.role=instance or task, no labelPodLayout; its
//	                   in-pod name is berth.service; its ID is the pod's
//	sidecar            berth.role=sidecar, berth.sidecar=NAME, and the main
//	                   one's app, service, revision and instance labels
//	holder             a sidecar named holderName (an instance's), or the
//	                   task network holder a task joined (berth.tasknet);
//	                   either way the container the main one's network mode
//	                   names
//
// What the labels do not say is taken as what is safe to assume:
//   - no depends_on: the containers start together;
//   - no sidecar is essential (nor init): an init container's exit, by
//     design after its holder started, must not make the supervisor stop
//     a pod that serves, and an essential one cannot be told apart from
//     it. The control plane, which knows the revision's spec, still takes
//     an instance whose essential sidecar died down (judgeInstance);
//   - the sidecars' order is the order they were created in (berth created
//     them one by one in the file's order).
//
// Nothing here creates such containers: new pods are made as pod.go says,
// and the old ones go as instances are replaced and tasks end.

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"

	"github.com/berth-dev/berth/internal/runtime"
)

// labelTaskNet, on a task container made before pods, is the ID of the
// task network holder it joined.
const labelTaskNet = "berth.tasknet"

// legacyKeys are the labels a pre-pod instance's sidecars and holder
// share with its main container.
var legacyKeys = []string{runtime.LabelApp, runtime.LabelService, runtime.LabelRevision, runtime.LabelInstance}

// legacyMain reports whether labels are those of a pre-pod instance's or
// task's own container.
func legacyMain(labels map[string]string) bool {
	if _, ok := labels[labelPodLayout]; ok {
		return false
	}
	switch runtime.Role(labels[runtime.LabelRole]) {
	case runtime.RoleInstance, runtime.RoleTask:
		return true
	}
	return false
}

// legacyMember reports whether labels are those of a pre-pod instance's
// sidecar or holder (a pod's carry the pod's ID, or its role).
func legacyMember(labels map[string]string) bool {
	if labels[runtime.LabelRole] != string(runtime.RoleSidecar) || labels[runtime.LabelInstance] == "" {
		return false
	}
	for _, k := range []string{labelPodLayout, labelPodID, labelPodRole} {
		if _, ok := labels[k]; ok {
			return false
		}
	}
	return true
}

// legacyKey identifies a pre-pod instance by the labels its containers
// share.
func legacyKey(labels map[string]string) string {
	parts := make([]string, len(legacyKeys))
	for i, k := range legacyKeys {
		parts[i] = labels[k]
	}
	return strings.Join(parts, "\x00")
}

// legacyLayout is the layout of a pre-pod main container, without its
// sidecars (fillLegacy adds those found).
func legacyLayout(info container.InspectResponse) (podLayout, bool) {
	if !legacyMain(info.Config.Labels) {
		return podLayout{}, false
	}
	return podLayout{
		Main:   info.Config.Labels[runtime.LabelService],
		Holder: info.HostConfig.NetworkMode.IsContainer(),
	}, true
}

// hasLegacyMembers reports whether a pre-pod pod may have sidecars: an
// instance whose container joined a holder.
func (pi podInfo) hasLegacyMembers() bool {
	l := pi.main.Config.Labels
	return pi.legacy && pi.layout.Holder && l[runtime.LabelRole] == string(runtime.RoleInstance) && l[runtime.LabelInstance] != ""
}

// listLegacyMembers lists and inspects the owner's pre-pod sidecars and
// holders carrying labels (of legacyKeys only), by legacyKey.
func (e *Engine) listLegacyMembers(ctx context.Context, labels map[string]string) (map[string][]container.InspectResponse, error) {
	args := filters.NewArgs(filters.Arg("label", runtime.LabelRole+"="+string(runtime.RoleSidecar)))
	for _, k := range legacyKeys {
		if v, ok := labels[k]; ok {
			args.Add("label", k+"="+v)
		}
	}
	infos, err := e.listInspectIf(ctx, args, func(s container.Summary) bool {
		return legacyMember(s.Labels) && e.owner.Owns(s.Labels)
	})
	if err != nil {
		return nil, err
	}
	out := map[string][]container.InspectResponse{}
	for _, c := range infos {
		k := legacyKey(c.Config.Labels)
		out[k] = append(out[k], c)
	}
	return out, nil
}

// fillLegacy completes a pre-pod pod from the members found for it: its
// sidecars, in the order they were created, join its layout; the holder
// is the container its main one joined; a member that fits neither (a
// second of one name, a holder nothing joined) is removed with the pod.
func (e *Engine) fillLegacy(ctx context.Context, pi *podInfo, members []container.InspectResponse) {
	members = slices.Clone(members)
	slices.SortStableFunc(members, func(a, b container.InspectResponse) int {
		return cmp.Or(parseTime(a.Created).Compare(parseTime(b.Created)), strings.Compare(a.Name, b.Name))
	})
	holder := ""
	if mode := pi.main.HostConfig.NetworkMode; mode.IsContainer() {
		holder = mode.ConnectedContainer()
	}
	var sidecars []container.InspectResponse
	seen := map[string]bool{pi.layout.Main: true}
	for _, c := range members {
		name := c.Config.Labels[runtime.LabelSidecar]
		switch {
		case name == holderName && (c.ID == holder || strings.TrimPrefix(c.Name, "/") == holder):
			// fillPod finds it through the main container.
		case name == "" || name == holderName || seen[name]:
			pi.strays = append(pi.strays, c.ID)
		default:
			seen[name] = true
			pi.layout.Sidecars = append(pi.layout.Sidecars, layoutSidecar{Name: name})
			sidecars = append(sidecars, c)
		}
	}
	e.fillPod(ctx, pi, sidecars)
}

// legacyMainOf returns the ID of the main container of the pre-pod
// instance whose sidecar carries labels, "" when it is gone.
func (e *Engine) legacyMainOf(ctx context.Context, labels map[string]string) (string, error) {
	args := filters.NewArgs(filters.Arg("label", runtime.LabelRole+"="+string(runtime.RoleInstance)))
	for _, k := range legacyKeys {
		args.Add("label", k+"="+labels[k])
	}
	cs, err := e.cli.ContainerList(ctx, container.ListOptions{All: true, Filters: args})
	if err != nil {
		return "", fmt.Errorf("list containers: %w", err)
	}
	for _, c := range cs {
		if legacyMain(c.Labels) && e.owner.Owns(c.Labels) {
			return c.ID, nil
		}
	}
	return "", nil
}
