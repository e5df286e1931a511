package controlplane

import (
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/berth-dev/berth/internal/api"
	"github.com/berth-dev/berth/internal/controlplane/fleet"
	"github.com/berth-dev/berth/internal/runtime"
)

// handleLogs streams a service's output: every instance of the serving
// revision (or one instance, running or stopped), merged in time order,
// with their sidecars (or only the container=NAME of each: the service's
// own or a sidecar). A sidecar's lines come from source "INSTANCE/NAME".
func (d *Daemon) handleLogs(w http.ResponseWriter, r *http.Request) {
	app, name := r.PathValue("app"), r.PathValue("svc")
	q := r.URL.Query()
	s, err := d.fleet.Existing(r.Context(), app, name)
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
	cur := s.Serving()
	rev, sp := cur.Number, cur.Spec
	container := q.Get("container")
	if container != "" && container != name && (sp == nil || sp.Sidecars[container] == nil) {
		fail(w, fmt.Errorf("%w: %s has no container named %q; %s", ErrNotFound, name, container, fleet.ContainerChoices(sp, name)))
		return
	}
	pods, err := d.pods.ListPods(r.Context(), map[string]string{runtime.LabelApp: app, runtime.LabelService: name, runtime.LabelRole: string(runtime.RoleInstance)})
	if err != nil {
		fail(w, err)
		return
	}
	want := q.Get("instance")
	// The instances asked for: one by ID, else the serving revision's
	// running ones; then their containers.
	var pick []logSource
	found := false
	for _, p := range pods {
		id := p.Labels[runtime.LabelInstance]
		switch {
		case want != "" && id == want:
			found = true
		case want == "" && p.Labels[runtime.LabelRevision] == strconv.Itoa(rev) && p.Running():
		default:
			continue
		}
		pick = append(pick, logSources(p, id, name, container)...)
	}
	if want != "" && !found {
		fail(w, fmt.Errorf("%w: %s has no instance %q; see \"berth status\"", ErrNotFound, name, want))
		return
	}
	st := newStream(w)
	defer st.close()
	if !opts.Follow {
		// Read everything, then merge by time so instances interleave as
		// they happened.
		var msgs []api.Message
		for _, src := range pick {
			_ = d.pods.Logs(r.Context(), src.pod, src.container, opts, func(l runtime.LogLine) {
				msgs = append(msgs, api.Message{Kind: api.KindLog, Time: l.Time, Source: src.name, Stream: l.Stream, Text: l.Text})
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
	for _, src := range pick {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer d.contain("logs", "source", src.name)
			_ = d.pods.Logs(ctx, src.pod, src.container, opts, func(l runtime.LogLine) {
				st.send(api.Message{Kind: api.KindLog, Time: l.Time, Source: src.name, Stream: l.Stream, Text: l.Text})
			})
		}()
	}
	wg.Wait()
}

// logSource is one container whose output is asked for, and how its
// lines are named: its instance, and for a sidecar "INSTANCE/NAME".
type logSource struct {
	pod, container, name string
}

// logSources are the containers of instance id's pod p whose output is
// asked for: container "" means the service's own and its sidecars.
func logSources(p runtime.Pod, id, service, container string) []logSource {
	var out []logSource
	for _, c := range p.Containers {
		switch {
		case c.Main && (container == "" || container == service):
			out = append(out, logSource{pod: p.ID, name: id})
		case !c.Main && (container == "" || container == c.Name):
			out = append(out, logSource{pod: p.ID, container: c.Name, name: id + "/" + c.Name})
		}
	}
	return out
}
