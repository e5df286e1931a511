// Command autoscale measures berth's concurrency autoscaler on the local
// Docker Engine, with traffic on loopback only:
//
//   - cold start from zero: the example app scaled to zero, one request sent
//     → its response received (the edge holds it while an instance comes
//     back), for a parked instance that is frozen (the first 15 minutes after
//     scale-in) and one that is stopped (after that);
//   - reaction to a load step: a service at 1 instance and no load gets 8
//     requests always in flight (4× its target of 2 per instance); time to
//     the scale-up decision and to all new instances serving, when they are
//     new containers and when they are parked instances of an earlier
//     scale-in.
//
// It prints a markdown table of medians.
//
//	go run ./bench/autoscale -n 5
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/berth-dev/berth/bench/internal/benchkit"
	"github.com/berth-dev/berth/internal/api"
	"github.com/berth-dev/berth/internal/client"
	"github.com/berth-dev/berth/internal/controlplane"
)

func main() {
	n := flag.Int("n", 5, "cold starts per mode")
	steps := flag.Int("steps", 2, "load steps (each twice: new containers, then parked ones)")
	flag.Parse()
	if err := run(*n, *steps); err != nil {
		fmt.Fprintln(os.Stderr, "bench/autoscale:", err)
		os.Exit(1)
	}
}

const (
	helloImage   = "berth-bench/hello:1"
	testappImage = "berth-bench/testapp:1"
)

func run(n, steps int) error {
	root, err := benchkit.RepoRoot()
	if err != nil {
		return err
	}
	if err := buildImages(root); err != nil {
		return err
	}
	var failed, sent atomic.Int64

	// Cold starts. A short stable window makes the service idle in seconds;
	// it does not change what a wake costs.
	cold := map[string][]time.Duration{}
	for _, mode := range []struct {
		name      string
		coldAfter time.Duration
	}{{"frozen", 0}, {"stopped", -1}} {
		err := withDaemon(controlplane.AutoscaleConfig{Tick: 100 * time.Millisecond, StableWindow: 2 * time.Second, PanicWindow: time.Second, ColdAfter: mode.coldAfter}, func(b *bench) error {
			app := fmt.Sprintf("benchzero%d", os.Getpid())
			defer b.c.Destroy(context.Background(), app, nil)
			yaml := fmt.Sprintf("app: %s\nservices:\n  web:\n    image: %s\n    port: 8080\n    health: {path: /healthz}\n    scale: {min: 0, max: 2, concurrency: 10}\n", app, helloImage)
			if _, err := b.c.Deploy(context.Background(), api.DeployRequest{File: "berth.yaml", BaseDir: root, YAML: yaml}, nil); err != nil {
				return err
			}
			for range n {
				if err := b.waitFor(app, 60*time.Second, "scaled to zero", func(st api.ServiceStatus) bool {
					return st.State == "idle" && st.Autoscale != nil && st.Autoscale.Parked == 1
				}); err != nil {
					return err
				}
				start := time.Now()
				code, err := b.get("web."+app+".localhost", "/")
				took := time.Since(start)
				sent.Add(1)
				if err != nil || code != http.StatusOK {
					failed.Add(1)
					return fmt.Errorf("cold start (%s): code %d, %v", mode.name, code, err)
				}
				cold[mode.name] = append(cold[mode.name], took)
			}
			return nil
		})
		if err != nil {
			return err
		}
	}

	// Load steps, with the default tick and panic window, and a stable
	// window as short (default 60s) so the service scales back in within
	// seconds: each on a fresh service (new containers start), then again
	// once it scaled back in (its parked, frozen instances thaw). With 60s
	// the stable average moves too slowly to matter: the panic window
	// decides, once its average reaches 2× the target (4 here).
	var decide, firstNew, firstParked, serveNew, serveParked []time.Duration
	err = withDaemon(controlplane.AutoscaleConfig{StableWindow: 6 * time.Second}, func(b *bench) error {
		for i := range steps {
			app := fmt.Sprintf("benchstep%d-%d", os.Getpid(), i)
			yaml := fmt.Sprintf("app: %s\nservices:\n  web:\n    image: %s\n    port: 8080\n    health: {path: /healthz}\n    scale: {min: 1, max: 4, concurrency: 2}\n", app, testappImage)
			if _, err := b.c.Deploy(context.Background(), api.DeployRequest{File: "berth.yaml", BaseDir: root, YAML: yaml}, nil); err != nil {
				return err
			}
			// A whole stable window of calm first, as before the second step.
			time.Sleep(6500 * time.Millisecond)
			for _, m := range []struct{ first, serve *[]time.Duration }{{&firstNew, &serveNew}, {&firstParked, &serveParked}} {
				serve := m.serve
				if err := b.waitFor(app, 90*time.Second, "calm at 1 instance", func(st api.ServiceStatus) bool {
					a := st.Autoscale
					return st.Running == 1 && st.Desired == 1 && len(st.Instances) == 1 && a != nil && a.PanicAverage == 0 && a.StableAverage == 0 &&
						(serve == &serveNew || a.Parked == 3)
				}); err != nil {
					return err
				}
				start := time.Now()
				l := startLoad(b.http, "web."+app+".localhost", "/sleep?d=250ms", 8)
				if err := b.waitFor(app, 60*time.Second, "a scale-up decision", func(st api.ServiceStatus) bool { return st.Desired > 1 }); err != nil {
					return err
				}
				decide = append(decide, time.Since(start))
				if err := b.waitFor(app, 60*time.Second, "a second instance serving", func(st api.ServiceStatus) bool { return st.Running >= 2 }); err != nil {
					return err
				}
				*m.first = append(*m.first, time.Since(start))
				if err := b.waitFor(app, 60*time.Second, "4 instances serving", func(st api.ServiceStatus) bool { return st.Running == 4 }); err != nil {
					return err
				}
				*serve = append(*serve, time.Since(start))
				ok, bad := l.stop()
				sent.Add(ok + bad)
				failed.Add(bad)
			}
			if _, err := b.c.Destroy(context.Background(), app, nil); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}

	ratio := func(d, target time.Duration) string { return fmt.Sprintf("%.2f×", float64(d)/float64(target)) }
	fmt.Printf("| metric (loopback) | median | p90 | vs target |\n|---|---|---|---|\n")
	fmt.Printf("| cold start from zero, frozen instance (first 15m after scale-in): request → response, example app, %d runs | %s | %s | %s of 1s |\n",
		n, benchkit.Median(cold["frozen"]), benchkit.Pct(cold["frozen"], 0.9), ratio(benchkit.Median(cold["frozen"]), time.Second))
	fmt.Printf("| cold start from zero, stopped instance (after 15m idle): request → response, example app, %d runs | %s | %s | %s of 1s |\n",
		n, benchkit.Median(cold["stopped"]), benchkit.Pct(cold["stopped"], 0.9), ratio(benchkit.Median(cold["stopped"]), time.Second))
	fmt.Printf("| autoscaler: load step (0 → 8 in flight, target 2 per instance) → scale-up decision (windows: panic 6s, stable 6s), %d runs | %s | %s | |\n",
		len(decide), benchkit.Median(decide), benchkit.Pct(decide, 0.9))
	fmt.Printf("| autoscaler: load step → first added instance serving (new container), %d runs | %s | %s | |\n", steps, benchkit.Median(firstNew), benchkit.Pct(firstNew, 0.9))
	fmt.Printf("| autoscaler: load step → first added instance serving (parked instance thawed), %d runs | %s | %s | |\n", steps, benchkit.Median(firstParked), benchkit.Pct(firstParked, 0.9))
	fmt.Printf("| autoscaler: load step → 4 instances serving (1 → 4, new containers), %d runs | %s | %s | |\n", steps, benchkit.Median(serveNew), benchkit.Pct(serveNew, 0.9))
	fmt.Printf("| autoscaler: load step → 4 instances serving (1 → 4, parked instances thawed), %d runs | %s | %s | |\n", steps, benchkit.Median(serveParked), benchkit.Pct(serveParked, 0.9))
	fmt.Printf("| failed requests during cold starts and load steps | %d of %d | | 0 |\n", failed.Load(), sent.Load())
	return nil
}

// bench is one running daemon.
type bench struct {
	c    *client.Client
	http string
}

func withDaemon(as controlplane.AutoscaleConfig, fn func(*bench) error) error {
	dir, err := os.MkdirTemp("", "berth-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	ready := make(chan controlplane.Addrs, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	logger := slog.New(slog.DiscardHandler)
	if os.Getenv("BENCH_LOG") != "" {
		logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	eng, err := benchkit.DockerEngine()
	if err != nil {
		cancel()
		return err
	}
	defer eng.Close()
	go func() {
		done <- controlplane.Run(ctx, controlplane.Config{
			DataDir: dir, HTTPAddr: "127.0.0.1:0", HTTPSAddr: "", Logger: logger, Engine: eng,
			Autoscale: as, Ready: func(a controlplane.Addrs) { ready <- a },
		})
	}()
	var addrs controlplane.Addrs
	select {
	case addrs = <-ready:
	case err := <-done:
		cancel()
		return err
	}
	defer func() { cancel(); <-done }() // stop the daemon before the temp dir goes
	c, err := client.New(addrs.API, "", "")
	if err != nil {
		return err
	}
	return fn(&bench{c: c, http: addrs.HTTP})
}

var hc = &http.Client{Timeout: 70 * time.Second, Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 64}}

func (b *bench) get(host, path string) (int, error) {
	req, err := http.NewRequest(http.MethodGet, "http://"+b.http+path, nil)
	if err != nil {
		return 0, err
	}
	req.Host = host
	resp, err := hc.Do(req)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}

// waitFor polls the app's first service until cond holds.
func (b *bench) waitFor(app string, timeout time.Duration, what string, cond func(api.ServiceStatus) bool) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		st, err := b.c.Status(context.Background(), app)
		if err == nil && len(st.Apps) == 1 && len(st.Apps[0].Services) > 0 && cond(st.Apps[0].Services[0]) {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("timed out after %s waiting for %s", timeout, what)
}

type load struct {
	ok, failed atomic.Int64
	quit       chan struct{}
	wg         sync.WaitGroup
}

// startLoad keeps n requests in flight until stopped.
func startLoad(addr, host, path string, n int) *load {
	l := &load{quit: make(chan struct{})}
	for range n {
		l.wg.Go(func() {
			for {
				select {
				case <-l.quit:
					return
				default:
				}
				req, _ := http.NewRequest(http.MethodGet, "http://"+addr+path, nil)
				req.Host = host
				resp, err := hc.Do(req)
				if err == nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				if err != nil || resp.StatusCode != http.StatusOK {
					l.failed.Add(1)
				} else {
					l.ok.Add(1)
				}
			}
		})
	}
	return l
}

func (l *load) stop() (ok, failed int64) {
	close(l.quit)
	l.wg.Wait()
	return l.ok.Load(), l.failed.Load()
}

// buildImages builds the example app's image and the test app's (which has
// a /sleep endpoint to hold requests open), locally: nothing is pulled.
func buildImages(root string) error {
	dir, err := os.MkdirTemp("", "berth-bench-img-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	for _, b := range []struct {
		pkg, bin, ctx, tag string
		dockerfile         string
	}{
		{"./examples/hello", filepath.Join(root, "examples/hello/hello"), filepath.Join(root, "examples/hello"), helloImage, ""},
		{"./internal/testutil/testapp", filepath.Join(dir, "testapp"), dir, testappImage,
			"FROM scratch\nCOPY testapp /testapp\nENV PORT=8080\nEXPOSE 8080\nCMD [\"/testapp\"]\n"},
	} {
		build := exec.Command("go", "build", "-o", b.bin, b.pkg)
		build.Dir, build.Env = root, append(os.Environ(), "CGO_ENABLED=0")
		if out, err := build.CombinedOutput(); err != nil {
			return fmt.Errorf("build %s: %v: %s", b.pkg, err, out)
		}
		if b.dockerfile != "" {
			if err := os.WriteFile(filepath.Join(b.ctx, "Dockerfile"), []byte(b.dockerfile), 0o644); err != nil {
				return err
			}
		}
		img := exec.Command("docker", "build", "-q", "-t", b.tag, b.ctx)
		img.Env = append(os.Environ(), "DOCKER_BUILDKIT=0")
		if out, err := img.CombinedOutput(); err != nil {
			return fmt.Errorf("build image %s: %v: %s", b.tag, err, out)
		}
	}
	return nil
}
