package fleet

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/berth-dev/berth/internal/edge"
)

// Monitor health-checks a serving instance at the spec's interval. After
// `unhealthy` consecutive failures the instance leaves the edge at once and
// the reconciler replaces it, as App Runner does. Workers (no port) have
// nothing to probe: the reconciler notices when they exit.
func (f *Fleet) Monitor(s *Service, in *Instance) {
	s.mu.Lock()
	sp := s.spec
	if sp == nil || sp.Port == 0 || in.state != StateHealthy {
		s.mu.Unlock()
		return
	}
	ctx, cancel := context.WithCancel(f.ctx)
	in.stopMonitor = cancel
	s.mu.Unlock()

	f.bg.Add(1)
	go func() {
		defer f.bg.Done()
		defer f.contain("health monitor", "instance", in.id)
		t := time.NewTicker(sp.Health.Interval)
		defer t.Stop()
		fails := 0
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			err := edge.Check(ctx, in.addr, sp.Health.Path, sp.Health.Timeout)
			if ctx.Err() != nil {
				return
			}
			if err == nil {
				fails = 0
				continue
			}
			fails++
			if fails < sp.Health.Unhealthy {
				continue
			}
			s.mu.Lock()
			if in.state == StateHealthy && slices.Contains(s.instances, in) {
				in.state = StateUnhealthy
				f.publish(s)
			}
			s.mu.Unlock()
			f.event(s.app, s.name, "unhealthy", fmt.Sprintf("instance %s failed %d health checks (%v); replacing it", in.id, fails, err))
			f.kick(s)
			return
		}
	}()
}
