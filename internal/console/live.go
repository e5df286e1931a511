package console

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"time"
)

// LiveEvery is how often the live feed reads the API for what changed.
var LiveEvery = time.Second

// handleLive is the live feed of a console page, as server-sent events:
// "status" (GET /v1/status), and as the page asks, "history" and
// "revisions" of one service (?app=A&service=S), "tasks" (?tasks=1) and
// "edge" (?edge=1). Each event is sent when its answer changes, read from
// the daemon's API in-process every LiveEvery until the browser leaves.
// Logs and events stream from the API itself (NDJSON), not through here.
func (c *Console) handleLive(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	type feed struct{ event, path string }
	feeds := []feed{{"status", "/v1/status"}}
	if app, svc := q.Get("app"), q.Get("service"); app != "" && svc != "" {
		p := "/v1/apps/" + url.PathEscape(app) + "/services/" + url.PathEscape(svc)
		feeds = append(feeds, feed{"revisions", p + "/revisions"}, feed{"history", p + "/history"})
	}
	if q.Get("tasks") != "" {
		feeds = append(feeds, feed{"tasks", "/v1/tasks?limit=50"})
	}
	if q.Get("edge") != "" {
		feeds = append(feeds, feed{"edge", "/v1/edge"})
	}
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	last := make([][]byte, len(feeds))
	tick := time.NewTicker(LiveEvery)
	defer tick.Stop()
	for {
		for i, f := range feeds {
			body, err := c.get(r, f.path)
			if err != nil {
				body, _ = json.Marshal(map[string]string{"error": err.Error()})
			}
			if bytes.Equal(body, last[i]) {
				continue
			}
			last[i] = body
			if _, err := fmt.Fprintf(w, "event: %s\ndata: %s\n\n", f.event, body); err != nil {
				return
			}
		}
		if err := rc.Flush(); err != nil {
			return
		}
		select {
		case <-r.Context().Done():
			return
		case <-tick.C:
		}
	}
}

// get answers GET path from the API in-process, as one line of JSON.
func (c *Console) get(r *http.Request, path string) ([]byte, error) {
	req, err := http.NewRequestWithContext(r.Context(), http.MethodGet, path, nil)
	if err != nil {
		return nil, err
	}
	var rec recorder
	c.cfg.API.ServeHTTP(&rec, req)
	body := bytes.TrimSpace(rec.body.Bytes())
	if rec.code != 0 && rec.code != http.StatusOK {
		var e struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(body, &e) == nil && e.Error != "" {
			return nil, fmt.Errorf("%s", e.Error)
		}
		return nil, fmt.Errorf("%s answered %d", path, rec.code)
	}
	return body, nil
}

// recorder is the ResponseWriter of an in-process API call.
type recorder struct {
	header http.Header
	code   int
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header {
	if r.header == nil {
		r.header = http.Header{}
	}
	return r.header
}

func (r *recorder) WriteHeader(code int) {
	if r.code == 0 {
		r.code = code
	}
}

func (r *recorder) Write(p []byte) (int, error) {
	if r.code == 0 {
		r.code = http.StatusOK
	}
	return r.body.Write(p)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
