// Command upgrade measures what a restart of `berth server` costs the
// traffic it serves: failed requests and the time it takes, under a steady
// open-loop load through the edge on loopback, for an upgrade (the binary
// replaced, then SIGHUP to the supervisor: the daemon drains and the new
// binary takes over the listening sockets) and for a daemon killed with
// SIGKILL (the supervisor starts another at once). It runs the real binary
// as a process on its own data directory and prints a markdown table.
//
//	go run ./bench/upgrade -n 10 -rate 400
package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/berth-dev/berth/bench/internal/benchkit"
	"github.com/berth-dev/berth/internal/testutil"
)

func main() {
	n := flag.Int("n", 10, "upgrades (and kills) to measure")
	rate := flag.Int("rate", 400, "requests per second through the edge")
	flag.Parse()
	if err := run(*n, *rate); err != nil {
		fmt.Fprintln(os.Stderr, "bench/upgrade:", err)
		os.Exit(1)
	}
}

func run(n, rate int) error {
	root, err := benchkit.RepoRoot()
	if err != nil {
		return err
	}
	if err := benchkit.BuildExample(root, "berth-bench/hello:1"); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "berth-bench-upgrade-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	bin := filepath.Join(tmp, "berth")
	build := exec.Command("go", "build", "-o", bin, "./cmd/berth")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("build berth: %v: %s", err, out)
	}
	s, err := startServer(tmp, bin)
	if err != nil {
		return err
	}
	defer s.stop()
	app := fmt.Sprintf("benchup%d", os.Getpid())
	if err := s.deploy(tmp, app); err != nil {
		return err
	}
	defer s.cli(tmp, "destroy", "--app", app)
	host := "web." + app + ".localhost"

	var ups, kills []time.Duration
	var upRes, killRes result
	for i := range n {
		// Upgrade: a new file at the binary's path (as install(1) and
		// package managers do), then SIGHUP.
		stop := loadFor("http://"+s.http+"/", host, rate)
		time.Sleep(time.Second)
		if err := replace(bin); err != nil {
			return err
		}
		ready := s.lines("berth server upgraded")
		began := time.Now()
		if err := syscall.Kill(s.cmd.Process.Pid, syscall.SIGHUP); err != nil {
			return err
		}
		if err := s.await("berth server upgraded", ready+1); err != nil {
			return err
		}
		ups = append(ups, time.Since(began))
		time.Sleep(time.Second)
		upRes.add(stop())
		fmt.Fprintf(os.Stderr, "upgrade %d: %s, %+v\n", i+1, ups[i].Round(time.Millisecond), upRes)

		// Kill: SIGKILL to the daemon.
		pid, err := s.daemonPID()
		if err != nil {
			return err
		}
		stop = loadFor("http://"+s.http+"/", host, rate)
		time.Sleep(time.Second)
		ready = s.lines("berth server ready")
		began = time.Now()
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			return err
		}
		if err := s.await("berth server ready", ready+1); err != nil {
			return err
		}
		kills = append(kills, time.Since(began))
		time.Sleep(time.Second)
		killRes.add(stop())
		fmt.Fprintf(os.Stderr, "kill %d: %s, %+v\n", i+1, kills[i].Round(time.Millisecond), killRes)
	}
	// The server's own account of each restart, for the log directory.
	s.mu.Lock()
	for _, l := range s.log {
		for _, m := range []string{"upgrad", "ready", "stopped", "state loaded", "exited", "panicked", "level=ERROR", "level=WARN"} {
			if strings.Contains(l, m) {
				fmt.Fprintln(os.Stderr, l)
				break
			}
		}
	}
	s.mu.Unlock()
	fmt.Printf("| metric (example app, %d req/s open loop, %d runs) | median | p90 | refused | slowest answer | target |\n|---|---|---|---|---|---|\n", rate, n)
	fmt.Printf("| upgrade (binary replaced, SIGHUP): failed requests | %d of %d | | %d | %s | 0 |\n", upRes.failed, upRes.ok+upRes.failed, upRes.refused, upRes.slowest.Round(time.Millisecond))
	fmt.Printf("| upgrade: SIGHUP → new daemon serving | %s | %s | | | |\n", benchkit.Median(ups), benchkit.Pct(ups, 0.9))
	fmt.Printf("| daemon killed (SIGKILL): failed requests | %d of %d | | %d | %s | in flight only |\n", killRes.failed, killRes.ok+killRes.failed, killRes.refused, killRes.slowest.Round(time.Millisecond))
	fmt.Printf("| daemon killed: SIGKILL → new daemon serving | %s | %s | | | |\n", benchkit.Median(kills), benchkit.Pct(kills, 0.9))
	return nil
}

// server is `berth server` as a process, its log lines counted.
type server struct {
	cmd        *exec.Cmd
	data, http string
	env        []string
	mu         sync.Mutex
	log        []string
	exited     chan struct{}
}

func startServer(tmp, bin string) (*server, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	s := &server{data: filepath.Join(tmp, "data"), http: fmt.Sprintf("127.0.0.1:%d", port), exited: make(chan struct{})}
	s.env = append(os.Environ(), "BERTH_DATA="+s.data, "BERTH_HOST=", "BERTH_TOKEN=")
	s.cmd = exec.Command(bin, "server", "--http", s.http, "--https", "")
	s.cmd.Env = s.env
	stderr, err := s.cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := s.cmd.Start(); err != nil {
		return nil, err
	}
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			s.mu.Lock()
			s.log = append(s.log, sc.Text())
			s.mu.Unlock()
		}
		_ = s.cmd.Wait()
		close(s.exited)
	}()
	if err := s.await("berth server ready", 1); err != nil {
		s.stop()
		return nil, err
	}
	return s, nil
}

func (s *server) stop() {
	_ = s.cmd.Process.Signal(os.Interrupt)
	select {
	case <-s.exited:
	case <-time.After(40 * time.Second):
		_ = s.cmd.Process.Kill()
	}
}

// lines counts the log lines that contain msg.
func (s *server) lines(msg string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, l := range s.log {
		if strings.Contains(l, msg) {
			n++
		}
	}
	return n
}

// await waits until n log lines contain msg.
func (s *server) await(msg string, n int) error {
	deadline := time.Now().Add(60 * time.Second)
	for s.lines(msg) < n {
		select {
		case <-s.exited:
			return errors.New("berth server exited: " + s.tail())
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no %q in 60s: %s", msg, s.tail())
		}
		time.Sleep(5 * time.Millisecond)
	}
	return nil
}

func (s *server) tail() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Join(s.log[max(0, len(s.log)-5):], " / ")
}

func (s *server) daemonPID() (int, error) {
	b, err := os.ReadFile(filepath.Join(s.data, "daemon.pid"))
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(strings.TrimSpace(string(b)))
}

func (s *server) cli(dir string, args ...string) ([]byte, error) {
	cmd := exec.Command(s.cmd.Path, args...)
	cmd.Env, cmd.Dir = s.env, dir
	return cmd.CombinedOutput()
}

func (s *server) deploy(tmp, app string) error {
	dir := filepath.Join(tmp, "app")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	spec := fmt.Sprintf("app: %s\nservices:\n  web:\n    image: berth-bench/hello:1\n    port: 8080\n    instances: 2\n    health: {path: /healthz}\n", app)
	if err := os.WriteFile(filepath.Join(dir, "berth.yaml"), []byte(spec), 0o644); err != nil {
		return err
	}
	if out, err := s.cli(dir, "deploy"); err != nil {
		return fmt.Errorf("deploy: %v: %s", err, out)
	}
	return nil
}

// replace puts a new file with the same content at path, as an upgrade
// does (rename over the old one: the running processes keep theirs).
func replace(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := os.WriteFile(path+".new", b, 0o755); err != nil {
		return err
	}
	return os.Rename(path+".new", path)
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// result sums loads.
type result struct {
	ok, failed, refused int64
	slowest             time.Duration
}

func (r *result) add(o result) {
	r.ok += o.ok
	r.failed += o.failed
	r.refused += o.refused
	r.slowest = max(r.slowest, o.slowest)
}

// loadFor sends open-loop traffic (testutil.StartLoad, as the tests) and
// returns a stop that says what it saw.
func loadFor(url, host string, rate int) func() result {
	l := testutil.StartLoad(url, host, rate)
	return func() result {
		r := l.Stop()
		return result{ok: r.OK, failed: r.Failed, refused: r.Refused, slowest: r.MaxLatency}
	}
}
