package controlplane

// Task start and an app's network. A task's pod joins the app network, so
// it reaches the services by name. An engine may prepare for it (on
// Docker a network holder is kept started, which takes the network join
// out of the task's start: runtime.TaskPrewarmer); the daemon asks for
// that once a deploy made the app's network. A destroy marks the app
// closing before it lists the app's pods, so a task created meanwhile
// removes itself rather than outlive its app.

import "github.com/berth-dev/berth/internal/runtime"

// warmTasks asks the engine to prepare for app's next task.
func (d *Daemon) warmTasks(app string) {
	tw, ok := d.pods.(runtime.TaskPrewarmer)
	if !ok || d.ctx.Err() != nil || d.appClosing(app) {
		return
	}
	tw.WarmTaskNet(networkName(app), map[string]string{runtime.LabelApp: app}, d.internalNames(app))
}

// closeApp marks app closing: being (or was) destroyed and not deployed
// since.
func (d *Daemon) closeApp(app string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closing == nil {
		d.closing = map[string]bool{}
	}
	d.closing[app] = true
}

// appClosing reports whether app is closing (see closeApp).
func (d *Daemon) appClosing(app string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.closing[app]
}

// openApp lets app run tasks again (a deploy after a destroy).
func (d *Daemon) openApp(app string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.closing, app)
}
