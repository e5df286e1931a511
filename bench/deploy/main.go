// Command deploy measures berth's deploy lifecycle on the local Docker
// Engine with the example app: deploy time (image present → all traffic on
// the new revision), rollback time, and failed requests under a steady,
// bounded load on loopback. It prints a markdown table of medians.
//
//	go run ./bench/deploy -n 10
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/berth-dev/berth/bench/internal/benchkit"
	"github.com/berth-dev/berth/internal/api"
	"github.com/berth-dev/berth/internal/controlplane"
)

func main() {
	n := flag.Int("n", 10, "deploys and rollbacks to measure")
	workers := flag.Int("workers", 8, "load goroutines")
	rate := flag.Int("rate", 100, "requests per second per worker")
	flag.Parse()
	if err := run(*n, *workers, *rate); err != nil {
		fmt.Fprintln(os.Stderr, "bench/deploy:", err)
		os.Exit(1)
	}
}

func run(n, workers, rate int) error {
	root, err := benchkit.RepoRoot()
	if err != nil {
		return err
	}
	// The example image, built once: deploys then measure image present → switch.
	if err := benchkit.BuildExample(root, "berth-bench/hello:1"); err != nil {
		return err
	}
	// The default daemon keeps the previous revision of a lone service
	// frozen for 10 minutes after a deploy; a second one with no warm
	// window measures a rollback after it: stopped containers started.
	warm, err := measure(root, n, workers, rate, 0)
	if err != nil {
		return err
	}
	cold, err := measure(root, n, workers, rate, -1)
	if err != nil {
		return err
	}
	deploys := append(warm.deploys, cold.deploys...)
	ok, failed := warm.ok+cold.ok, warm.failed+cold.failed
	fmt.Printf("| metric (example app, 2 instances, %d runs) | median | p90 | target |\n|---|---|---|---|\n", 2*n)
	fmt.Printf("| deploy: request → all traffic on new revision | %s | %s | < 3s |\n", benchkit.Median(deploys), benchkit.Pct(deploys, 0.9))
	fmt.Printf("| rollback: request → all traffic on previous revision (frozen, in the first 10 min) | %s | %s | < 1s |\n", benchkit.Median(warm.rollbacks), benchkit.Pct(warm.rollbacks, 0.9))
	fmt.Printf("| rollback: request → all traffic on previous revision (stopped, after 10 min) | %s | %s | < 1s |\n", benchkit.Median(cold.rollbacks), benchkit.Pct(cold.rollbacks, 0.9))
	fmt.Printf("| rollback: request → done (old instances drained and parked) | %s | %s | |\n", benchkit.Median(warm.rollbackTotals), benchkit.Pct(warm.rollbackTotals, 0.9))
	fmt.Printf("| failed requests under load (%d workers × %d rps) | %d of %d | | 0 |\n", workers, rate, failed, ok+failed)
	return nil
}

// runs are one daemon's measured deploys and rollbacks.
type runs struct {
	deploys, rollbacks, rollbackTotals []time.Duration
	ok, failed                         int64
}

// measure deploys and rolls back n times on a daemon with the given warm
// window (0: the default), under load.
func measure(root string, n, workers, rate int, warm time.Duration) (runs, error) {
	var r runs
	d, err := benchkit.StartDaemon(controlplane.Config{RollbackWarm: warm})
	if err != nil {
		return r, err
	}
	defer d.Stop()
	c, addrs := d.Client, d.Addrs
	app := fmt.Sprintf("bench%d", os.Getpid())
	defer c.Destroy(context.Background(), app, nil)
	spec := func(v int) string {
		return fmt.Sprintf("app: %s\nservices:\n  web:\n    image: berth-bench/hello:1\n    port: 8080\n    instances: 2\n    health: {path: /healthz}\n    env: {VERSION: v%d}\n", app, v)
	}
	deploy := func(v int) (time.Duration, error) {
		start := time.Now()
		var switched time.Duration
		_, err := c.Deploy(context.Background(), api.DeployRequest{File: "berth.yaml", BaseDir: root, YAML: spec(v)}, func(m api.Message) {
			if m.Kind == api.KindPhase && m.Phase == "switch" && switched == 0 {
				switched = time.Since(start)
			}
		})
		return switched, err
	}
	if _, err := deploy(0); err != nil {
		return r, err
	}

	l := startLoad(addrs.HTTP, "web."+app+".localhost", workers, rate)
	for i := 1; i <= n; i++ {
		d, err := deploy(i)
		if err != nil {
			return r, err
		}
		r.deploys = append(r.deploys, d)
		start := time.Now()
		var switched time.Duration
		if _, err := c.Rollback(context.Background(), app, "web", api.RollbackRequest{}, func(m api.Message) {
			if m.Kind == api.KindPhase && m.Phase == "switch" && switched == 0 {
				switched = time.Since(start)
			}
		}); err != nil {
			return r, err
		}
		r.rollbacks = append(r.rollbacks, switched)
		r.rollbackTotals = append(r.rollbackTotals, time.Since(start))
		// Back to the newest revision so the next deploy starts fresh.
		if _, err := deploy(i); err != nil {
			return r, err
		}
	}
	r.ok, r.failed = l.stop()
	return r, nil
}

type load struct {
	ok, failed atomic.Int64
	quit       chan struct{}
	wg         sync.WaitGroup
}

func startLoad(addr, host string, workers, rate int) *load {
	l := &load{quit: make(chan struct{})}
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: workers}}
	for range workers {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			t := time.NewTicker(time.Second / time.Duration(rate))
			defer t.Stop()
			for {
				select {
				case <-l.quit:
					return
				case <-t.C:
				}
				req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/", nil)
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
		}()
	}
	return l
}

func (l *load) stop() (ok, failed int64) {
	close(l.quit)
	l.wg.Wait()
	return l.ok.Load(), l.failed.Load()
}
