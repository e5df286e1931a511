package fake_test

import (
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/runtime"
	"github.com/berth-dev/berth/internal/runtime/enginetest"
	"github.com/berth-dev/berth/internal/runtime/fake"
)

// newEngine returns a fake acting for a fresh owner, closed when the test
// ends.
func newEngine(t testing.TB) *fake.Engine {
	t.Helper()
	e := fake.New()
	e.SetOwner(runtime.Owner{ID: "owner-" + t.Name(), Dir: t.TempDir()})
	t.Cleanup(func() {
		if err := e.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return e
}

func TestConformance(t *testing.T) {
	enginetest.Run(t, enginetest.Harness{
		New: func(t *testing.T) runtime.PodEngine { return newEngine(t) },
		Peer: func(t *testing.T, e runtime.PodEngine) runtime.PodEngine {
			return e.(*fake.Engine).Peer()
		},
		App:         fake.TestApp,
		AppArgv:     []string{"/testapp"},
		StartWithin: 10 * time.Second,
	})
}
