package controlplane

// Task networks kept ready. A container joining the app network costs the
// engine about 0.3 s at start (a veth pair, its addresses, the embedded DNS
// rules in the new namespace): most of a task's start. So each app keeps one
// network holder (group.go's tiny sleeper) started on its network, and a
// task joins that holder's namespace instead, which starts like a container
// with no network at all. It has the same reach as before: the app's
// services by name, the internal names (the holder's /etc/hosts), nothing
// else. Each task gets a holder of its own, removed with it; the next one
// is started in the background as soon as one is taken. With none ready (a
// burst of tasks, the first task of an app) a task joins the network
// itself, as it always could.

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/berth-dev/berth/internal/runtime"
	"github.com/berth-dev/berth/internal/spec"
)

// labelTaskNet on a task's container names the holder whose network it
// joined, so whoever ends the task (this daemon or the next) removes both.
const labelTaskNet = "berth.tasknet"

// labelTaskNetHosts on a holder are the internal names its /etc/hosts has
// (they are fixed at create): one made before a deploy changed the app's
// names is not used.
const labelTaskNetHosts = "berth.tasknet.hosts"

// taskNets are the ready holders, by app. The zero value is ready to use.
type taskNets struct {
	mu   sync.Mutex
	apps map[string]*appTaskNet
}

type appTaskNet struct {
	ready   []readyNet // started holders
	filling bool
	closed  bool          // destroyed: no more holders
	filled  chan struct{} // closed when the fill under way ends
}

// readyNet is a started holder and the internal names it resolves.
type readyNet struct {
	id    string
	hosts string
}

func (t *taskNets) app(name string) *appTaskNet {
	if t.apps == nil {
		t.apps = map[string]*appTaskNet{}
	}
	a := t.apps[name]
	if a == nil {
		a = &appTaskNet{}
		t.apps[name] = a
	}
	return a
}

// takeTaskNet returns a ready holder of app for a task to join; "" when
// none is ready. The caller warms the next once its task has started.
func (d *Daemon) takeTaskNet(ctx context.Context, app string) string {
	hosts := hostsKey(d.internalHosts(app))
	for {
		d.taskNets.mu.Lock()
		a := d.taskNets.app(app)
		var r readyNet
		if n := len(a.ready); n > 0 {
			r, a.ready = a.ready[n-1], a.ready[:n-1]
		}
		d.taskNets.mu.Unlock()
		if r.id == "" {
			return ""
		}
		// One made before the app's internal names changed, or that died
		// meanwhile (removed by hand, the engine restarted), is dropped.
		if r.hosts == hosts {
			if c, err := d.engine.Inspect(context.WithoutCancel(ctx), r.id); err == nil && c.Running {
				return r.id
			}
		}
		d.removeTaskNet(r.id)
	}
}

// warmTaskNet starts a holder for app in the background unless one is
// ready or on its way. It needs the app's network, so it is called once a
// deploy has made it.
func (d *Daemon) warmTaskNet(app string) {
	hi, ok := d.engine.(holderImager)
	if !ok || d.ctx.Err() != nil {
		return
	}
	hosts := d.internalHosts(app)
	current := hostsKey(hosts)
	d.taskNets.mu.Lock()
	a := d.taskNets.app(app)
	// Holders made before a deploy changed the app's internal names are
	// replaced now, not found out by the next task.
	var stale []string
	a.ready = slices.DeleteFunc(a.ready, func(r readyNet) bool {
		if r.hosts != current {
			stale = append(stale, r.id)
			return true
		}
		return false
	})
	for _, id := range stale {
		d.bg.Add(1)
		go func() { defer d.bg.Done(); d.removeTaskNet(id) }()
	}
	if a.closed || a.filling || len(a.ready) > 0 {
		d.taskNets.mu.Unlock()
		return
	}
	a.filling, a.filled = true, make(chan struct{})
	d.taskNets.mu.Unlock()
	d.bg.Add(1)
	go func() {
		defer d.bg.Done()
		defer d.contain("task network")
		id, err := d.startTaskNet(d.ctx, hi, app, hosts)
		if err != nil && d.ctx.Err() == nil {
			d.log.Warn("start a network holder for the next task", "app", app, "err", err)
		}
		d.taskNets.mu.Lock()
		a.filling = false
		close(a.filled)
		if id != "" && a.closed {
			defer func() { _ = d.engine.Remove(context.WithoutCancel(d.ctx), id) }()
		} else if id != "" {
			a.ready = append(a.ready, readyNet{id: id, hosts: current})
		}
		d.taskNets.mu.Unlock()
	}()
}

func (d *Daemon) startTaskNet(ctx context.Context, hi holderImager, app string, hosts []string) (string, error) {
	image, err := hi.HolderImage(ctx)
	if err != nil {
		return "", err
	}
	c, err := d.engine.Create(ctx, runtime.ContainerSpec{
		Name:  fmt.Sprintf("berth-%s-tasknet-%s", app, newID()),
		Image: image,
		Labels: map[string]string{
			runtime.LabelApp: app, runtime.LabelRole: string(runtime.RoleTaskNet),
			labelTaskNetHosts: hostsKey(hosts),
		},
		Network:    networkName(app),
		ExtraHosts: hosts,
		PidsLimit:  spec.MinPids,
		StopGrace:  time.Second,
	})
	if err != nil {
		return "", err
	}
	if _, err := d.engine.Start(ctx, c.ID); err != nil {
		_ = d.engine.Remove(context.WithoutCancel(ctx), c.ID)
		return "", err
	}
	return c.ID, nil
}

// closeTaskNets stops app's holders from being made, waits for one under
// way, and forgets the ready ones (the caller removes every container of
// the app). A later deploy of the same name opens them again.
func (d *Daemon) closeTaskNets(app string) {
	d.taskNets.mu.Lock()
	a := d.taskNets.app(app)
	a.closed = true
	filled := a.filled
	a.ready = nil
	d.taskNets.mu.Unlock()
	if filled != nil {
		<-filled
	}
}

// taskNetsClosed reports whether app is being (or was) destroyed and not
// deployed since.
func (d *Daemon) taskNetsClosed(app string) bool {
	d.taskNets.mu.Lock()
	defer d.taskNets.mu.Unlock()
	return d.taskNets.app(app).closed
}

// openTaskNets lets app have holders again (a deploy after a destroy).
func (d *Daemon) openTaskNets(app string) {
	d.taskNets.mu.Lock()
	d.taskNets.app(app).closed = false
	d.taskNets.mu.Unlock()
}

// adoptTaskNets takes back the ready holders a previous daemon left for
// the apps of this store, and removes the stopped or outdated ones. Those
// in use are removed with their task (labelTaskNet); those of other stores'
// apps (an engine may be shared) are left alone.
func (d *Daemon) adoptTaskNets(ctx context.Context, ours map[string]bool, inUse map[string]bool) error {
	cs, err := d.engine.List(ctx, map[string]string{runtime.LabelRole: string(runtime.RoleTaskNet)})
	if err != nil {
		return fmt.Errorf("list task network holders: %w", err)
	}
	for _, c := range cs {
		app := c.Labels[runtime.LabelApp]
		switch {
		case !ours[app], inUse[c.ID]:
		case c.Running && c.Labels[labelTaskNetHosts] == hostsKey(d.internalHosts(app)):
			d.taskNets.mu.Lock()
			a := d.taskNets.app(app)
			a.ready = append(a.ready, readyNet{id: c.ID, hosts: c.Labels[labelTaskNetHosts]})
			d.taskNets.mu.Unlock()
		default:
			_ = d.engine.Remove(ctx, c.ID)
		}
	}
	return nil
}

// hostsKey is how a holder records the internal names its /etc/hosts
// resolves: its label labelTaskNetHosts and readyNet.hosts.
func hostsKey(hosts []string) string { return strings.Join(hosts, ",") }

// removeTaskNet removes a holder a task took, once the task is over.
func (d *Daemon) removeTaskNet(id string) {
	if id == "" {
		return
	}
	if err := d.engine.Remove(context.WithoutCancel(d.ctx), id); err != nil {
		d.log.Warn("remove a task's network holder", "container", shortID(id), "err", err)
	}
}
