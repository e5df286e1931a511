package edge

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Tests of the fast path on an entrypoint's hosts: which entrypoints it
// takes (one plain-HTTP origin, header controls) and that it answers
// them as the net/http path does.

// originSaw is what an origin saw of a request.
type originSaw struct {
	host, uri, forwardedHost, forwardedFor string
}

// plainOrigin is an external origin over plain HTTP that reports what it
// saw.
func plainOrigin(t testing.TB) (*httptest.Server, chan originSaw) {
	t.Helper()
	seen := make(chan originSaw, 16)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen <- originSaw{r.Host, r.RequestURI, r.Header.Get("X-Forwarded-Host"), r.Header.Get("X-Forwarded-For")}
		w.Header().Set("X-Origin", "plain")
		w.Header().Set("X-Internal", "secret")
		_, _ = io.WriteString(w, "plain:"+r.URL.Path)
	}))
	t.Cleanup(srv.Close)
	return srv, seen
}

func TestFastPathEntrypointURLOrigin(t *testing.T) {
	ext, seen := plainOrigin(t)
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg)
	require.NoError(t, err)
	logBuf := &lockedBuffer{}
	e, srv := newTestEdge(t, Options{Metrics: m, AccessLog: logBuf})
	require.NoError(t, e.SetEntrypoint(Entrypoint{Name: "www", Hosts: []string{"www.example.com"},
		Origin: urlOrigin(t, ext.URL+"/base/"), Controls: Controls{Timeout: time.Minute}}))
	old := httptest.NewServer(e) // net/http and ReverseProxy only
	t.Cleanup(old.Close)
	c := testClient(t)

	// The same request through both paths: the origin sees the same.
	var got [2]originSaw
	for i, base := range []string{srv.URL, old.URL} {
		res := do(t, c, http.MethodGet, base, "www.example.com:8080", "/a%2Fb/c?q=1", "")
		require.Equal(t, http.StatusOK, res.status)
		assert.Equal(t, "plain:/base/a/b/c", res.body)
		assert.Equal(t, "plain", res.header.Get("X-Origin"))
		got[i] = <-seen
	}
	assert.Equal(t, int64(1), srv.FastRequests(), "the fast path took the first")
	assert.Equal(t, got[1], got[0], "what the origin saw, fast path and net/http")
	assert.Equal(t, strings.TrimPrefix(ext.URL, "http://"), got[0].host, "the Host is the origin's own")
	assert.Equal(t, "/base/a%2Fb/c?q=1", got[0].uri)
	assert.Equal(t, "www.example.com:8080", got[0].forwardedHost)
	assert.Equal(t, "127.0.0.1", got[0].forwardedFor)

	eventually(t, 2*time.Second, func() bool { return strings.Count(logBuf.String(), "\n") >= 2 }, "two access log lines")
	lines := decodeLines(t, logBuf.String())
	for _, l := range lines {
		assert.Equal(t, "www", l["entrypoint"])
		assert.Equal(t, ext.URL, l["origin"], "the origin's label")
		assert.Equal(t, 200.0, l["status"])
	}
	mfs, err := reg.Gather()
	require.NoError(t, err)
	var requests float64
	for _, mf := range mfs {
		if mf.GetName() == "berth_edge_requests_total" {
			for _, mt := range mf.GetMetric() {
				requests += mt.GetCounter().GetValue()
			}
		}
	}
	assert.Equal(t, 2.0, requests, "both requests counted")
}

func TestFastPathEntrypointServiceOrigin(t *testing.T) {
	good := newTestBackend(t, "a", nil)
	e, srv := newTestEdge(t, Options{}, Route{Key: "shop/web", Backends: []Backend{{ID: "dead", Addr: deadAddr(t)}, good.Backend}})
	require.NoError(t, e.SetEntrypoint(Entrypoint{Name: "www", Hosts: []string{"www.example.com"}, Origin: serviceOrigin("shop/web")}))
	c := testClient(t)
	for range 10 {
		res := do(t, c, http.MethodGet, srv.URL, "www.example.com", "/x", "")
		require.Equal(t, http.StatusOK, res.status)
		assert.Equal(t, "a", res.header.Get("X-Backend"))
	}
	assert.Equal(t, int64(10), srv.FastRequests())
	assert.Zero(t, e.InFlight("a"))
}

// An entrypoint's header controls apply on the fast path as on net/http,
// to the origin's answers and to the edge's own.
func TestFastPathEntrypointHeaderControls(t *testing.T) {
	ext, seen := plainOrigin(t)
	ctl := Controls{AddHeaders: map[string]string{"X-Edge": "berth", "X-Origin": "replaced"}, RemoveHeaders: []string{"X-Internal"}}
	e, srv := newTestEdge(t, Options{})
	require.NoError(t, e.SetEntrypoint(Entrypoint{Name: "hdr", Hosts: []string{"hdr.example.com"}, Origin: urlOrigin(t, ext.URL), Controls: ctl}))
	require.NoError(t, e.SetEntrypoint(Entrypoint{Name: "gone", Hosts: []string{"gone.example.com"}, Origin: urlOrigin(t, "http://"+deadAddr(t)), Controls: ctl}))
	old := httptest.NewServer(e)
	t.Cleanup(old.Close)
	c := testClient(t)
	for _, base := range []string{srv.URL, old.URL} {
		res := do(t, c, http.MethodGet, base, "hdr.example.com", "/", "")
		<-seen
		assert.Equal(t, http.StatusOK, res.status, base)
		assert.Equal(t, "berth", res.header.Get("X-Edge"), base)
		assert.Equal(t, []string{"replaced"}, res.header.Values("X-Origin"), base)
		assert.Empty(t, res.header.Values("X-Internal"), base)
		assert.Equal(t, "plain:/", res.body, base)

		res = do(t, c, http.MethodGet, base, "gone.example.com", "/", "")
		assert.Equal(t, http.StatusBadGateway, res.status, base)
		assert.Equal(t, "berth", res.header.Get("X-Edge"), "the edge's own page too: %s", base)
	}
	assert.Equal(t, int64(2), srv.FastRequests())
}

// The fast path leaves what it does not do for entrypoints to net/http,
// which does it.
func TestFastPathEntrypointHandsOver(t *testing.T) {
	ext, _ := plainOrigin(t)
	e, srv := newTestEdge(t, Options{})
	require.NoError(t, e.SetEntrypoint(Entrypoint{Name: "pages", Hosts: []string{"pages.example.com"}, Origin: urlOrigin(t, "http://"+deadAddr(t)),
		ErrorPages: map[int][]byte{http.StatusBadGateway: []byte("<p>sorry</p>")}}))
	require.NoError(t, e.SetEntrypoint(Entrypoint{Name: "down", Hosts: []string{"down.example.com"}, Origin: urlOrigin(t, ext.URL), Maintenance: true}))
	c := testClient(t)
	res := do(t, c, http.MethodGet, srv.URL, "pages.example.com", "/", "")
	assert.Equal(t, http.StatusBadGateway, res.status)
	assert.Equal(t, "<p>sorry</p>", res.body)
	res = do(t, c, http.MethodGet, srv.URL, "down.example.com", "/", "")
	assert.Equal(t, http.StatusServiceUnavailable, res.status)
	assert.Equal(t, ReasonMaintenance, res.header.Get(ErrorHeader))
	assert.Zero(t, srv.FastRequests())
}

func TestFastPathEntrypointErrorsAsNetHTTP(t *testing.T) {
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	}))
	t.Cleanup(slow.Close)
	e, srv := newTestEdge(t, Options{})
	require.NoError(t, e.SetEntrypoint(Entrypoint{Name: "gone", Hosts: []string{"gone.example.com"}, Origin: urlOrigin(t, "http://"+deadAddr(t))}))
	require.NoError(t, e.SetEntrypoint(Entrypoint{Name: "slow", Hosts: []string{"slow.example.com"}, Origin: urlOrigin(t, slow.URL),
		Controls: Controls{Timeout: 100 * time.Millisecond}}))
	old := httptest.NewServer(e)
	t.Cleanup(old.Close)
	c := testClient(t)
	for _, tc := range []struct {
		host   string
		status int
		reason string
	}{
		{"gone.example.com", http.StatusBadGateway, ReasonUnreachable},
		{"slow.example.com", http.StatusGatewayTimeout, ReasonTimeout},
	} {
		fast := do(t, c, http.MethodGet, srv.URL, tc.host, "/", "")
		viaNetHTTP := do(t, c, http.MethodGet, old.URL, tc.host, "/", "")
		assert.Equal(t, tc.status, fast.status, tc.host)
		assert.Equal(t, tc.reason, fast.header.Get(ErrorHeader), tc.host)
		assert.Equal(t, viaNetHTTP.status, fast.status, tc.host)
		assert.Equal(t, viaNetHTTP.body, fast.body, tc.host)
	}
	assert.Equal(t, int64(2), srv.FastRequests())
}
