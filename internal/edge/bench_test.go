package edge

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/edge/cache"
)

func BenchmarkLookup(b *testing.B) {
	e := New(Options{})
	var specs = map[string]Route{}
	for i := range 1000 {
		r := Route{
			Key:      fmt.Sprintf("app%d/web", i),
			Hosts:    []string{fmt.Sprintf("web.app%d.localhost", i), fmt.Sprintf("www.app%d.example.com", i)},
			Backends: []Backend{{ID: fmt.Sprintf("i%d", i), Addr: "127.0.0.1:1"}},
		}
		if i == 500 {
			r.PathRoutes = []PathRoute{{Prefix: "/api", Key: "app1/web"}, {Prefix: "/api/v2", Key: "app2/web"}, {Prefix: "/static", Key: "app3/web"}}
		}
		specs[r.Key] = normalizeRoute(r)
	}
	e.mu.Lock()
	e.installLocked(specs)
	e.mu.Unlock()

	for _, bc := range []struct{ name, host, path string }{
		{"exact", "web.app500.localhost", "/"},
		{"port and case", "WWW.App500.Example.com:8443", "/"},
		{"path route", "web.app500.localhost", "/api/v2/users"},
		{"unknown", "nope.localhost", "/"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_ = e.snap.Load().lookup(normalizeHost(bc.host), bc.path)
			}
		})
	}
}

func BenchmarkPick(b *testing.B) {
	for _, n := range []int{1, 3, 16} {
		b.Run(fmt.Sprintf("backends=%d", n), func(b *testing.B) {
			rt := &routeEntry{}
			for i := range n {
				st := new(backendState)
				st.inflight.Store(int64(i % 3))
				rt.backends = append(rt.backends, target{id: fmt.Sprint(i), st: st})
			}
			var tried triedSet
			b.ReportAllocs()
			for b.Loop() {
				t := rt.pick(&tried)
				t.st.inflight.Add(1)
				t.st.inflight.Add(-1)
			}
		})
	}
	b.Run("acquire/backends=3/parallel", func(b *testing.B) {
		e := New(Options{})
		e.Update(Route{Key: "shop/web", Hosts: []string{"web.shop.localhost"}, Backends: []Backend{{ID: "a", Addr: "x"}, {ID: "b", Addr: "y"}, {ID: "c", Addr: "z"}}})
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				var tried triedSet
				_, t, _ := e.acquire("web.shop.localhost", "/", &tried)
				t.st.inflight.Add(-1)
			}
		})
	})
}

// BenchmarkProxy measures a whole request over loopback: client -> edge ->
// instance and back, with keep-alive on both legs. "direct" is the same
// request without the edge, for the edge's share of the time.
func BenchmarkProxy(b *testing.B) {
	payload := []byte("hello from the instance\n")
	backend := newTestBackend(b, "app", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write(payload)
	}))
	_, edgeSrv := newTestEdge(b, Options{}, Route{Key: "shop/web", Hosts: []string{"web.shop.localhost"}, Backends: backendsOf(backend)})
	c := testClient(b)

	run := func(b *testing.B, base string) {
		req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, base+"/", nil)
		if err != nil {
			b.Fatal(err)
		}
		req.Host = "web.shop.localhost"
		get := func() error {
			res, err := c.Do(req)
			if err != nil {
				return err
			}
			_, _ = io.Copy(io.Discard, res.Body)
			_ = res.Body.Close()
			if res.StatusCode != http.StatusOK {
				return fmt.Errorf("status %d", res.StatusCode)
			}
			return nil
		}
		b.Run("serial", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := get(); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("parallel", func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := get(); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
	b.Run("direct", func(b *testing.B) { run(b, "http://"+backend.Addr) })
	b.Run("edge", func(b *testing.B) { run(b, edgeSrv.URL) })
}

// BenchmarkProxyBody measures a POST with a small body, which the fast path
// hands to net/http: the cost of the net/http path and of the framing
// checks in front of it (package h1).
func BenchmarkProxyBody(b *testing.B) {
	backend := newTestBackend(b, "app", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		_, _ = w.Write(b)
	}))
	_, edgeSrv := newTestEdge(b, Options{}, Route{Key: "shop/web", Hosts: []string{"web.shop.localhost"}, Backends: backendsOf(backend)})
	c := testClient(b)
	body := strings.Repeat("x", 1024)
	post := func() error {
		req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, edgeSrv.URL+"/", strings.NewReader(body))
		if err != nil {
			return err
		}
		req.Host = "web.shop.localhost"
		res, err := c.Do(req)
		if err != nil {
			return err
		}
		n, _ := io.Copy(io.Discard, res.Body)
		_ = res.Body.Close()
		if res.StatusCode != http.StatusOK || n != int64(len(body)) {
			return fmt.Errorf("status %d, %d bytes", res.StatusCode, n)
		}
		return nil
	}
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := post(); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := post(); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}

// BenchmarkProxyPaths measures a whole GET over loopback on the paths
// other than plain HTTP: HTTPS (the fast loop over TLS), HTTP/2 (the
// direct path) and a cache hit (answered on the fast loop), for CPU
// profiles of each (go test -bench ProxyPaths -cpuprofile).
func BenchmarkProxyPaths(b *testing.B) {
	payload := []byte(strings.Repeat("x", 1024))
	backend := newTestBackend(b, "app", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=3600")
		_, _ = w.Write(payload)
	}))
	e, plain := newTestEdge(b, Options{}, Route{Key: "shop/web", Hosts: []string{"web.shop.localhost"}, Backends: backendsOf(backend)})
	c, err := cache.New(cache.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = c.Close() })
	if err := e.SetEntrypoint(Entrypoint{Name: "www", Hosts: []string{"www.example.com"}, Origin: serviceOrigin("shop/web"), Cache: c}); err != nil {
		b.Fatal(err)
	}
	tlsSrv := startTLSServer(b, &Server{Edge: e, HTTP: &http.Server{Handler: e, ReadHeaderTimeout: 10 * time.Second}})
	for _, p := range []struct {
		name, base, host string
		client           *http.Client
	}{
		{"https", tlsSrv.URL, "web.shop.localhost", h1Client(b)},
		{"h2", tlsSrv.URL, "web.shop.localhost", h2Client(b)},
		{"cache-hit", plain.URL, "www.example.com", testClient(b)},
	} {
		b.Run(p.name, func(b *testing.B) {
			req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, p.base+"/", nil)
			if err != nil {
				b.Fatal(err)
			}
			req.Host = p.host
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					res, err := p.client.Do(req)
					if err != nil {
						b.Error(err)
						return
					}
					_, _ = io.Copy(io.Discard, res.Body)
					_ = res.Body.Close()
					if res.StatusCode != http.StatusOK {
						b.Errorf("status %d", res.StatusCode)
						return
					}
				}
			})
		})
	}
}
