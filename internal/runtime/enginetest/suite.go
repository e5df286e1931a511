package enginetest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/runtime"
	"github.com/berth-dev/berth/internal/testutil"
)

// check is one rule of the contract, run as a subtest.
type check struct {
	name string
	run  func(c *env)
}

// checks is the whole suite, in the order a reader meets the contract.
func checks() []check {
	return []check{
		{"CreateStartStopRemove", checkLifecycle},
		{"ExitCode", checkExitCode},
		{"OOMKilled", checkOOMKilled},
		{"StartRunningRefused", checkStartRunning},
		{"MissingPod", checkMissing},
		{"StartAgainAfterStop", checkStartAgain},
		{"CreateFailureLeavesNothing", checkCreateFailure},
		{"StopGraceZeroKills", checkGraceZero},
		{"StopGraceThenKill", checkGraceThenKill},
		{"ListPodsByLabels", checkList},
		{"Events", checkEvents},
		{"Logs", checkLogs},
		{"LogsFollowEndsWithContainer", checkLogsFollowExit},
		{"LogsFollowEndsWithContext", checkLogsFollowCtx},
		{"LogsFollowEndsWithRemove", checkLogsFollowRemove},
		{"LogsOfSidecar", checkLogsSidecar},
		{"InitContainers", checkInit},
		{"InitFailure", checkInitFailure},
		{"StartAndStopOrder", checkOrder},
		{"HealthyOrder", checkHealthyOrder},
		{"HealthyError", checkHealthyError},
		{"HealthyCancelledOnFailure", checkHealthyCancelled},
		{"EssentialSidecarDies", checkEssentialDies},
		{"NonEssentialSidecarRestart", checkNonEssential},
		{"RestartMainRefused", checkRestartMain},
		{"Networks", checkNetworks},
		{"NetworkHeld", checkNetworkHeld},
		{"Aliases", checkAliases},
		{"SidecarsShareLocalhost", checkLocalhost},
		{"ImageID", checkImageID},
		{"Suspender", checkSuspend},
		{"PodExecer", checkExec},
		{"Deregisterer", checkDeregister},
		{"HostMemory", checkHostMemory},
		{"PodAttacher", checkAttach},
	}
}

// Run runs the whole suite on the engine h describes. Checks run
// concurrently (up to Harness.Parallel), each as a subtest of t with an
// engine of its own, whatever go test's -parallel says: an engine's
// operations wait on the engine, not on the test's CPU.
func Run(t *testing.T, h Harness) {
	t.Helper()
	h.validate(t)
	limit := h.Parallel
	if limit <= 0 {
		limit = 8
	}
	sem := make(chan struct{}, limit)
	var wg sync.WaitGroup
	for _, c := range checks() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			t.Run(c.name, func(t *testing.T) {
				c.run(newEnv(t, h))
			})
		}()
	}
	wg.Wait()
}

// env is what one check works with: its engine, and the berth.app label
// that marks (and lists) everything it makes.
type env struct {
	*testing.T
	h   Harness
	e   runtime.PodEngine
	app string
	net string // made on first use
}

func newEnv(t *testing.T, h Harness) *env {
	t.Helper()
	return &env{T: t, h: h, e: h.New(t), app: testutil.UniqueName(t, "ct")}
}

// peer returns another owner's engine on the same engine, skipping the
// check when the harness has none.
func (c *env) peer() runtime.PodEngine {
	c.Helper()
	if c.h.Peer == nil {
		c.Skip("the harness has no Peer: owner checks skipped")
	}
	return c.h.Peer(c.T, c.e)
}

// peerOrNil returns another owner's engine, or nil when the harness has
// none (the check runs without its owner part).
func (c *env) peerOrNil() runtime.PodEngine {
	c.Helper()
	if c.h.Peer == nil {
		c.Log("the harness has no Peer: the owner part of this check is skipped")
		return nil
	}
	return c.h.Peer(c.T, c.e)
}

// ctx returns a context that ends after d, or when the check ends.
func (c *env) ctx(d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	c.Cleanup(cancel)
	return ctx
}

// opCtx bounds one engine call that is not a start.
func (c *env) opCtx() context.Context { return c.ctx(c.h.startWithin()) }

// argv is the test app's argv with args.
func (c *env) argv(args ...string) []string {
	return append(slices.Clone(c.h.AppArgv), args...)
}

// appPort is the port the test app serves on in the suite's pods.
const appPort = 8080

// task is a pod as berth makes one for a task: the app running args, on no
// network, with no port.
func (c *env) task(args ...string) runtime.PodSpec {
	c.Helper()
	name := testutil.UniqueName(c.T, "task")
	return runtime.PodSpec{
		Name: name,
		Labels: map[string]string{
			runtime.LabelApp:  c.app,
			runtime.LabelRole: string(runtime.RoleTask),
			runtime.LabelTask: name,
		},
		Main: runtime.ContainerSpec{
			Name:    "job",
			Image:   c.h.App,
			Command: c.argv(args...),
			Env:     map[string]string{},
		},
	}
}

// instance is a pod as berth makes one for a service: the app serving on
// appPort, on a network of the check's own, answering to "web" there.
// env adds to the app's environment.
func (c *env) instance(env map[string]string) runtime.PodSpec {
	c.Helper()
	name := testutil.UniqueName(c.T, "web")
	e := map[string]string{"PORT": fmt.Sprint(appPort)}
	for k, v := range env {
		e[k] = v
	}
	return runtime.PodSpec{
		Name: name,
		Labels: map[string]string{
			runtime.LabelApp:      c.app,
			runtime.LabelService:  "web",
			runtime.LabelRole:     string(runtime.RoleInstance),
			runtime.LabelInstance: name,
		},
		Network: c.network(),
		Aliases: []string{"web"},
		Port:    appPort,
		Main: runtime.ContainerSpec{
			Name:    "web",
			Image:   c.h.App,
			Command: c.argv("serve"),
			Env:     e,
		},
	}
}

// sidecar is a sidecar running the app with args.
func (c *env) sidecar(name string, essential bool, args ...string) runtime.SidecarSpec {
	return runtime.SidecarSpec{
		ContainerSpec: runtime.ContainerSpec{
			Name:    name,
			Image:   c.h.App,
			Command: c.argv(args...),
			Env:     map[string]string{},
		},
		Essential: essential,
	}
}

// network returns the check's app network, made on first use and removed
// when the check ends (after its pods: cleanups run last first).
func (c *env) network() string {
	c.Helper()
	if c.net != "" {
		return c.net
	}
	name := c.app + "-net"
	if err := c.e.EnsureNetwork(c.opCtx(), name, map[string]string{runtime.LabelApp: c.app}); err != nil {
		c.Fatalf("EnsureNetwork(%s) = %v, want nil (a new network)", name, err)
	}
	c.net = name
	c.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := c.e.RemoveNetwork(ctx, name); err != nil {
			c.Errorf("cleanup: RemoveNetwork(%s) = %v, want nil", name, err)
		}
	})
	return name
}

// create creates spec's pod, removed when the check ends, and checks what
// CreatePod reports.
func (c *env) create(spec runtime.PodSpec) runtime.Pod {
	c.Helper()
	return c.createOn(c.e, spec)
}

// createOn creates spec's pod on e (the check's engine or its peer).
func (c *env) createOn(e runtime.PodEngine, spec runtime.PodSpec) runtime.Pod {
	c.Helper()
	p, err := e.CreatePod(c.opCtx(), spec)
	if err != nil {
		c.Fatalf("CreatePod(%s) = %v, want a created pod", spec.Name, err)
	}
	c.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := e.RemovePod(ctx, p.ID); err != nil {
			c.Errorf("cleanup: RemovePod(%s) = %v, want nil", spec.Name, err)
		}
	})
	if p.ID == "" {
		c.Fatalf("CreatePod(%s) returned a pod with no ID", spec.Name)
	}
	return p
}

// start starts a pod and fails the check if StartPod does.
func (c *env) start(id string, opts runtime.StartOptions) runtime.Pod {
	c.Helper()
	p, err := c.e.StartPod(c.ctx(c.h.startWithin()), id, opts)
	if err != nil {
		c.Fatalf("StartPod = %v, want the pod started", err)
	}
	return p
}

// run creates and starts spec's pod.
func (c *env) run(spec runtime.PodSpec) runtime.Pod {
	c.Helper()
	return c.start(c.create(spec).ID, runtime.StartOptions{})
}

// inspect returns the pod, failing the check on any error.
func (c *env) inspect(id string) runtime.Pod {
	c.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), c.h.startWithin())
	defer cancel()
	p, err := c.e.InspectPod(ctx, id)
	if err != nil {
		c.Fatalf("InspectPod(%s) = %v, want the pod", id, err)
	}
	return p
}

// eventually polls InspectPod until ok holds, within d; what says what
// the check waited for.
func (c *env) eventually(id string, d time.Duration, what string, ok func(runtime.Pod) bool) runtime.Pod {
	c.Helper()
	deadline := time.Now().Add(d)
	for {
		p := c.inspect(id)
		if ok(p) {
			return p
		}
		if time.Now().After(deadline) {
			c.Fatalf("after %s the pod is %s (%s), want: %s", d, p.State, describe(p), what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// exited waits for the pod to be exited.
func (c *env) exited(id string) runtime.Pod {
	c.Helper()
	return c.eventually(id, c.h.startWithin(), "exited", func(p runtime.Pod) bool { return p.State == runtime.PodExited })
}

// describe says what a pod's containers do, for failure messages.
func describe(p runtime.Pod) string {
	var b strings.Builder
	for i, s := range p.Containers {
		if i > 0 {
			b.WriteString(", ")
		}
		name := s.Name
		if s.Main {
			name += " (main)"
		}
		if s.Running {
			fmt.Fprintf(&b, "%s running", name)
		} else {
			fmt.Fprintf(&b, "%s not running, exit %d", name, s.ExitCode)
		}
	}
	if p.Broken != "" {
		fmt.Fprintf(&b, "; broken: %s", p.Broken)
	}
	return b.String()
}

// httpClient gets from a pod's Addr; no keep-alive, so each check of an
// address dials it afresh.
var httpClient = &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}

// get returns the status and body of GET http://addr/path.
func get(ctx context.Context, addr, path string) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+path, nil)
	if err != nil {
		return 0, "", err
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, string(body), err
}

// serves waits until GET addr/path answers 200 and returns the body.
func (c *env) serves(addr, path string) string {
	c.Helper()
	if addr == "" {
		c.Fatalf("the pod has no Addr, want one where it serves its Port")
	}
	deadline := time.Now().Add(c.h.startWithin())
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		code, body, err := get(ctx, addr, path)
		cancel()
		if err == nil && code == http.StatusOK {
			return body
		}
		if time.Now().After(deadline) {
			if err == nil {
				err = fmt.Errorf("status %d: %s", code, strings.TrimSpace(body))
			}
			c.Fatalf("GET http://%s%s: %v after %s, want 200 from the test app", addr, path, err, c.h.startWithin())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// notFound checks that err is ErrNotFound; op names the call.
func (c *env) notFound(op string, err error) {
	c.Helper()
	if !errors.Is(err, runtime.ErrNotFound) {
		c.Errorf("%s of a missing pod = %v, want an error wrapping runtime.ErrNotFound", op, err)
	}
}
