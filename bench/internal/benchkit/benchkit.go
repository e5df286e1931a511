// Package benchkit holds what the benchmark programs under bench/ share:
// finding the repository, building the example image, running an
// in-process daemon, and percentiles. It is for benchmarks only.
package benchkit

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/berth-dev/berth/internal/client"
	"github.com/berth-dev/berth/internal/controlplane"
	"github.com/berth-dev/berth/internal/runtime/docker"
)

// RepoRoot is the module's directory.
func RepoRoot() (string, error) {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}").Output()
	if err != nil {
		return "", fmt.Errorf("find the module root: %w", err)
	}
	return strings.TrimSpace(string(out)), nil
}

// BuildExample builds examples/hello's static binary and its image as tag
// (classic builder: nothing is pulled).
func BuildExample(root, tag string) error {
	build := exec.Command("go", "build", "-o", filepath.Join(root, "examples/hello/hello"), "./examples/hello")
	build.Dir, build.Env = root, append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("build example: %v: %s", err, out)
	}
	img := exec.Command("docker", "build", "-q", "-t", tag, filepath.Join(root, "examples/hello"))
	img.Env = append(os.Environ(), "DOCKER_BUILDKIT=0")
	if out, err := img.CombinedOutput(); err != nil {
		return fmt.Errorf("build image: %v: %s", err, out)
	}
	return nil
}

// Daemon is an in-process berth server on a temporary data directory, with
// its edge on a free loopback port.
type Daemon struct {
	Addrs  controlplane.Addrs
	Client *client.Client
	stop   func()
}

// StartDaemon starts a daemon; cfg's DataDir, HTTPAddr, Logger and Ready
// are filled in. Stop it with Stop.
func StartDaemon(cfg controlplane.Config) (*Daemon, error) {
	dir, err := os.MkdirTemp("", "berth-bench-")
	if err != nil {
		return nil, err
	}
	ready := make(chan controlplane.Addrs, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	cfg.DataDir, cfg.HTTPAddr = dir, "127.0.0.1:0"
	cfg.Logger = slog.New(slog.DiscardHandler)
	cfg.Ready = func(a controlplane.Addrs) { ready <- a }
	closeEngine := func() {}
	if cfg.Engine == nil {
		eng, err := DockerEngine()
		if err != nil {
			cancel()
			os.RemoveAll(dir)
			return nil, err
		}
		cfg.Engine, closeEngine = eng, func() { eng.Close() }
	}
	go func() { done <- controlplane.Run(ctx, cfg) }()
	d := &Daemon{stop: func() { cancel(); <-done; closeEngine(); os.RemoveAll(dir) }}
	select {
	case d.Addrs = <-ready:
	case err := <-done:
		cancel()
		closeEngine()
		os.RemoveAll(dir)
		return nil, err
	}
	if d.Client, err = client.New(d.Addrs.API, "", ""); err != nil {
		d.Stop()
		return nil, err
	}
	return d, nil
}

// Stop stops the daemon (its containers keep running: destroy apps first)
// and removes its data directory.
func (d *Daemon) Stop() { d.stop() }

// Median is the 50th percentile.
func Median(ds []time.Duration) time.Duration { return Pct(ds, 0.5) }

// Pct is the p-th percentile (nearest rank), rounded to the millisecond.
func Pct(ds []time.Duration, p float64) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	return s[int(float64(len(s)-1)*p+0.5)].Round(time.Millisecond)
}

// DockerEngine is the local Docker Engine as berth server runs it (the
// control plane is given its engine). Close it after the daemon stopped.
func DockerEngine() (*docker.Engine, error) {
	de, err := docker.New(nil)
	if err != nil {
		return nil, fmt.Errorf("connect to the Docker Engine: %w", err)
	}
	return de, nil
}
