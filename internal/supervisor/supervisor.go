package supervisor

// The supervisor's life, one child at a time:
//
//	start child ──ready──► serving ──child dies──► start child (at once;
//	   │                     │                     backoff if it keeps dying)
//	   │ dies before ready   ├──SIGHUP──► check new binary ──► stop child
//	   │ on the first start  │              (fails: keep serving)  │
//	   ▼                     │                                     ▼
//	exit with its code       │                       exec self, files kept
//	                         └──ctx ends (SIGTERM, SIGINT)──► stop child, return
//
// The daemon takes an exclusive lock on its state, so two children never
// serve at once: an upgrade asks the old child to stop (it stops accepting
// at once), waits until it says it has released its state (see Notifier),
// and then starts the new binary, while the old child goes on finishing
// its requests in flight and exits on its own; the new supervisor reaps
// it. Meanwhile the listening sockets stay open in the supervisor, so new
// connections queue in the kernel and are answered by the next child
// instead of being refused.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// ParentEnv carries the supervisor's pid to the child, which checks that
// its parent is still that process (see Child).
const ParentEnv = "BERTH_SUPERVISOR_PID"

// drainingEnv carries the pids of old children still finishing their
// requests across an upgrade's exec: the new supervisor reaps them.
const drainingEnv = "BERTH_DRAINING_PIDS"

// upgradeStartEnv carries the time an upgrade began across the exec, so the
// new supervisor can log how long the upgrade took.
const upgradeStartEnv = "BERTH_UPGRADE_STARTED"

// ErrParentGone means a supervised child found its supervisor gone before
// it could ask to be told of its death.
var ErrParentGone = errors.New("supervisor exited before the daemon started")

// ChildExitError is a child that failed before it was ready on the first
// start: its own output said why; the supervisor exits with its code.
type ChildExitError struct{ Code int }

func (e *ChildExitError) Error() string { return fmt.Sprintf("daemon exited with code %d", e.Code) }

// Config is what Run supervises.
type Config struct {
	// Args are the child's arguments after the program name: the
	// supervisor's own command line, so the child reads the same flags.
	Args []string
	// RestartArgs, when set, replace Args for every later child and for
	// the supervisor after an upgrade: flags that act once are left out.
	RestartArgs []string
	// Files are handed to every child and kept across an upgrade.
	Files []NamedFile
	// Keep are kept across an upgrade but not handed to children (a lock
	// the supervisor holds).
	Keep []NamedFile
	// CheckArgs run the new binary before an upgrade drains the old child
	// (e.g. "server", "--help"); it must exit 0, else the upgrade is
	// refused and the old child keeps serving.
	CheckArgs []string
	// PIDFile, when set, holds the running child's pid.
	PIDFile string
	// StopTimeout bounds a child's graceful stop before it is killed
	// (default 30s).
	StopTimeout time.Duration
	// Stdout and Stderr are the child's (default os.Stdout, os.Stderr).
	Stdout, Stderr io.Writer
	Logger         *slog.Logger
}

// Upgraded reports whether this process is a supervisor re-executed by an
// upgrade, and returns the files it kept (nil otherwise).
func Upgraded() (map[string]*os.File, error) {
	return Inherited(UpgradeEnv)
}

// restart backoff: a child that keeps dying soon after its start is not
// restarted in a tight loop.
const (
	minBackoff = 100 * time.Millisecond
	maxBackoff = 5 * time.Second
	// healthyRun is how long a child must run for its next death to be
	// restarted at once again.
	healthyRun = 10 * time.Second
)

// Run starts the child and keeps one running until ctx ends, when it stops
// the child gracefully and returns nil. On SIGHUP it upgrades: a successful
// upgrade never returns (the process becomes the new binary). It returns a
// *ChildExitError when the first child fails before it is ready, unless
// this supervisor came from an upgrade (then it retries, as the sockets
// must stay open).
func Run(ctx context.Context, cfg Config) error {
	if cfg.StopTimeout <= 0 {
		cfg.StopTimeout = 30 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	if cfg.Stdout == nil {
		cfg.Stdout = os.Stdout
	}
	if cfg.Stderr == nil {
		cfg.Stderr = os.Stderr
	}
	log := cfg.Logger
	// The child's Pdeathsig fires when the thread that started it exits,
	// not the process: keep every start on this one thread, which lives
	// as long as the supervisor.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()

	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)

	var upgradeStart time.Time
	if v := os.Getenv(upgradeStartEnv); v != "" {
		_ = os.Unsetenv(upgradeStartEnv)
		if ns, err := strconv.ParseInt(v, 10, 64); err == nil {
			upgradeStart = time.Unix(0, ns)
		}
	}
	draining := adoptDraining(log)
	defer draining.wait(cfg.StopTimeout, log)
	retry := !upgradeStart.IsZero() // after an upgrade, never give up
	backoff := time.Duration(0)
	args := cfg.Args
	if cfg.RestartArgs == nil {
		cfg.RestartArgs = cfg.Args
	}
	for {
		c, err := startChild(cfg, args)
		if err != nil {
			return err
		}
		args = cfg.RestartArgs
		if cfg.PIDFile != "" {
			if err := writeFileAtomic(cfg.PIDFile, []byte(strconv.Itoa(c.pid)+"\n")); err != nil {
				log.Warn("write the daemon's pid file", "path", cfg.PIDFile, "err", err)
			}
		}
		log.Debug("daemon started", "pid", c.pid)
	wait:
		for {
			select {
			case <-ctx.Done():
				c.stop(cfg.StopTimeout, log)
				removeIfOurs(cfg.PIDFile, c.pid)
				return nil
			case <-c.ready:
				c.ready = nil
				retry = true
				if !upgradeStart.IsZero() {
					log.Info("berth server upgraded", "daemon_pid", c.pid, "took", time.Since(upgradeStart).Round(time.Millisecond))
					upgradeStart = time.Time{}
				}
			case <-hup:
				stopped, err := upgrade(cfg, c, draining, hup, log)
				log.Error("upgrade failed", "err", err, "old_daemon_stopped", stopped)
				if !stopped {
					continue wait // the old daemon serves on
				}
				draining.add(c)
				break wait // start another on this binary
			case <-c.exited:
				ran := time.Since(c.started)
				select {
				case <-c.ready: // it said it served, then died
					c.ready = nil
					retry = true
				default:
				}
				// A dead daemon's pid must not stay in the file: the
				// system may give it to another process.
				removeIfOurs(cfg.PIDFile, c.pid)
				if !retry {
					return &ChildExitError{Code: c.code}
				}
				if ran > healthyRun {
					backoff = 0
				}
				// The first death is restarted at once; one soon after
				// waits, longer each time.
				delay := backoff
				backoff = min(max(2*backoff, minBackoff), maxBackoff)
				if c.ready != nil {
					delay = max(delay, minBackoff) // it never served
				}
				log.Error("daemon exited; restarting it", "pid", c.pid, "code", c.code, "signal", c.signal, "ran", ran.Round(time.Millisecond), "restart_in", delay)
				select {
				case <-time.After(delay):
				case <-ctx.Done():
					return nil
				}
				break wait
			}
		}
	}
}

// child is one daemon process.
type child struct {
	cmd      *exec.Cmd
	pid      int
	started  time.Time
	ready    chan struct{} // closed when it says it serves; nil once seen
	released chan struct{} // closed when it says it let go of its state
	exited   chan struct{} // closed when it has exited
	code     int
	signal   string
}

func (c *child) alive() bool {
	select {
	case <-c.exited:
		return false
	default:
		return true
	}
}

// startChild runs this very binary (/proc/self/exe, even if the file was
// replaced since: a child always matches its supervisor) with the files.
func startChild(cfg Config, args []string) (*child, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("readiness pipe: %w", err)
	}
	defer w.Close()
	names := make([]string, 0, len(cfg.Files)+1)
	fds := make([]int, 0, len(cfg.Files)+1)
	extra := make([]*os.File, 0, len(cfg.Files)+1)
	for i, f := range append(append([]NamedFile(nil), cfg.Files...), NamedFile{readyName, w}) {
		names = append(names, f.Name)
		fds = append(fds, 3+i) // ExtraFiles[i] is fd 3+i in the child
		extra = append(extra, f.File)
	}
	env := withoutEnv(os.Environ(), ChildEnv, UpgradeEnv, ParentEnv, upgradeStartEnv)
	env = append(env, ChildEnv+"="+encode(names, fds), ParentEnv+"="+strconv.Itoa(os.Getpid()))
	cmd := &exec.Cmd{
		Path:       "/proc/self/exe",
		Args:       append([]string{os.Args[0]}, args...),
		Env:        env,
		Stdout:     cfg.Stdout,
		Stderr:     cfg.Stderr,
		ExtraFiles: extra,
		SysProcAttr: &syscall.SysProcAttr{
			// Its own process group: a Ctrl-C at a terminal reaches the
			// supervisor alone, which stops the child in order.
			Setpgid: true,
			// A supervisor killed outright takes its daemon with it, so
			// no orphan holds the state's lock.
			Pdeathsig: syscall.SIGTERM,
		},
	}
	if err := cmd.Start(); err != nil {
		r.Close()
		return nil, fmt.Errorf("start the daemon: %w", err)
	}
	c := &child{cmd: cmd, pid: cmd.Process.Pid, started: time.Now(), ready: make(chan struct{}), released: make(chan struct{}), exited: make(chan struct{})}
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		defer r.Close()
		var b [1]byte
		for _, ch := range []chan struct{}{c.ready, c.released} {
			if n, _ := r.Read(b[:]); n != 1 {
				return
			}
			close(ch)
		}
	}()
	go func() {
		err := cmd.Wait()
		c.code = cmd.ProcessState.ExitCode()
		if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			c.signal = ws.Signal().String()
		}
		if c.code == 0 && err != nil {
			c.code = 1
		}
		// A child that said it was ready and died at once must count as
		// one that served: its message is in the pipe, so let the reader
		// take it before the exit is seen (bounded: a grandchild could
		// hold the pipe's write end open).
		select {
		case <-readerDone:
		case <-time.After(time.Second):
		}
		close(c.exited)
	}()
	return c, nil
}

// stop asks the child to drain and exit (SIGTERM), and kills it after
// timeout.
func (c *child) stop(timeout time.Duration, log *slog.Logger) {
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.exited:
		return
	case <-time.After(timeout):
	}
	log.Warn("daemon did not stop in time; killing it", "pid", c.pid, "timeout", timeout)
	_ = c.cmd.Process.Kill()
	<-c.exited
}

// upgrade checks the binary now at this executable's path, stops the
// child, waits until it has released its state and re-executes the
// supervisor from that path with its files. It returns only on failure,
// saying whether the child was stopped (then it may still be finishing
// its requests).
func upgrade(cfg Config, c *child, draining *drainingSet, hup chan os.Signal, log *slog.Logger) (stopped bool, err error) {
	began := time.Now()
	bin, err := os.Executable() // the path, even when the file was replaced
	if err != nil {
		return false, fmt.Errorf("find the binary: %w", err)
	}
	if len(cfg.CheckArgs) > 0 {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		check := exec.CommandContext(ctx, bin, cfg.CheckArgs...)
		check.Env = withoutEnv(os.Environ(), ChildEnv, UpgradeEnv, ParentEnv, upgradeStartEnv)
		out, err := check.CombinedOutput()
		cancel()
		if err != nil {
			return false, fmt.Errorf("the new binary %s does not run (%v): %s; the old one serves on", bin, err, firstLine(out))
		}
	}
	log.Info("upgrading berth server: stopping the daemon", "binary", bin, "daemon_pid", c.pid)
	c.release(cfg.StopTimeout, log)

	all := append(append([]NamedFile(nil), cfg.Files...), cfg.Keep...)
	names := make([]string, len(all))
	fds := make([]int, len(all))
	for i, f := range all {
		names[i], fds[i] = f.Name, int(f.File.Fd())
		// Kept open across exec: the sockets, with their queued
		// connections, and the lock.
		if _, err := fcntl(fds[i], syscall.F_SETFD, 0); err != nil {
			return true, fmt.Errorf("keep %s open across the upgrade: %w", f.Name, err)
		}
	}
	defer func() {
		for _, fd := range fds {
			_, _ = fcntl(fd, syscall.F_SETFD, syscall.FD_CLOEXEC)
		}
	}()
	env := withoutEnv(os.Environ(), ChildEnv, UpgradeEnv, ParentEnv, upgradeStartEnv)
	env = append(env, UpgradeEnv+"="+encode(names, fds), upgradeStartEnv+"="+strconv.FormatInt(began.UnixNano(), 10))
	if pids := draining.pids(c); pids != "" {
		env = append(env, drainingEnv+"="+pids)
	}
	// A second SIGHUP before the new binary listens for it must not kill
	// the supervisor (its default action): an ignored signal stays
	// ignored across exec until the new Run asks for it.
	signal.Ignore(syscall.SIGHUP)
	// This goroutine is locked to the thread that started the children,
	// which survives the exec: their Pdeathsig does not fire.
	err = syscall.Exec(bin, append([]string{os.Args[0]}, cfg.RestartArgs...), env)
	signal.Notify(hup, syscall.SIGHUP)
	return true, fmt.Errorf("exec %s: %w", bin, err)
}

// release asks the child to stop (SIGTERM) and waits until it has let go
// of its state, or exited; it kills it after timeout.
func (c *child) release(timeout time.Duration, log *slog.Logger) {
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.released:
		return
	case <-c.exited:
		return
	case <-time.After(timeout):
	}
	log.Warn("daemon did not stop in time; killing it", "pid", c.pid, "timeout", timeout)
	_ = c.cmd.Process.Kill()
	<-c.exited
}

// drainingSet are old children still finishing their requests: this
// supervisor's own, and those an upgraded-from supervisor left to it.
type drainingSet struct {
	mu    sync.Mutex
	procs map[int]chan struct{} // pid → closed at its exit
}

// adoptDraining reaps the children an upgrade left running.
func adoptDraining(log *slog.Logger) *drainingSet {
	d := &drainingSet{procs: map[int]chan struct{}{}}
	v := os.Getenv(drainingEnv)
	_ = os.Unsetenv(drainingEnv)
	for _, f := range strings.Split(v, ",") {
		pid, err := strconv.Atoi(f)
		if err != nil || pid <= 0 {
			continue
		}
		p, err := os.FindProcess(pid)
		if err != nil {
			continue
		}
		done := make(chan struct{})
		d.procs[pid] = done
		go func() {
			defer close(done)
			if _, err := p.Wait(); err != nil {
				log.Debug("reap old daemon", "pid", pid, "err", err)
			}
		}()
	}
	return d
}

func (d *drainingSet) add(c *child) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.procs[c.pid] = c.exited
}

// pids lists those still running, with c, for the next supervisor.
func (d *drainingSet) pids(c *child) string {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []string
	if c.alive() {
		out = append(out, strconv.Itoa(c.pid))
	}
	for pid, done := range d.procs {
		select {
		case <-done:
		default:
			out = append(out, strconv.Itoa(pid))
		}
	}
	return strings.Join(out, ",")
}

// wait waits for every draining child, killing those still running after
// timeout.
func (d *drainingSet) wait(timeout time.Duration, log *slog.Logger) {
	d.mu.Lock()
	defer d.mu.Unlock()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	expired := false
	for pid, done := range d.procs {
		if !expired {
			select {
			case <-done:
				continue
			case <-timer.C:
				expired = true
			}
		}
		select {
		case <-done:
		default:
			log.Warn("old daemon still finishing requests; killing it", "pid", pid)
			_ = syscall.Kill(pid, syscall.SIGKILL)
			<-done
		}
	}
}

// Notifier tells the supervisor how a child's life goes. A nil Notifier
// (not supervised) does nothing.
type Notifier struct {
	w  *os.File
	mu sync.Mutex
}

// Ready says the child serves.
func (n *Notifier) Ready() { n.send() }

// Released says the child has stopped its work and let go of its state
// (lock, store), though it may still be finishing requests: the next child
// may start. Call it after Ready.
func (n *Notifier) Released() {
	n.send()
	if n != nil {
		n.mu.Lock()
		_ = n.w.Close()
		n.mu.Unlock()
	}
}

func (n *Notifier) send() {
	if n == nil {
		return
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	_, _ = n.w.Write([]byte{1})
}

// Child returns the files a supervised process inherited and its Notifier;
// files is nil when this process is not a supervised child.
func Child() (files map[string]*os.File, n *Notifier, err error) {
	files, err = Inherited(ChildEnv)
	if err != nil || files == nil {
		return nil, nil, err
	}
	if v := os.Getenv(ParentEnv); v != "" && v != strconv.Itoa(os.Getppid()) {
		// Pdeathsig is armed at the fork; a supervisor that died before
		// that left this process an orphan.
		return nil, nil, ErrParentGone
	}
	_ = os.Unsetenv(ParentEnv)
	if w := files[readyName]; w != nil {
		n = &Notifier{w: w}
	}
	delete(files, readyName)
	return files, n, nil
}

func firstLine(b []byte) string {
	for i, c := range b {
		if c == '\n' {
			return string(b[:i])
		}
	}
	return string(b)
}

// writeFileAtomic writes a file that readers see whole or not at all.
func writeFileAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// WritePIDFile writes this process's pid to path, whole or not at all.
func WritePIDFile(path string) error {
	return writeFileAtomic(path, []byte(strconv.Itoa(os.Getpid())+"\n"))
}

// removeIfOurs removes a pid file that still names pid.
func removeIfOurs(path string, pid int) {
	if path == "" {
		return
	}
	if b, err := os.ReadFile(path); err == nil && string(b) == strconv.Itoa(pid)+"\n" {
		_ = os.Remove(path)
	}
}

// RemovePIDFile removes path if it still names this process.
func RemovePIDFile(path string) { removeIfOurs(path, os.Getpid()) }
