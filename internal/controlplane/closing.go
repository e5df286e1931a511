package controlplane

// An app closing: a destroy marks the app closing before it lists the
// app's pods, so a task created meanwhile removes itself rather than
// outlive its app (the tasks' Runner asks appClosing), and a lost network
// of the app is not made again.

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
