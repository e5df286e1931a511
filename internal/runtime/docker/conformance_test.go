package docker_test

import (
	"testing"

	"github.com/berth-dev/berth/internal/runtime"
	"github.com/berth-dev/berth/internal/runtime/enginetest"
	"github.com/berth-dev/berth/internal/testutil"
)

// TestConformance runs the pod contract's suite on the real Docker Engine:
// each check gets an engine of a fresh owner, and the owner checks a peer
// acting for another owner on the same Docker Engine.
func TestConformance(t *testing.T) {
	enginetest.Run(t, enginetest.Harness{
		New: func(t *testing.T) runtime.PodEngine { return newPods(t) },
		Peer: func(t *testing.T, _ runtime.PodEngine) runtime.PodEngine {
			return newPods(t)
		},
		App:     testutil.TestAppImage(t),
		AppArgv: []string{"/testapp"},
	})
}
