package controlplane

import (
	"crypto/x509"
	"io"
	"log/slog"
	"time"

	"github.com/berth-dev/berth/internal/runtime"
)

// Config is everything `berth server` is started with. Zero values are
// filled by DefaultConfig's rules (see the README's Daemon flags table).
type Config struct {
	// DataDir holds the SQLite state, the secrets key, the API socket and TLS
	// material.
	DataDir string
	// API is "unix:///path/berth.sock" (mode 0600) or "tcp://HOST:PORT"
	// (TLS + bearer token). Empty: unix://$DataDir/berth.sock.
	API string
	// HTTPAddr and HTTPSAddr are the edge listeners; HTTPSAddr "" disables HTTPS.
	HTTPAddr  string
	HTTPSAddr string
	// UIAddr is the web console's address (internal/console); "" means
	// no console. berth server defaults it to 127.0.0.1:8081.
	UIAddr string
	// Domain is the base domain of service URLs (default "localhost").
	Domain string
	// ACMECA, ACMEEmail and ACMECARoot configure certificates for public
	// domains (names outside Domain); names under Domain get certificates
	// from berth's local CA.
	ACMECA     string
	ACMEEmail  string
	ACMECARoot string
	Logger     *slog.Logger
	// Engine runs the pods (instances and tasks). Required: berth server
	// gives it the local Docker Engine (internal/cli).
	Engine runtime.PodEngine
	// DeployTimeout bounds how long new instances may take to become healthy
	// before a deploy rolls back (default 60s). Drain bounds how long old
	// instances' in-flight requests may take (default 30s).
	DeployTimeout time.Duration
	// RollbackWarm keeps the previous revision of an HTTP service frozen
	// (no CPU, memory kept, off the app network) that long after a deploy,
	// so a rollback in that window is a thaw (a tenth of a second) rather
	// than a container start; then it is stopped. 0 means
	// DefaultRollbackWarm; negative stops it at once.
	RollbackWarm time.Duration
	Drain        time.Duration
	// Autoscale tunes the autoscaler and scale to zero
	// (internal/controlplane/autoscale).
	Autoscale AutoscaleConfig
	// Environments, when set, reaches the remote (AWS) environments that
	// apps' deployed berth.yaml name, for the API's
	// /v1/apps/{app}/envs/{env}/... (the console's environment picker);
	// nil answers those with no_environments. berth server sets it.
	Environments Environments
	// Ready, when set, is called once every listener is bound, with their
	// real addresses (useful with port 0 in tests).
	Ready func(Addrs)
	// AccessLog, when set, receives the edge's access log (one JSON line
	// per request) instead of DataDir/edge-access.log.
	AccessLog io.Writer
	// RestoreLatest, when the state in DataDir fails its checks at start,
	// puts the newest good backup from DataDir/backups in its place first
	// (state.go); a state that passes them is left as it is.
	RestoreLatest bool
	// Released, when set, is called as Run stops, once the control plane's
	// work has ended, the state is closed and the data directory's lock is
	// released, while the edge may still be finishing requests in flight:
	// a supervisor starts the next daemon then, not when this one exits.
	Released func()
	// Listeners, when set, are the sockets to serve on, already bound (by
	// berth server's supervisor, or a test); Run binds none itself and
	// closes these when it returns. HTTPAddr, HTTPSAddr and API must still
	// describe them.
	Listeners *Listeners
	// OriginRootCAs verify external (URL) origins of entrypoints; nil means
	// the system's roots.
	OriginRootCAs *x509.CertPool
}

// DefaultRollbackWarm is how long the previous revision stays frozen after
// a deploy: the minutes in which a bad deploy is usually noticed.
const DefaultRollbackWarm = 10 * time.Minute

// Addrs are the bound listener addresses of a running daemon.
type Addrs struct {
	API   string // unix:///... or tcp://127.0.0.1:PORT
	HTTP  string // 127.0.0.1:PORT
	HTTPS string // "" when disabled
	UI    string // the console's host:port, "" when disabled
}
