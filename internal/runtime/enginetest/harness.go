package enginetest

import (
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/runtime"
)

// Harness says how to run the suite on one engine.
type Harness struct {
	// New returns a fresh engine acting for a fresh Owner. The suite calls
	// it once per check; the harness closes what it made with t.Cleanup.
	New func(t *testing.T) runtime.PodEngine
	// Peer returns another owner's engine on the same engine as e (the
	// same Docker Engine, the same fake world). nil skips the owner checks.
	Peer func(t *testing.T, e runtime.PodEngine) runtime.PodEngine
	// App is the image ref of the test app (internal/testutil/testapp).
	App string
	// AppArgv is the argv prefix that runs the test app, e.g.
	// ["/testapp"]: the suite runs AppArgv + ["exit", "3"].
	AppArgv []string
	// StartWithin is how long a start may take on this engine, from
	// StartPod to a serving Addr (0: 60 s, for a busy Docker Engine). It
	// bounds the waits; a passing check never waits it out.
	StartWithin time.Duration
	// Parallel is how many checks run at once (0: 8).
	Parallel int
}

func (h Harness) validate(t *testing.T) {
	t.Helper()
	if h.New == nil {
		t.Fatal("enginetest: Harness.New is nil")
	}
	if h.App == "" {
		t.Fatal("enginetest: Harness.App is empty")
	}
	if len(h.AppArgv) == 0 {
		t.Fatal("enginetest: Harness.AppArgv is empty")
	}
}

func (h Harness) startWithin() time.Duration {
	if h.StartWithin <= 0 {
		return time.Minute
	}
	return h.StartWithin
}
