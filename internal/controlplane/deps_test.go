package controlplane_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestNoDockerInTheControlPlane: the control plane knows engines only by
// the contract in internal/runtime (pods and optional powers), so a second
// engine fits without touching it. No package of it, nor anything it
// imports, may import the Docker engine.
func TestNoDockerInTheControlPlane(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "github.com/berth-dev/berth/internal/controlplane/...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, out)
	}
	deps := strings.Fields(string(out))
	if len(deps) < 10 {
		t.Fatalf("go list -deps listed too little to be believed:\n%s", out)
	}
	for _, dep := range deps {
		if strings.HasPrefix(dep, "github.com/berth-dev/berth/internal/runtime/docker") || strings.HasPrefix(dep, "github.com/docker/") {
			t.Errorf("the control plane depends on %s; it must reach engines through internal/runtime only", dep)
		}
	}
}
