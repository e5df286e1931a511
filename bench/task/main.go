// Command task measures berth's one-off tasks on the local Docker Engine
// with the example app: start latency (the request sent → the task's first
// output line at the client) and the whole run of a task that exits at once
// (the request sent → its exit code at the client), the way `berth task run
// -- /hello migrate` sees them. The same runs straight on the engine (create,
// attach, start, wait, remove on the app's network, no berth) give the floor
// berth stands on. It prints a markdown table of medians.
//
//	go run ./bench/task -n 20
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/client"

	"github.com/berth-dev/berth/bench/internal/benchkit"
	"github.com/berth-dev/berth/internal/api"
	"github.com/berth-dev/berth/internal/controlplane"
)

func main() {
	n := flag.Int("n", 20, "task runs to measure")
	flag.Parse()
	if err := run(*n); err != nil {
		fmt.Fprintln(os.Stderr, "bench/task:", err)
		os.Exit(1)
	}
}

func run(n int) error {
	root, err := benchkit.RepoRoot()
	if err != nil {
		return err
	}
	// The example image, built once: tasks then run from its revision.
	if err := benchkit.BuildExample(root, "berth-bench/hello:1"); err != nil {
		return err
	}
	d, err := benchkit.StartDaemon(controlplane.Config{})
	if err != nil {
		return err
	}
	defer d.Stop()
	c := d.Client
	app := fmt.Sprintf("bench%d", os.Getpid())
	defer c.Destroy(context.Background(), app, nil)
	spec := fmt.Sprintf("app: %s\nservices:\n  web:\n    image: berth-bench/hello:1\n    port: 8080\n    health: {path: /healthz}\n", app)
	if _, err := c.Deploy(context.Background(), api.DeployRequest{File: "berth.yaml", BaseDir: root, YAML: spec}, nil); err != nil {
		return err
	}

	cli, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		return err
	}
	defer cli.Close()
	req := api.TaskRunRequest{Command: []string{"/hello", "migrate"}}
	var firstByte, whole, engFirst, engWhole []time.Duration
	for i := 0; i <= n; i++ {
		// The engine alone, then berth, alternately: both see the same load.
		ef, ew, err := engineRun(cli, "berth-"+app, req.Command)
		if err != nil {
			return err
		}
		if i > 0 {
			engFirst, engWhole = append(engFirst, ef), append(engWhole, ew)
		}
		start := time.Now()
		var first time.Duration
		res, err := c.RunTask(context.Background(), app, req, func(m api.Message) {
			if m.Kind == api.KindLog && first == 0 {
				first = time.Since(start)
			}
		})
		total := time.Since(start)
		if err != nil {
			return err
		}
		if res.Task == nil || res.Task.ExitCode != 0 || first == 0 {
			return fmt.Errorf("run %d: the task did not print and exit 0: %+v", i, res.Task)
		}
		if i == 0 {
			continue // warm-up: the first create inspects the image cold
		}
		firstByte = append(firstByte, first)
		whole = append(whole, total)
	}

	fmt.Printf("| metric (example app, `/hello migrate`, %d runs) | median | p90 | engine alone (median) | target |\n|---|---|---|---|---|\n", n)
	fmt.Printf("| task start: request → first output line at the client | %s | %s | %s | < 500ms |\n", benchkit.Median(firstByte), benchkit.Pct(firstByte, 0.9), benchkit.Median(engFirst))
	fmt.Printf("| whole run of a task that exits at once: request → exit code | %s | %s | %s | < 500ms |\n", benchkit.Median(whole), benchkit.Pct(whole, 0.9), benchkit.Median(engWhole))
	return nil
}

// engineRun runs cmd in a container straight on the Docker Engine's API,
// as a task runs (attached before the start, on the app's network, removed
// after), and returns when its first output byte came and when its exit
// code did.
func engineRun(cli *client.Client, network string, cmd []string) (first, whole time.Duration, err error) {
	ctx := context.Background()
	start := time.Now()
	init := true
	c, err := cli.ContainerCreate(ctx,
		&container.Config{Image: "berth-bench/hello:1", Cmd: cmd, Labels: map[string]string{"berth.bench": "1"}},
		&container.HostConfig{NetworkMode: container.NetworkMode(network), Init: &init},
		nil, nil, fmt.Sprintf("berth-bench-engine-%d", time.Now().UnixNano()))
	if err != nil {
		return 0, 0, err
	}
	defer cli.ContainerRemove(ctx, c.ID, container.RemoveOptions{Force: true})
	s, err := cli.ContainerAttach(ctx, c.ID, container.AttachOptions{Stream: true, Stdout: true, Stderr: true})
	if err != nil {
		return 0, 0, err
	}
	defer s.Close()
	firstc := make(chan time.Duration, 1)
	go func() {
		defer close(firstc)
		b := make([]byte, 1)
		if _, err := s.Reader.Read(b); err == nil {
			firstc <- time.Since(start)
		}
		_, _ = io.Copy(io.Discard, s.Reader)
	}()
	if err := cli.ContainerStart(ctx, c.ID, container.StartOptions{}); err != nil {
		return 0, 0, err
	}
	results, errs := cli.ContainerWait(ctx, c.ID, container.WaitConditionNotRunning)
	select {
	case <-results:
	case err := <-errs:
		return 0, 0, err
	}
	whole = time.Since(start)
	return <-firstc, whole, nil
}
