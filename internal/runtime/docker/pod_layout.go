package docker

// A pod's layout: its containers, by in-pod name, and how they depend on
// each other, checked once at CreatePod and recorded on the main
// container, so a later daemon starts, stops and supervises the pod as
// its spec said.

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/berth-dev/berth/internal/runtime"
)

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
