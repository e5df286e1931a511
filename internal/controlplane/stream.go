package controlplane

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/berth-dev/berth/internal/api"
	"github.com/berth-dev/berth/internal/controlplane/rollout"
)

// stream writes newline-delimited JSON messages to a client, flushing each.
// Work that outlives the client (a detached deploy) keeps calling send; once
// the handler has returned, send drops messages instead of touching the
// finished ResponseWriter.
type stream struct {
	mu   sync.Mutex
	w    http.ResponseWriter
	rc   *http.ResponseController
	enc  *json.Encoder
	done bool
}

func newStream(w http.ResponseWriter) *stream {
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	st := &stream{w: w, rc: http.NewResponseController(w), enc: json.NewEncoder(w)}
	_ = st.rc.Flush()
	return st
}

func (st *stream) send(m api.Message) {
	if m.Time.IsZero() {
		m.Time = time.Now()
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.done {
		return
	}
	if err := st.enc.Encode(m); err != nil {
		st.done = true
		return
	}
	_ = st.rc.Flush()
}

// close ends the stream for good; call before the handler returns.
func (st *stream) close() {
	st.mu.Lock()
	st.done = true
	st.mu.Unlock()
}

// runStreamed runs work under the daemon's lifetime (not the request's, so a
// client that detaches does not cancel it), streams its progress, and ends
// the stream with its result.
func (d *Daemon) runStreamed(w http.ResponseWriter, r *http.Request, work func(out rollout.Progress) api.Message) {
	st := newStream(w)
	defer st.close()
	res := make(chan api.Message, 1)
	d.bg.Add(1)
	go func() {
		defer d.bg.Done()
		var err error
		defer func() {
			if err != nil {
				res <- failure(err, nil)
			}
		}()
		defer d.containErr(&err, "api", "method", r.Method, "path", r.URL.Path)
		res <- work(st.send)
	}()
	select {
	case m := <-res:
		st.send(m)
	case <-r.Context().Done():
	}
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, code int, e api.Error) {
	writeJSON(w, code, e)
}

// fail answers with the status that fits err.
func fail(w http.ResponseWriter, err error) {
	code := http.StatusInternalServerError
	switch errorCode(err) {
	case "not_found":
		code = http.StatusNotFound
	case "deploy_in_progress":
		code = http.StatusConflict
	case "invalid", "no_revision", "image_not_found", "platform", "task_not_started":
		code = http.StatusBadRequest
	}
	var ae *apiError
	if errors.As(err, &ae) {
		code = ae.status
	}
	writeError(w, code, api.Error{Message: oneLine(err.Error()), Code: errorCode(err)})
}

// apiError forces an HTTP status for an error.
type apiError struct {
	status int
	err    error
}

func (e *apiError) Error() string { return e.err.Error() }
func (e *apiError) Unwrap() error { return e.err }

// result turns an error into a stream's final message.
func result(err error) api.Message {
	if err != nil {
		return failure(err, nil)
	}
	return api.Message{Kind: api.KindResult, Time: time.Now(), OK: true}
}

// followContext is the context of a request that streams until the client
// goes (logs -f): it ends with the daemon too. The API server's shutdown
// waits for every request in flight, and the state is released to the next
// daemon (a restart, an upgrade under berth server's supervisor) only after
// that, while the edge already accepts no new connection: an open follow
// must not hold that up to the drain bound.
func (d *Daemon) followContext(r *http.Request) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(r.Context())
	stop := context.AfterFunc(d.ctx, cancel)
	return ctx, func() { stop(); cancel() }
}
