package fleet

// A fixed instance count (berth scale): instances are started or drained
// until the count serves.

import (
	"context"
	"fmt"
	"sync"
)

// Resize starts or drains instances until n serve.
func (f *Fleet) Resize(ctx context.Context, s *Service, n int) error {
	s.mu.Lock()
	s.desired = n
	rv := Revision{Number: s.rev, Spec: s.spec, Image: s.image}
	have, paused := len(s.instances), s.paused
	var surplus []*Instance
	if have > n && !paused {
		surplus = s.instances[n:]
		s.instances = s.instances[:n:n]
		f.publish(s)
	}
	s.mu.Unlock()
	if err := f.SaveService(ctx, s); err != nil {
		return err
	}
	if paused {
		f.event(s.app, s.name, "scale", fmt.Sprintf("scaled to %d (paused; applies on resume)", n))
		return nil
	}
	if len(surplus) > 0 {
		f.DrainAndStop(ctx, s, surplus, true)
	}
	if have < n {
		secrets, err := f.store.SecretValues(ctx, s.app, s.name)
		if err != nil {
			return err
		}
		var (
			wg    sync.WaitGroup
			first error
			mu    sync.Mutex
		)
		sctx, cancel := context.WithTimeout(ctx, f.cfg.DeployTimeout)
		defer cancel()
		for range n - have {
			wg.Add(1)
			go func() {
				defer wg.Done()
				in, err := f.startInstance(sctx, s.app, rv, "", secrets)
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					first = cmpOr(first, err)
					return
				}
				s.mu.Lock()
				s.instances = append(s.instances, in)
				f.publish(s)
				s.mu.Unlock()
				f.Monitor(s, in)
			}()
		}
		wg.Wait()
		if first != nil {
			return fmt.Errorf("scale of %s: %w", s.name, first)
		}
	}
	f.event(s.app, s.name, "scale", fmt.Sprintf("scaled from %d to %d instance(s)", have, n))
	return nil
}

func cmpOr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}
