package cli

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/berth-dev/berth/internal/controlplane"
	"github.com/berth-dev/berth/internal/supervisor"
)

// Why the edge is not a process of its own: the listening sockets, not the
// process, are what must outlive a crash or an upgrade, and a supervisor
// that holds them gives that with one process doing the work. A separate
// edge process would have to learn every route change from the daemon
// over IPC (the daemon changes routes during deploys, drains, holds and
// wake-ups many times a second) and would still need this same hand-off to
// be upgraded itself. With the supervisor, a daemon that dies costs only
// the requests it had in flight; everything else waits in the kernel's
// accept queue for the next daemon, which re-adopts the running containers
// before it accepts.

// Files handed from the supervisor to the daemon and across upgrades.
const (
	fileHTTP  = "http"
	fileHTTPS = "https"
	fileAPI   = "api"
	fileUI    = "ui"
	fileLock  = "lock"
)

// Pid files in the data directory: the supervisor's (what to signal) and
// the running daemon's.
const (
	serverPIDFile = "server.pid"
	daemonPIDFile = "daemon.pid"
)

// oneShotFlags act at the first start only: a daemon restarted after a
// crash or an upgrade runs without them.
var oneShotFlags = []string{"restore-latest"}

// superviseDaemon is `berth server` itself: it holds the data directory's
// supervisor lock and the listening sockets, and runs the daemon as a child
// process (package supervisor).
func (c *cli) superviseDaemon(ctx context.Context, cfg controlplane.Config) error {
	log := cfg.Logger.With("component", "supervisor")
	kept, err := supervisor.Upgraded()
	if err != nil {
		return err
	}
	var files []supervisor.NamedFile
	var lock *os.File
	if kept != nil {
		// Re-executed by an upgrade: the sockets, with the connections
		// waiting on them, and the lock are already ours.
		lock = kept[fileLock]
		for _, name := range []string{fileHTTP, fileHTTPS, fileAPI, fileUI} {
			if f := kept[name]; f != nil {
				files = append(files, supervisor.NamedFile{Name: name, File: f})
			}
		}
	} else {
		if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
			return fmt.Errorf("create data directory %s: %w", cfg.DataDir, err)
		}
		if lock, err = lockSupervisor(cfg.DataDir); err != nil {
			return err
		}
		lns, err := controlplane.Listen(cfg)
		if err != nil {
			lock.Close()
			return err
		}
		if files, err = listenerFiles(lns); err != nil {
			lock.Close()
			return err
		}
	}
	defer lock.Close()
	pidPath := filepath.Join(cfg.DataDir, serverPIDFile)
	if err := supervisor.WritePIDFile(pidPath); err != nil {
		log.Warn("write the pid file", "path", pidPath, "err", err)
	}
	defer supervisor.RemovePIDFile(pidPath)

	err = supervisor.Run(ctx, supervisor.Config{
		Args:        os.Args[1:],
		RestartArgs: withoutFlags(os.Args[1:], oneShotFlags...),
		Files:       files,
		Keep:        []supervisor.NamedFile{{Name: fileLock, File: lock}},
		CheckArgs:   []string{"server", "--help"},
		PIDFile:     filepath.Join(cfg.DataDir, daemonPIDFile),
		StopTimeout: 30 * time.Second,
		Stdout:      c.stdout,
		Stderr:      c.stderr,
		Logger:      log,
	})
	if path, ok := strings.CutPrefix(cfg.API, "unix://"); ok {
		_ = os.Remove(path) // the supervisor bound it; nobody answers now
	}
	var exit *supervisor.ChildExitError
	if errors.As(err, &exit) {
		// The daemon printed why.
		return exitWith(exit.Code, "")
	}
	return err
}

// runSupervised is the daemon under the supervisor: it serves on the
// inherited sockets and tells the supervisor when it is ready and when,
// stopping, it has released the state.
func runSupervised(ctx context.Context, cfg controlplane.Config, files map[string]*os.File, notify *supervisor.Notifier) error {
	lns := &controlplane.Listeners{}
	for name, ln := range map[string]*net.Listener{fileHTTP: &lns.HTTP, fileHTTPS: &lns.HTTPS, fileAPI: &lns.API, fileUI: &lns.UI} {
		f := files[name]
		if f == nil {
			continue
		}
		l, err := net.FileListener(f)
		f.Close()
		if err != nil {
			lns.Close()
			return fmt.Errorf("inherited %s socket: %w", name, err)
		}
		*ln = l
	}
	if lns.HTTP == nil || lns.API == nil {
		lns.Close()
		return fmt.Errorf("%w: the edge's or the API's socket is missing", supervisor.ErrBadInheritance)
	}
	// SIGHUP is the supervisor's (an upgrade); one sent here by mistake
	// must not kill the daemon.
	signal.Ignore(syscall.SIGHUP)
	cfg.Listeners = lns
	prev := cfg.Ready
	cfg.Ready = func(a controlplane.Addrs) {
		if prev != nil {
			prev(a)
		}
		notify.Ready()
	}
	// Stopping, it lets go of the state before its last requests are
	// done: an upgrade's new daemon starts then.
	cfg.Released = notify.Released
	return runDaemon(ctx, cfg)
}

// listenerFiles are the sockets as files to hand on. The listeners
// themselves are closed: the supervisor never accepts, and a unix socket
// must stay in the file system when its listener closes.
func listenerFiles(lns *controlplane.Listeners) ([]supervisor.NamedFile, error) {
	defer lns.Close()
	var out []supervisor.NamedFile
	for _, l := range []struct {
		name string
		ln   net.Listener
	}{{fileHTTP, lns.HTTP}, {fileHTTPS, lns.HTTPS}, {fileAPI, lns.API}, {fileUI, lns.UI}} {
		if l.ln == nil {
			continue
		}
		if u, ok := l.ln.(*net.UnixListener); ok {
			u.SetUnlinkOnClose(false)
		}
		fl, ok := l.ln.(interface{ File() (*os.File, error) })
		if !ok {
			return nil, fmt.Errorf("%s listener %T cannot be handed on", l.name, l.ln)
		}
		f, err := fl.File()
		if err != nil {
			return nil, fmt.Errorf("hand on the %s socket: %w", l.name, err)
		}
		out = append(out, supervisor.NamedFile{Name: l.name, File: f})
	}
	return out, nil
}

// lockSupervisor takes the data directory's supervisor lock, so a second
// `berth server` on it fails before it binds anything. The daemon child
// takes the state's own lock (controlplane) as well: that one passes from
// the old daemon to the new one at each restart.
func lockSupervisor(dir string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(dir, "server.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock data directory: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("%w: %s (stop the other daemon or pass another --data)", controlplane.ErrAlreadyRunning, dir)
	}
	return f, nil
}

// withoutFlags is args without the named (boolean) flags.
func withoutFlags(args []string, names ...string) []string {
	out := make([]string, 0, len(args))
	for _, a := range args {
		drop := false
		for _, n := range names {
			drop = drop || a == "--"+n || strings.HasPrefix(a, "--"+n+"=")
		}
		if !drop {
			out = append(out, a)
		}
	}
	return out
}
