package fleet

// The app's private network, on which its instances and tasks call each
// other by name: made once per app, and made again, with what depends on
// it, when it is removed behind berth's back.

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/berth-dev/berth/internal/runtime"
)

// NetworkName is the engine name of app's private network.
func NetworkName(app string) string { return "berth-" + app }

// EnsureNetwork creates the app's private network once. The engine does not
// catch two simultaneous creates of one name, so berth serialises them.
func (f *Fleet) EnsureNetwork(ctx context.Context, app string) error {
	f.netMu.Lock()
	defer f.netMu.Unlock()
	return f.pods.EnsureNetwork(ctx, NetworkName(app), map[string]string{runtime.LabelApp: app})
}

// checkNetworks re-creates the network of an app that lost it behind
// berth's back (docker network rm): the containers that were on it can no
// longer be reached, and new ones could not be created, so without this the
// service would crash-loop until the next deploy.
func (f *Fleet) checkNetworks(ctx context.Context) {
	na, ok := f.pods.(runtime.InternalGateway)
	if !ok {
		return
	}
	byApp := map[string][]*Service{}
	for _, s := range f.Services("") {
		s.mu.Lock()
		rev := s.rev
		s.mu.Unlock()
		if rev != 0 {
			byApp[s.app] = append(byApp[s.app], s)
		}
	}
	for app, ss := range byApp {
		if _, _, err := na.NetworkAddrs(ctx, NetworkName(app)); errors.Is(err, runtime.ErrNetworkNotFound) && !f.Closing(app) {
			f.restoreNetwork(ctx, app, ss)
		}
	}
}

// restoreNetwork makes app's network again, with what depends on it: the
// internal load balancer (on the new network's gateway), the ready task
// network holders, and the instances, which are replaced at once (a lost
// network is no crash of theirs, so no backoff).
func (f *Fleet) restoreNetwork(ctx context.Context, app string, ss []*Service) {
	name := NetworkName(app)
	if err := f.EnsureNetwork(ctx, app); err != nil {
		f.log.Warn("re-create a removed app network", "app", app, "network", name, "err", err)
		return
	}
	f.internal.Close(app)
	if a, err := f.store.GetApp(ctx, app); err == nil {
		f.internal.Restore(ctx, a)
	}
	f.tasks.Warm(app)
	lost := 0
	for _, s := range ss {
		s.mu.Lock()
		gone := s.instances
		s.instances = nil
		s.crashes, s.crashMsg, s.nextRestart = 0, "", time.Time{}
		f.publish(s)
		s.mu.Unlock()
		for _, in := range gone {
			if in.stopMonitor != nil {
				in.stopMonitor()
			}
			f.bg.Add(1)
			go func() {
				defer f.bg.Done()
				f.RemoveInstance(context.WithoutCancel(ctx), in)
			}()
		}
		lost += len(gone)
		f.kick(s)
	}
	f.event(app, "", "network", fmt.Sprintf("network %s was removed outside berth: re-created it; replacing the %d instance(s) that were on it", name, lost))
}
