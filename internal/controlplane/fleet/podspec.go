package fleet

import (
	"fmt"
	"strconv"

	"github.com/berth-dev/berth/internal/runtime"
	"github.com/berth-dev/berth/internal/spec"
)

// podSpec is the pod of one instance of rev: the service's container (named
// after the service within its pod, so depends_on can name it) and its
// sidecars in file order, on the app network under the service's name,
// with the revision's image, env, secrets and limits.
func (f *Fleet) podSpec(app string, rev Revision, id string, secrets map[string]string) runtime.PodSpec {
	sp := rev.Spec
	ps := runtime.PodSpec{
		Name: containerName(app, rev, id),
		Labels: map[string]string{
			runtime.LabelApp:      app,
			runtime.LabelService:  sp.Name,
			runtime.LabelRevision: strconv.Itoa(rev.Number),
			runtime.LabelInstance: id,
			runtime.LabelRole:     string(runtime.RoleInstance),
		},
		Network:       NetworkName(app),
		Aliases:       []string{sp.Name},
		Port:          sp.Port,
		InternalNames: f.internal.Names(app),
		Platform:      sp.Platform,
		Main:          ContainerSpec(rev, secrets),
		MainDependsOn: conditions(sp.DependsOn),
	}
	for _, name := range SidecarNames(sp) {
		sc := sp.Sidecars[name]
		ps.Sidecars = append(ps.Sidecars, runtime.SidecarSpec{
			ContainerSpec: runtime.ContainerSpec{
				Name:      sc.Name,
				Image:     sc.Image,
				Command:   sc.Command,
				Env:       withSecrets(map[string]string{}, sc.Env, sc.Secrets, secrets),
				CPU:       sc.CPU,
				Memory:    sc.Memory,
				PidsLimit: sc.Pids,
				StopGrace: spec.DefaultStopGrace,
			},
			Essential: sc.Essential,
			DependsOn: conditions(sc.DependsOn),
		})
	}
	return ps
}

// conditions is a depends_on in the engine's terms (the same four words).
func conditions(deps map[string]spec.Condition) map[string]runtime.Condition {
	if len(deps) == 0 {
		return nil
	}
	out := make(map[string]runtime.Condition, len(deps))
	for k, c := range deps {
		out[k] = runtime.Condition(c)
	}
	return out
}

// containerName is the engine name of an instance's pod.
func containerName(app string, rev Revision, id string) string {
	return fmt.Sprintf("berth-%s-%s-%d-%s", app, rev.Spec.Name, rev.Number, id)
}
