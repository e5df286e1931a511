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
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/berth-dev/berth/internal/api"
	"github.com/berth-dev/berth/internal/client"
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
	root, err := repoRoot()
	if err != nil {
		return err
	}
	// The example image, built once: deploys then measure image present → switch.
	build := exec.Command("go", "build", "-o", filepath.Join(root, "examples/hello/hello"), "./examples/hello")
	build.Dir, build.Env = root, append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("build example: %v: %s", err, out)
	}
	img := exec.Command("docker", "build", "-q", "-t", "berth-bench/hello:1", filepath.Join(root, "examples/hello"))
	img.Env = append(os.Environ(), "DOCKER_BUILDKIT=0")
	if out, err := img.CombinedOutput(); err != nil {
		return fmt.Errorf("build image: %v: %s", err, out)
	}

	dir, err := os.MkdirTemp("", "berth-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	ready := make(chan controlplane.Addrs, 1)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- controlplane.Run(ctx, controlplane.Config{DataDir: dir, HTTPAddr: "127.0.0.1:0", Logger: slog.New(slog.DiscardHandler), Ready: func(a controlplane.Addrs) { ready <- a }})
	}()
	var addrs controlplane.Addrs
	select {
	case addrs = <-ready:
	case err := <-done:
		return err
	}
	defer func() { cancel(); <-done }() // stop the daemon before the temp dir goes
	c, err := client.New(addrs.API, "", "")
	if err != nil {
		return err
	}
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
		return err
	}

	l := startLoad(addrs.HTTP, "web."+app+".localhost", workers, rate)
	var deploys, rollbacks, rollbackTotals []time.Duration
	for i := 1; i <= n; i++ {
		d, err := deploy(i)
		if err != nil {
			return err
		}
		deploys = append(deploys, d)
		start := time.Now()
		var switched time.Duration
		if _, err := c.Rollback(context.Background(), app, "web", api.RollbackRequest{}, func(m api.Message) {
			if m.Kind == api.KindPhase && m.Phase == "switch" && switched == 0 {
				switched = time.Since(start)
			}
		}); err != nil {
			return err
		}
		rollbacks = append(rollbacks, switched)
		rollbackTotals = append(rollbackTotals, time.Since(start))
		// Back to the newest revision so the next deploy starts fresh.
		if _, err := deploy(i); err != nil {
			return err
		}
	}
	ok, failed := l.stop()

	fmt.Printf("| metric (example app, 2 instances, %d runs) | median | p90 | target |\n|---|---|---|---|\n", n)
	fmt.Printf("| deploy: request → all traffic on new revision | %s | %s | < 3s |\n", median(deploys), pct(deploys, 0.9))
	fmt.Printf("| rollback: request → all traffic on previous revision | %s | %s | < 1s |\n", median(rollbacks), pct(rollbacks, 0.9))
	fmt.Printf("| rollback: request → done (old instances drained and parked) | %s | %s | |\n", median(rollbackTotals), pct(rollbackTotals, 0.9))
	fmt.Printf("| failed requests under load (%d workers × %d rps) | %d of %d | | 0 |\n", workers, rate, failed, ok+failed)
	return nil
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

func median(ds []time.Duration) time.Duration { return pct(ds, 0.5) }

func pct(ds []time.Duration, p float64) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	return s[int(float64(len(s)-1)*p+0.5)].Round(time.Millisecond)
}

func repoRoot() (string, error) {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}").Output()
	if err != nil {
		return "", fmt.Errorf("find the module root: %w", err)
	}
	return string(out[:len(out)-1]), nil
}
