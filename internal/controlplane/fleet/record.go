package fleet

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/berth-dev/berth/internal/runtime"
	"github.com/berth-dev/berth/internal/store"
)

// instanceRecorder mirrors each service's live instances into the store's
// instances table, off the hot path: publish hands it the latest set and a
// background loop writes it, the newest set per service winning.
type instanceRecorder struct {
	mu      sync.Mutex
	pending map[string]instanceSet // by "app/service"
	signal  chan struct{}
}

// instanceSet is one service's live instances at one moment.
type instanceSet struct {
	app, svc string
	rows     []store.Instance
}

func newInstanceRecorder() *instanceRecorder {
	return &instanceRecorder{pending: map[string]instanceSet{}, signal: make(chan struct{}, 1)}
}

// recordInstances queues s's live instances for the store. Call with s.mu held.
func (f *Fleet) recordInstances(s *Service) {
	now := time.Now().UTC()
	rows := make([]store.Instance, 0, len(s.instances))
	for _, in := range s.instances {
		rows = append(rows, store.Instance{
			ID: in.id, App: s.app, Service: s.name, Revision: in.rev,
			Role: string(runtime.RoleInstance), ContainerID: in.podID,
			State: in.state.String(), HostAddr: in.addr, CreatedAt: in.startedAt.UTC(), UpdatedAt: now,
		})
	}
	r := f.instRec
	k := serviceKey(s.app, s.name)
	r.mu.Lock()
	r.pending[k] = instanceSet{app: s.app, svc: s.name, rows: rows}
	r.mu.Unlock()
	select {
	case r.signal <- struct{}{}:
	default:
	}
}

// RecordLoop writes queued instance sets until ctx ends.
func (f *Fleet) RecordLoop(ctx context.Context) {
	r := f.instRec
	for {
		select {
		case <-ctx.Done():
			return
		case <-r.signal:
		}
		r.mu.Lock()
		batch := r.pending
		r.pending = map[string]instanceSet{}
		r.mu.Unlock()
		for _, set := range batch {
			if err := f.syncInstances(ctx, set.app, set.svc, set.rows); err != nil && !errors.Is(err, store.ErrNotFound) && ctx.Err() == nil {
				f.log.Warn("record instances", "app", set.app, "service", set.svc, "err", err)
			}
		}
	}
}

// syncInstances makes the store's rows of app/svc equal rows.
func (f *Fleet) syncInstances(ctx context.Context, app, svc string, rows []store.Instance) error {
	have, err := f.store.ListInstances(ctx, app, svc)
	if err != nil {
		return err
	}
	keep := map[string]bool{}
	for _, r := range rows {
		keep[r.ID] = true
		if err := f.store.PutInstance(ctx, r); err != nil {
			return err
		}
	}
	for _, h := range have {
		if !keep[h.ID] {
			if err := f.store.DeleteInstance(ctx, h.ID); err != nil {
				return err
			}
		}
	}
	return nil
}
