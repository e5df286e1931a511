package controlplane

import (
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
// revision (or one instance, running or stopped), merged in time order.
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
	rev := s.rev
	s.mu.Unlock()
	labels := map[string]string{runtime.LabelApp: app, runtime.LabelService: name, runtime.LabelRole: string(runtime.RoleInstance)}
	cs, err := d.engine.List(r.Context(), labels)
	if err != nil {
		fail(w, err)
		return
	}
	want := q.Get("instance")
	var pick []runtime.Container
	for _, c := range cs {
		id := c.Labels[runtime.LabelInstance]
		switch {
		case want != "" && id == want:
			pick = append(pick, c)
		case want == "" && c.Labels[runtime.LabelRevision] == strconv.Itoa(rev) && c.Running:
			pick = append(pick, c)
		}
	}
	if want != "" && len(pick) == 0 {
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
			id := c.Labels[runtime.LabelInstance]
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
	var wg sync.WaitGroup
	for _, c := range pick {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := c.Labels[runtime.LabelInstance]
			_ = d.engine.Logs(r.Context(), c.ID, opts, func(l runtime.LogLine) {
				st.send(api.Message{Kind: api.KindLog, Time: l.Time, Source: id, Stream: l.Stream, Text: l.Text})
			})
		}()
	}
	wg.Wait()
}
