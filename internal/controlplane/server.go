package controlplane

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/berth-dev/berth/internal/certs"
	"github.com/berth-dev/berth/internal/console"
	"github.com/berth-dev/berth/internal/controlplane/autoscale"
	"github.com/berth-dev/berth/internal/controlplane/fleet"
	"github.com/berth-dev/berth/internal/controlplane/rollout"
	"github.com/berth-dev/berth/internal/controlplane/tasks"
	"github.com/berth-dev/berth/internal/controlplane/traffic"
	"github.com/berth-dev/berth/internal/edge"
	"github.com/berth-dev/berth/internal/router"
	"github.com/berth-dev/berth/internal/runtime"
	"github.com/berth-dev/berth/internal/spec"
	"github.com/berth-dev/berth/internal/store"
)

// ErrAlreadyRunning means another daemon holds the data directory.
var ErrAlreadyRunning = errors.New("another berth server is already using this data directory")

// Daemon is a running berth server: it wires the store, the engine, the
// edge and the control plane's parts together, and serves the API. What a
// request asks is done by those parts: a deploy, rollback, pause, resume,
// scale or destroy by the rollout (internal/controlplane/rollout), the
// services' instances by the fleet (internal/controlplane/fleet), tasks by
// internal/controlplane/tasks, the entrypoints and internal load balancers
// by internal/controlplane/traffic, the autoscaler's loop by
// internal/controlplane/autoscale.
type Daemon struct {
	cfg   Config
	log   *slog.Logger
	store *store.Store
	// pods is the engine: it runs the instances' and tasks' pods.
	pods runtime.PodEngine
	edge router.Router // where traffic goes (internal/router)
	// edgeHTTP is the local edge that implements it, which the apps'
	// internal load balancers serve (internal/controlplane/traffic).
	edgeHTTP http.Handler
	certs    *certs.Manager
	// metrics are the control plane's Prometheus metrics (metrics.go).
	metrics *metrics
	// entrypoints are the edge's entrypoints: stored, installed, switched,
	// shifted and guarded (internal/controlplane/traffic).
	entrypoints *traffic.Entrypoints
	// edgex holds the edge's metrics registry and access log
	// (entrypoints.go).
	edgex edgeState

	// httpPort is the edge's bound HTTP port, used to build service URLs.
	httpPort string

	// fleet is the services' live state and their instances
	// (internal/controlplane/fleet).
	fleet *fleet.Fleet
	// rollout moves services from one revision to the next
	// (internal/controlplane/rollout).
	rollout *rollout.Manager
	// tasks runs the tasks: one-off, release and scheduled runs, and exec
	// sessions (internal/controlplane/tasks).
	tasks *tasks.Runner
	// traffic is the services' request rates and latencies per revision,
	// for status (rates.go).
	traffic trafficBooks
	// autoscaler scales the services with scale: (wiring.go,
	// internal/controlplane/autoscale).
	autoscaler *autoscale.Autoscaler
	// internal are the apps' internal load balancers
	// (internal/controlplane/traffic, wired in internal_lb.go).
	internal *traffic.InternalLBs
	// console is the web console (console.go), nil when --ui is off.
	console *console.Console

	// bg tracks goroutines that must end before the store closes.
	bg sync.WaitGroup
	// ctx is the daemon's lifetime; work started by API calls (a deploy the
	// client detached from) runs under it, not under the request.
	ctx context.Context
}

// Run starts the daemon and blocks until ctx ends. Containers keep running
// when it returns: a restarted daemon re-adopts them.
func Run(ctx context.Context, cfg Config) error {
	cfg, err := withDefaults(cfg)
	if err != nil {
		return err
	}
	log := cfg.Logger
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("create data directory %s: %w", cfg.DataDir, err)
	}
	unlock, err := lockDataDir(cfg.DataDir)
	if err != nil {
		return err
	}
	defer unlock()

	// The state is verified (and restored if asked) before the engine is
	// touched: no container is stopped or removed on an unknown state.
	st, closeState, err := openState(ctx, cfg)
	if err != nil {
		return err
	}
	defer closeState()

	eng := cfg.Engine
	if eng == nil {
		return errors.New("no engine to run pods on (Config.Engine)")
	}
	owner, err := loadOwner(cfg.DataDir) // owner.go
	if err != nil {
		return err
	}
	ownEngine(eng, owner)

	// Bind every listener before doing anything slow, so a taken port is
	// reported at once and changes nothing. A supervisor (berth server)
	// binds them once and passes them in, so they outlive this process.
	lns := cfg.Listeners
	if lns == nil {
		if lns, err = Listen(cfg); err != nil {
			return err
		}
	}
	defer lns.Close()
	httpLn, httpsLn, apiLn := lns.HTTP, lns.HTTPS, lns.API
	apiAddr, tlsCfg, token, err := apiSecurity(cfg, apiLn)
	if err != nil {
		return err
	}

	// The local CA mints a certificate only for a host the edge routes;
	// the edge exists from initEdge on, before any handshake.
	var routed func(host string) bool
	cm, err := certs.New(certs.Options{
		DataDir: cfg.DataDir, Domain: cfg.Domain,
		ACMECA: cfg.ACMECA, ACMEEmail: cfg.ACMEEmail, ACMECARoot: cfg.ACMECARoot,
		Logger:   log.With("component", "certs"),
		HTTPPort: atoi(portOf(httpLn.Addr().String())), HTTPSPort: httpsPort(httpsLn),
		Routed: func(host string) bool { return routed != nil && routed(host) },
	})
	if err != nil {
		return fmt.Errorf("certificates: %w", err)
	}
	defer cm.Close()

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(errors.New("daemon stopped"))

	d := &Daemon{
		cfg:      cfg,
		log:      log,
		store:    st,
		pods:     eng,
		httpPort: portOf(httpLn.Addr().String()),
		certs:    cm,
		metrics:  newMetrics(),
		traffic:  trafficBooks{books: map[*fleet.Service]*trafficBook{}},
		ctx:      ctx,
	}
	// The edge, its metrics, access log, the entrypoints and the
	// internal load balancers (entrypoints.go).
	localEdge, err := d.initEdge(httpsPortString(httpsLn))
	if err != nil {
		return fmt.Errorf("edge: %w", err)
	}
	defer d.closeEdge()
	// The parts, each wired to what it needs (wiring.go); then the stored
	// entrypoints, which look their services up in the fleet.
	d.tasks = newTaskRunner(d)
	d.fleet = newFleet(d)
	d.rollout = newRollout(d)
	d.autoscaler = newAutoscaler(d)
	routed = localEdge.Serves
	if err := d.entrypoints.Load(context.Background()); err != nil {
		return fmt.Errorf("edge: %w", err)
	}

	// Re-adopt what runs before serving, so the edge answers for every
	// service as soon as it accepts connections.
	start := time.Now()
	if err := d.fleet.Adopt(ctx); err != nil {
		return fmt.Errorf("re-adopt running containers: %w", err)
	}
	log.Info("state loaded", "services", len(d.fleet.Services("")), "took", time.Since(start).Round(time.Millisecond))

	// Plain HTTP answers ACME HTTP-01 challenges and redirects public (ACME)
	// domains to HTTPS; everything else is served as is.
	// The fast path (edge.Server) takes the common requests itself and
	// leaves those two, and everything it does not take, to net/http.
	edgeSrv := &edge.Server{
		Edge: localEdge,
		HTTP: &http.Server{Handler: containEdge(log, cm.HTTPChallengeHandler(cm.RedirectHandler(localEdge, d.redirectHTTPS))), ReadHeaderTimeout: 30 * time.Second, IdleTimeout: edgeIdleTimeout, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelDebug)},
		Divert: func(host, path string) bool {
			return strings.HasPrefix(path, certs.ACMEChallengePrefix) || d.redirectHTTPS(host)
		},
	}
	// HTTPS goes through edge.Server too (no fast path), which makes the
	// TLS handshake itself so that HTTP/1.x requests pass its framing
	// checks before net/http reads them; HTTP/2 stays on.
	edgeTLS := &edge.Server{
		Edge: localEdge,
		HTTP: &http.Server{Handler: containEdge(log, localEdge), TLSConfig: cm.TLSConfig(), ReadHeaderTimeout: 30 * time.Second, IdleTimeout: edgeIdleTimeout, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelDebug)},
	}
	var apiHandler http.Handler = d.routes()
	if token != "" {
		apiHandler = requireToken(token, apiHandler)
	}
	apiSrv := &http.Server{Handler: apiHandler, ReadHeaderTimeout: 30 * time.Second, TLSConfig: tlsCfg, ConnContext: withCaller}

	errc := make(chan error, 4)
	go func() { errc <- serveIgnoringClosed(edgeSrv.Serve(httpLn)) }()
	if httpsLn != nil {
		go func() { errc <- serveIgnoringClosed(edgeTLS.ServeTLS(httpsLn)) }()
	}
	go func() {
		if tlsCfg != nil {
			errc <- serveIgnoringClosed(apiSrv.ServeTLS(apiLn, "", ""))
			return
		}
		errc <- serveIgnoringClosed(apiSrv.Serve(apiLn))
	}()
	var uiSrv *http.Server
	if lns.UI != nil {
		uiSrv = d.startConsole(ctx, lns.UI, errc)
	}

	d.bg.Add(1)
	go func() { defer d.bg.Done(); d.keep(ctx, "reconciler", d.fleet.ReconcileLoop) }()
	d.bg.Add(1)
	go func() { defer d.bg.Done(); d.keep(ctx, "instance recorder", d.fleet.RecordLoop) }()
	d.bg.Add(1)
	go func() { defer d.bg.Done(); d.keep(ctx, "autoscaler", d.autoscaler.Run) }()
	d.bg.Add(1)
	go func() { defer d.bg.Done(); d.keep(ctx, "traffic sampler", d.trafficLoop) }()

	addrs := Addrs{API: apiAddr, HTTP: httpLn.Addr().String()}
	if httpsLn != nil {
		addrs.HTTPS = httpsLn.Addr().String()
	}
	if lns.UI != nil {
		addrs.UI = lns.UI.Addr().String()
	}
	log.Info("berth server ready", "api", addrs.API, "http", addrs.HTTP, "https", addrs.HTTPS, "ui", addrs.UI, "domain", cfg.Domain, "data", cfg.DataDir)
	if cfg.Ready != nil {
		cfg.Ready(addrs)
	}

	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-errc:
	}
	cancel(errors.New("daemon shutting down"))
	// Every server stops accepting at once. The control plane's work ends
	// first; then the state is closed and the data directory released,
	// so the next daemon (a restart, an upgrade) can start while the edge
	// here still finishes the requests in flight.
	apiServers := []interface{ Shutdown(context.Context) error }{apiSrv}
	if uiSrv != nil {
		apiServers = append(apiServers, uiSrv)
	}
	apiDone := shutdown(log, apiServers...)
	edgeDone := shutdown(log, edgeSrv, edgeTLS)
	<-apiDone
	d.bg.Wait()
	closeState()
	unlock()
	if cfg.Released != nil {
		cfg.Released()
	}
	<-edgeDone
	log.Info("berth server stopped; containers keep running and are re-adopted on the next start")
	return runErr
}

// shutdownDrain bounds how long requests in flight may take to finish when
// the daemon stops: a restart or upgrade of berth server lets them finish
// in the old daemon while the new one starts. It is below the supervisor's
// 30 s before it kills a daemon that does not stop.
const shutdownDrain = 25 * time.Second

// shutdown stops the servers accepting at once, closes their idle
// connections and waits, in the background, for their requests in flight,
// up to shutdownDrain; the channel is closed when they are done.
func shutdown(log *slog.Logger, servers ...interface{ Shutdown(context.Context) error }) <-chan struct{} {
	done := make(chan struct{})
	ctx, cancel := context.WithTimeout(context.Background(), shutdownDrain)
	var wg sync.WaitGroup
	for _, srv := range servers {
		wg.Go(func() {
			if err := srv.Shutdown(ctx); err != nil {
				log.Warn("requests still in flight were cut at shutdown", "after", shutdownDrain, "err", err)
			}
		})
	}
	go func() {
		wg.Wait()
		cancel()
		close(done)
	}()
	return done
}

// edgeIdleTimeout closes a client's keep-alive connection to the edge after
// this long without a request, as nginx does after 75 s.
const edgeIdleTimeout = 2 * time.Minute

func serveIgnoringClosed(err error) error {
	if errors.Is(err, http.ErrServerClosed) || errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}

// withDefaults fills the defaults of the README (Daemon flags, Defaults) for
// anything the caller left empty.
func withDefaults(cfg Config) (Config, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	if cfg.DataDir == "" {
		cfg.DataDir = DefaultDataDir()
	}
	abs, err := filepath.Abs(cfg.DataDir)
	if err != nil {
		return cfg, fmt.Errorf("data directory %q: %w", cfg.DataDir, err)
	}
	cfg.DataDir = abs
	if cfg.API == "" {
		cfg.API = "unix://" + filepath.Join(cfg.DataDir, "berth.sock")
	}
	if cfg.HTTPAddr == "" {
		cfg.HTTPAddr = "127.0.0.1:8080"
	}
	if cfg.DeployTimeout <= 0 {
		cfg.DeployTimeout = spec.DefaultDeployTimeout
	}
	if cfg.Drain <= 0 {
		cfg.Drain = spec.DefaultDrain
	}
	if cfg.RollbackWarm == 0 {
		cfg.RollbackWarm = DefaultRollbackWarm
	}
	if cfg.Domain == "" {
		cfg.Domain = "localhost"
	}
	cfg.Domain = strings.ToLower(strings.TrimSuffix(cfg.Domain, "."))
	return cfg, nil
}

// DefaultDataDir is $XDG_DATA_HOME/berth, ~/.local/share/berth, or
// /var/lib/berth for root.
func DefaultDataDir() string {
	if v := os.Getenv("BERTH_DATA"); v != "" {
		return v
	}
	if os.Geteuid() == 0 {
		return "/var/lib/berth"
	}
	if x := os.Getenv("XDG_DATA_HOME"); x != "" {
		return filepath.Join(x, "berth")
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".local", "share", "berth")
}

// lockDataDir takes an exclusive flock so two daemons never share state.
func lockDataDir(dir string) (func(), error) {
	f, err := os.OpenFile(filepath.Join(dir, "lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock data directory: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("%w: %s (stop the other daemon or pass another --data)", ErrAlreadyRunning, dir)
	}
	return func() { f.Close() }, nil
}

func httpsPort(ln net.Listener) int {
	if ln == nil {
		return 0
	}
	return atoi(portOf(ln.Addr().String()))
}

func atoi(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}

func portOf(addr string) string {
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		return ""
	}
	return p
}
