package spec

import (
	"slices"
	"strings"
)

// The containers of one instance (the service's own container and its
// sidecars) start in depends_on order, as an ECS task's containers do. A
// sidecar's depends_on names the service or other sidecars; the service's
// own depends_on names sidecars it waits for, typically an init container:
//
//	services:
//	  web:
//	    depends_on: {migrate: success}   # web starts once migrate exited 0
//	    sidecars:
//	      migrate: {image: web:1, command: ["./server", "migrate"], essential: false}

// mainDependsOn checks the service's own depends_on, then the dependency
// graph of the whole instance for cycles.
func (v *validator) mainDependsOn(path string, svc *Service) error {
	dpath := join(path, "depends_on")
	for _, target := range sortedKeys(svc.DependsOn) {
		cond := svc.DependsOn[target]
		f := join(dpath, target)
		if msg := checkCondition(cond); msg != "" {
			return v.fail(f, "%s", msg)
		}
		if target == svc.Name {
			return v.fail(f, "a service cannot depend on itself")
		}
		dep, ok := svc.Sidecars[target]
		if !ok || dep == nil {
			if len(svc.Sidecars) == 0 {
				return v.fail(f, "unknown container %q: the service's depends_on names its sidecars, and %s has none", target, svc.Name)
			}
			return v.fail(f, "unknown container %q; use one of its sidecars: %s", target, strings.Join(ordered(svc.SidecarOrder, svc.Sidecars), ", "))
		}
		switch cond {
		case ConditionHealthy:
			return v.fail(f, "%q needs a health check, and sidecar %q has none; use start, complete or success", cond, target)
		case ConditionComplete, ConditionSuccess:
			if dep.Essential {
				return v.fail(f, "%q needs sidecar %q to set essential: false, because a container that is expected to exit cannot be essential", cond, target)
			}
		}
	}
	return v.cycles(path, svc)
}

// cycles refuses a depends_on cycle among an instance's containers: no
// container of the cycle could ever start.
func (v *validator) cycles(path string, svc *Service) error {
	deps := map[string]map[string]Condition{svc.Name: svc.DependsOn}
	names := []string{svc.Name}
	for _, n := range ordered(svc.SidecarOrder, svc.Sidecars) {
		if sc := svc.Sidecars[n]; sc != nil {
			deps[n] = sc.DependsOn
			names = append(names, n)
		}
	}
	const (
		unvisited = iota
		visiting
		done
	)
	state := map[string]int{}
	var stack []string
	var visit func(name string) []string
	visit = func(name string) []string {
		state[name] = visiting
		stack = append(stack, name)
		for _, dep := range sortedKeys(deps[name]) {
			if _, ok := deps[dep]; !ok || dep == name {
				continue
			}
			switch state[dep] {
			case visiting:
				i := slices.Index(stack, dep)
				return append(slices.Clone(stack[i:]), dep)
			case unvisited:
				if c := visit(dep); c != nil {
					return c
				}
			}
		}
		stack = stack[:len(stack)-1]
		state[name] = done
		return nil
	}
	for _, name := range names {
		if state[name] != unvisited {
			continue
		}
		if c := visit(name); c != nil {
			where := join(join(join(path, "sidecars"), c[0]), "depends_on")
			if c[0] == svc.Name {
				where = join(path, "depends_on")
			}
			return v.fail(where, "dependency cycle: %s", strings.Join(c, " -> "))
		}
	}
	return nil
}

// InitContainers returns the sidecars some container of the instance waits
// on to exit (complete or success): they run once per instance start and
// are never restarted.
func (s *Service) InitContainers() map[string]bool {
	out := map[string]bool{}
	mark := func(deps map[string]Condition) {
		for n, c := range deps {
			if c == ConditionComplete || c == ConditionSuccess {
				out[n] = true
			}
		}
	}
	mark(s.DependsOn)
	for _, sc := range s.Sidecars {
		if sc != nil {
			mark(sc.DependsOn)
		}
	}
	return out
}
