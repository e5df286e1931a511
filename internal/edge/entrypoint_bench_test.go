package edge

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"testing"
)

func BenchmarkSplitChoose(b *testing.B) {
	r, _ := http.NewRequest(http.MethodGet, "http://www.example.com/", nil)
	for _, bc := range []struct {
		name   string
		sticky string
		header string
	}{{"weighted", "", ""}, {"header", "", "X-Berth-Origin"}, {"sticky", "berth_www", ""}} {
		b.Run(bc.name, func(b *testing.B) {
			sp := newSplit([]string{"a", "b", "c"}, []int{0, 1000, 500}, bc.sticky, bc.header, nil)
			b.ReportAllocs()
			for b.Loop() {
				_, _ = sp.choose(r)
			}
		})
	}
}

// BenchmarkProxyEntrypoint is BenchmarkProxy through an entrypoint with an
// external (URL) origin, metrics and an access log: the daemon's full path.
func BenchmarkProxyEntrypoint(b *testing.B) {
	payload := []byte("hello from the origin\n")
	backend := newTestBackend(b, "app", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write(payload)
	}))
	m, err := NewMetrics(noRegistry{})
	if err != nil {
		b.Fatal(err)
	}
	e, srv := newTestEdge(b, Options{Metrics: m, AccessLog: io.Discard})
	u, _ := url.Parse("http://" + backend.Addr)
	if err := e.SetEntrypoint(Entrypoint{Name: "www", Hosts: []string{"www.example.com"}, Origin: Origin{Name: u.String(), URL: u}}); err != nil {
		b.Fatal(err)
	}
	c := testClient(b)
	req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, srv.URL+"/", nil)
	if err != nil {
		b.Fatal(err)
	}
	req.Host = "www.example.com"
	b.ReportAllocs()
	for b.Loop() {
		res, err := c.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, res.Body)
		_ = res.Body.Close()
		if res.StatusCode != http.StatusOK {
			b.Fatal(fmt.Errorf("status %d", res.StatusCode))
		}
	}
}
