package controlplane_test

import (
	"os/exec"
	"strings"
	"testing"
)

// controlPlanePackages are the packages of the control plane, every one of
// which TestNoDockerInTheControlPlane must see: a package renamed or added
// without being listed here fails the test, so none escapes it.
var controlPlanePackages = []string{
	"internal/controlplane",
	"internal/controlplane/apierr",
	"internal/controlplane/autoscale",
	"internal/controlplane/contain",
	"internal/controlplane/fleet",
	"internal/controlplane/rollout",
	"internal/controlplane/tasks",
	"internal/controlplane/traffic",
}

// TestNoDockerInTheControlPlane: the control plane knows engines only by
// the contract in internal/runtime (pods and optional powers), so a second
// engine fits without touching it. No package of it, nor anything it
// imports, may import the Docker engine.
func TestNoDockerInTheControlPlane(t *testing.T) {
	const module = "github.com/berth-dev/berth/"
	out, err := exec.Command("go", "list", module+"internal/controlplane/...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	listed := map[string]bool{}
	for _, p := range strings.Fields(string(out)) {
		listed[strings.TrimPrefix(p, module)] = true
	}
	for _, p := range controlPlanePackages {
		if !listed[p] {
			t.Errorf("%s is not a package of the control plane any more; update controlPlanePackages", p)
		}
		delete(listed, p)
	}
	for p := range listed {
		t.Errorf("%s is a package of the control plane that controlPlanePackages does not list; add it", p)
	}

	for _, p := range controlPlanePackages {
		out, err := exec.Command("go", "list", "-deps", module+p).CombinedOutput()
		if err != nil {
			t.Fatalf("go list -deps %s: %v\n%s", p, err, out)
		}
		deps := strings.Fields(string(out))
		if len(deps) < 10 {
			t.Fatalf("go list -deps %s listed too little to be believed:\n%s", p, out)
		}
		for _, dep := range deps {
			if strings.HasPrefix(dep, module+"internal/runtime/docker") || strings.HasPrefix(dep, "github.com/docker/") {
				t.Errorf("%s depends on %s; the control plane must reach engines through internal/runtime only", p, dep)
			}
		}
	}
}
