package controlplane

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/berth-dev/berth/internal/api"
	"github.com/berth-dev/berth/internal/runtime"
)

// handleLogs streams a service's output: every instance of the serving
// revision (or one instance, running or stopped), merged in time order,
// with their sidecars (or only the container=NAME of each: the service's
// own or a sidecar). A sidecar's lines come from source "INSTANCE/NAME".
func (d *Daemon) handleLogs(w http.ResponseWriter, r *http.Request) {
	app, name := r.PathValue("app"), r.PathValue("svc")
	q := r.URL.Query()
	s, err := d.existingService(r.Context(), app, name)
	if err != nil {
		fail(w, err)
		return
	}
	opts := runtime.LogOptions{Follow: q.Get("follow") == "1", Tail: atoiDefault(q.Get("tail"), 0)}
	if v := q.Get("since"); v != "" {
		dur, err := time.ParseDuration(v)
		if err != nil || dur <= 0 {
			fail(w, fmt.Errorf("%w: --since %q: use a duration like 10m or 1h", ErrInvalid, v))
			return
		}
		opts.Since = time.Now().Add(-dur)
	}
	s.mu.Lock()
	rev, sp := s.rev, s.spec
	s.mu.Unlock()
	container := q.Get("container")
	if container != "" && container != name && (sp == nil || sp.Sidecars[container] == nil) {
		fail(w, fmt.Errorf("%w: %s has no container named %q; %s", ErrNotFound, name, container, containerChoices(sp, name)))
		return
	}
	mains, cs, err := d.logContainers(r.Context(), app, name, container)
	if err != nil {
		fail(w, err)
		return
	}
	want := q.Get("instance")
	// The instances asked for: one by ID, else the serving revision's
	// running ones; then their containers.
	ids := map[string]bool{}
	for _, c := range mains {
		id := c.Labels[runtime.LabelInstance]
		switch {
		case want != "" && id == want:
			ids[id] = true
		case want == "" && c.Labels[runtime.LabelRevision] == strconv.Itoa(rev) && c.Running:
			ids[id] = true
		}
	}
	var pick []runtime.Container
	for _, c := range cs {
		if ids[c.Labels[runtime.LabelInstance]] {
			pick = append(pick, c)
		}
	}
	if want != "" && len(ids) == 0 {
		fail(w, fmt.Errorf("%w: %s has no instance %q; see \"berth status\"", ErrNotFound, name, want))
		return
	}
	st := newStream(w)
	defer st.close()
	if !opts.Follow {
		// Read everything, then merge by time so instances interleave as
		// they happened.
		var msgs []api.Message
		for _, c := range pick {
			id := logSource(c)
			_ = d.engine.Logs(r.Context(), c.ID, opts, func(l runtime.LogLine) {
				msgs = append(msgs, api.Message{Kind: api.KindLog, Time: l.Time, Source: id, Stream: l.Stream, Text: l.Text})
			})
		}
		slices.SortStableFunc(msgs, func(a, b api.Message) int { return a.Time.Compare(b.Time) })
		for _, m := range msgs {
			st.send(m)
		}
		return
	}
	ctx, cancel := d.followContext(r) // stream.go
	defer cancel()
	var wg sync.WaitGroup
	for _, c := range pick {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer d.contain("logs", "container", shortID(c.ID))
			id := logSource(c)
			_ = d.engine.Logs(ctx, c.ID, opts, func(l runtime.LogLine) {
				st.send(api.Message{Kind: api.KindLog, Time: l.Time, Source: id, Stream: l.Stream, Text: l.Text})
			})
		}()
	}
	wg.Wait()
}

// logContainers lists a service's instance containers (mains) and, of all
// its containers, those whose output is asked for: container "" means the
// instances' own and their sidecars (not the network holders).
func (d *Daemon) logContainers(ctx context.Context, app, name, container string) (mains, out []runtime.Container, err error) {
	mains, err = d.engine.List(ctx, map[string]string{runtime.LabelApp: app, runtime.LabelService: name, runtime.LabelRole: string(runtime.RoleInstance)})
	if err != nil {
		return nil, nil, err
	}
	if container == "" || container == name {
		out = append(out, mains...)
	}
	if container == name {
		return mains, out, nil
	}
	labels := map[string]string{runtime.LabelApp: app, runtime.LabelService: name, runtime.LabelRole: string(runtime.RoleSidecar)}
	if container != "" {
		labels[runtime.LabelSidecar] = container
	}
	side, err := d.engine.List(ctx, labels)
	if err != nil {
		return nil, nil, err
	}
	for _, c := range side {
		if c.Labels[runtime.LabelSidecar] != holderName {
			out = append(out, c)
		}
	}
	return mains, out, nil
}

// logSource names a container's lines: its instance, and for a sidecar
// "INSTANCE/NAME".
func logSource(c runtime.Container) string {
	id := c.Labels[runtime.LabelInstance]
	if sc := c.Labels[runtime.LabelSidecar]; sc != "" {
		return id + "/" + sc
	}
	return id
}
