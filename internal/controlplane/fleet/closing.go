package fleet

// An app closing: a destroy marks the app closing before it lists the
// app's pods, so a task created meanwhile removes itself rather than
// outlive its app (the tasks' Runner asks Closing), and a lost network
// of the app is not made again.

// CloseApp marks app closing: being (or was) destroyed and not deployed
// since.
func (f *Fleet) CloseApp(app string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closing == nil {
		f.closing = map[string]bool{}
	}
	f.closing[app] = true
}

// Closing reports whether app is closing (see CloseApp).
func (f *Fleet) Closing(app string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.closing[app]
}

// OpenApp lets app run tasks again (a deploy after a destroy).
func (f *Fleet) OpenApp(app string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.closing, app)
}
