package edge

import (
	"bytes"
	"encoding/json"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berth-dev/berth/internal/edge/cache"
)

// lockedBuffer is an access log destination for tests.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// metricValue returns the value of the series of name with exactly the
// given labels (a histogram's sample count), or 0 when there is none.
func metricValue(t testing.TB, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			if len(m.GetLabel()) != len(labels) {
				continue
			}
			for _, lp := range m.GetLabel() {
				if labels[lp.GetName()] != lp.GetValue() {
					continue next
				}
			}
			return value(m)
		}
	}
	return 0
}

func value(m *dto.Metric) float64 {
	switch {
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	case m.Histogram != nil:
		return float64(m.Histogram.GetSampleCount())
	}
	return 0
}

func TestAccessLogAndMetrics(t *testing.T) {
	app := newTestBackend(t, "app", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/static":
			w.Header().Set("Cache-Control", "max-age=60")
			_, _ = io.WriteString(w, "static content")
		case "/fail":
			http.Error(w, "nope", http.StatusInternalServerError)
		default:
			_, _ = io.WriteString(w, "hello")
		}
	}))
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg)
	require.NoError(t, err)
	logBuf := &lockedBuffer{}
	c0, err := cache.New(cache.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = c0.Close() })
	e, srv := newTestEdge(t, Options{Metrics: m, AccessLog: logBuf},
		Route{Key: "shop/app", Hosts: []string{"app.shop.localhost"}, Backends: backendsOf(app)},
		Route{Key: "shop/down", Hosts: []string{"down.shop.localhost"}, Backends: []Backend{{ID: "dead", Addr: deadAddr(t)}}})
	require.NoError(t, e.SetEntrypoint(Entrypoint{Name: "www", Hosts: []string{"www.example.com"}, Origin: serviceOrigin("shop/app"), Cache: c0}))
	c := testClient(t)

	for range 5 {
		do(t, c, http.MethodGet, srv.URL, "app.shop.localhost", "/", "")
	}
	for range 3 {
		do(t, c, http.MethodGet, srv.URL, "www.example.com", "/static", "")
	}
	for range 2 {
		do(t, c, http.MethodGet, srv.URL, "www.example.com", "/fail", "")
	}
	do(t, c, http.MethodGet, srv.URL, "nowhere.localhost", "/x", "")
	do(t, c, http.MethodGet, srv.URL, "down.shop.localhost", "/", "")

	t.Run("metrics", func(t *testing.T) {
		req := func(ep, origin, code string) float64 {
			return metricValue(t, reg, "berth_edge_requests_total", map[string]string{"entrypoint": ep, "origin": origin, "code": code})
		}
		assert.Equal(t, 5.0, req("shop/app", "shop/app", "2xx"))
		assert.Equal(t, 1.0, req("www", "shop/app", "2xx"), "the first /static went to the origin")
		assert.Equal(t, 2.0, req("www", "", "2xx"), "two cache hits: no origin")
		assert.Equal(t, 2.0, req("www", "shop/app", "5xx"))
		assert.Equal(t, 1.0, req("", "", "4xx"), "unknown host")
		assert.Equal(t, 1.0, req("shop/down", "shop/down", "5xx"))
		assert.Equal(t, 5.0, metricValue(t, reg, "berth_edge_request_duration_seconds", map[string]string{"entrypoint": "shop/app", "origin": "shop/app"}))
		assert.Equal(t, 2.0, metricValue(t, reg, "berth_edge_cache_hits_total", map[string]string{"entrypoint": "www"}))
		assert.Equal(t, 3.0, metricValue(t, reg, "berth_edge_cache_misses_total", map[string]string{"entrypoint": "www"}), "one /static, two /fail")
		assert.Equal(t, 25.0, metricValue(t, reg, "berth_edge_response_bytes_total", map[string]string{"entrypoint": "shop/app", "origin": "shop/app"}))
		assert.Zero(t, metricValue(t, reg, "berth_edge_requests_in_flight", map[string]string{"entrypoint": "www"}))
	})

	t.Run("access log", func(t *testing.T) {
		lines := decodeLines(t, logBuf.String())
		require.Len(t, lines, 12)
		first := lines[0]
		for _, k := range []string{"time", "entrypoint", "host", "method", "path", "status", "bytes", "duration_ms", "origin", "cache", "error"} {
			assert.Contains(t, first, k)
		}
		assert.Equal(t, "shop/app", first["entrypoint"])
		assert.Equal(t, "app.shop.localhost", first["host"])
		assert.Equal(t, "/", first["path"])
		assert.Equal(t, 200.0, first["status"])
		assert.Equal(t, 5.0, first["bytes"])
		ts, err := time.Parse(time.RFC3339Nano, first["time"].(string))
		require.NoError(t, err)
		assert.WithinDuration(t, time.Now(), ts, time.Minute)

		caches := []any{lines[5]["cache"], lines[6]["cache"], lines[7]["cache"]}
		assert.Equal(t, []any{"miss", "hit", "hit"}, caches)
		assert.Equal(t, "", lines[6]["origin"])
		assert.Equal(t, "shop/app", lines[5]["origin"])
		assert.Equal(t, "unknown-host", lines[10]["error"])
		assert.Equal(t, 404.0, lines[10]["status"])
		assert.Equal(t, "upstream-unreachable", lines[11]["error"])
	})
}

func TestAppendJSONString(t *testing.T) {
	for _, s := range []string{"", "plain", `quo"te\back`, "ctl\x00\x1f\n\t\r", "utf8 é ✓", "bad \xff\xfe utf8", "</script>"} {
		b := appendJSONString(nil, s)
		var got string
		require.NoError(t, json.Unmarshal(b, &got), string(b))
		if !strings.Contains(s, "\xff") {
			assert.Equal(t, s, got)
		} else {
			assert.Equal(t, "bad \ufffd\ufffd utf8", got)
		}
	}
}

func TestAppendLogTime(t *testing.T) {
	times := []time.Time{
		time.Date(2025, 1, 2, 15, 4, 5, 123456789, time.UTC),
		time.Date(1999, 12, 31, 23, 59, 59, 999999999, time.FixedZone("X", -7*3600)),
		time.Date(2024, 2, 29, 0, 0, 0, 0, time.UTC),
		time.Date(12345, 1, 1, 0, 0, 0, 1000, time.UTC),
		time.Now(),
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 1000 {
		times = append(times, time.Unix(r.Int64N(1<<34), r.Int64N(1e9)))
	}
	for _, tm := range times {
		want := tm.UTC().AppendFormat(nil, logTimeLayout)
		assert.Equal(t, string(want), string(appendLogTime(nil, tm)))
	}
}

func TestLogFileRotates(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "edge-access.log")
	l, err := OpenLogFile(path, 100, 2)
	require.NoError(t, err)
	line := []byte(strings.Repeat("x", 39) + "\n") // 40 bytes
	for range 7 {
		_, err := l.Write(line)
		require.NoError(t, err)
	}
	require.NoError(t, l.Close())
	size := func(p string) int64 {
		st, err := os.Stat(p)
		require.NoError(t, err)
		return st.Size()
	}
	// 7 lines, 2 per file: FILE holds the 7th, .1 the 5th-6th, .2 the 3rd-4th;
	// the first two were rotated away.
	assert.Equal(t, int64(40), size(path))
	assert.Equal(t, int64(80), size(path+".1"))
	assert.Equal(t, int64(80), size(path+".2"))
	_, err = os.Stat(path + ".3")
	assert.True(t, os.IsNotExist(err))
	st, err := os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), st.Mode().Perm())

	t.Run("reopen appends", func(t *testing.T) {
		l, err := OpenLogFile(path, 1000, 2)
		require.NoError(t, err)
		_, _ = l.Write(line)
		require.NoError(t, l.Flush())
		assert.Equal(t, int64(80), size(path))
		require.NoError(t, l.Close())
	})
}

func BenchmarkAccessLine(b *testing.B) {
	rec := accessRecord{time: time.Now(), entrypoint: "www", host: "www.example.com", method: "GET", path: "/index.html", status: 200, bytes: 1024, duration: 412 * time.Microsecond, origin: "shop/web", cache: "hit"}
	l := &accessLog{w: io.Discard}
	b.ReportAllocs()
	for b.Loop() {
		l.write(&rec)
	}
}

// noRegistry accepts every collector and keeps none.
type noRegistry struct{}

func (noRegistry) Register(prometheus.Collector) error  { return nil }
func (noRegistry) MustRegister(...prometheus.Collector) {}
func (noRegistry) Unregister(prometheus.Collector) bool { return true }
