package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/internal/aws/awsdaemon"
	"github.com/berth-dev/berth/internal/client"
	"github.com/berth-dev/berth/internal/controlplane"
	"github.com/berth-dev/berth/internal/runtime/docker"
	"github.com/berth-dev/berth/internal/supervisor"
)

// runDaemon, supervise and isRoot are replaced by tests to check the
// Config that flags and environment produce.
var (
	runDaemon = runOnDocker
	supervise = (*cli).superviseDaemon
	isRoot    = func() bool { return os.Geteuid() == 0 }
)

// serverOptions are berth server's flags, before defaults.
type serverOptions struct {
	data, api, http, https, domain string
	ui                             string
	acmeCA, acmeEmail, acmeCARoot  string
	restoreLatest                  bool
}

func (c *cli) serverCmd() *cobra.Command {
	var o serverOptions
	cmd := &cobra.Command{
		Use:   "server",
		Short: "Run the berth daemon: API, reconciler and edge",
		Long: `Run the berth daemon: the API the other verbs talk to, the reconciler that
keeps services running on the local Docker Engine, and the edge proxy that
serves them at http://SERVICE.APP.DOMAIN. It stops on SIGINT or SIGTERM;
containers keep running and are re-adopted on the next start.

The process started is a small supervisor: it binds the listening sockets
once and runs the daemon as a child process, restarted at once if it dies.
SIGHUP to it (its pid is in DATA/server.pid) restarts the daemon without
refusing a connection, on the binary now at the same path: replace the
binary, then kill -HUP $(cat DATA/server.pid). The daemon's pid is in
DATA/daemon.pid.`,
		Args: exactArgs(),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg := serverConfig(cmd, o, isRoot())
			var h slog.Handler = slog.NewTextHandler(c.stderr, nil)
			if c.json {
				h = slog.NewJSONHandler(c.stderr, nil)
			}
			cfg.Logger = slog.New(h)
			// The console's environment picker reaches the apps' AWS
			// environments with this process's AWS credentials.
			cfg.Environments = awsdaemon.Environments{}
			files, notify, err := supervisor.Child()
			if err != nil {
				return err
			}
			if files != nil {
				err = runSupervised(cmd.Context(), cfg, files, notify)
			} else {
				err = supervise(c, cmd.Context(), cfg)
			}
			if errors.Is(err, context.Canceled) || errors.Is(err, errInterrupted) {
				// Stopped by a signal: that is a clean stop.
				return nil
			}
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.data, "data", "", "data directory: state, secrets key, API socket (env BERTH_DATA; default $XDG_DATA_HOME/berth, root: /var/lib/berth)")
	f.StringVar(&o.api, "api", "", "API address: unix:///path/berth.sock or tcp://HOST:PORT (TLS + token) (env BERTH_API; default unix://DATA/berth.sock)")
	f.StringVar(&o.http, "http", "", "edge HTTP address (env BERTH_HTTP; default 127.0.0.1:8080, root: :80)")
	f.StringVar(&o.https, "https", "", `edge HTTPS address, "" disables (env BERTH_HTTPS; default 127.0.0.1:8443, root: :443)`)
	f.StringVar(&o.ui, "ui", "", `web console address (berth ui prints its sign-in URL), "" disables (env BERTH_UI; default 127.0.0.1:8081)`)
	f.StringVar(&o.domain, "domain", "", "base domain of service URLs (env BERTH_DOMAIN; default localhost)")
	f.StringVar(&o.acmeCA, "acme-ca", "", "ACME directory URL for certificates of public domains (env BERTH_ACME_CA; default Let's Encrypt)")
	f.StringVar(&o.acmeEmail, "acme-email", "", "contact e-mail for the ACME account (env BERTH_ACME_EMAIL)")
	f.StringVar(&o.acmeCARoot, "acme-ca-root", "", "PEM file of a root to trust for the ACME server, e.g. a test CA (env BERTH_ACME_CA_ROOT)")
	f.BoolVar(&o.restoreLatest, "restore-latest", false, "if the state (DATA/berth.db) fails its checks, restore the newest good backup from DATA/backups first, keeping the bad file as berth.db.corrupt-TIME")
	return cmd
}

// serverConfig applies the README's Daemon flags table (and docs/README.md's
// environment variables): flag, else environment, else
// default. Only HTTPS and the console tell "given empty" (disabled) from
// "not given".
func serverConfig(cmd *cobra.Command, o serverOptions, root bool) controlplane.Config {
	httpDef, httpsDef := "127.0.0.1:8080", "127.0.0.1:8443"
	if root {
		httpDef, httpsDef = ":80", ":443"
	}
	cfg := controlplane.Config{
		DataDir:    first(o.data, os.Getenv("BERTH_DATA"), client.DefaultDataDir()),
		HTTPAddr:   first(o.http, os.Getenv("BERTH_HTTP"), httpDef),
		HTTPSAddr:  httpsDef,
		Domain:     first(o.domain, os.Getenv("BERTH_DOMAIN"), "localhost"),
		ACMECA:     first(o.acmeCA, os.Getenv("BERTH_ACME_CA")),
		ACMEEmail:  first(o.acmeEmail, os.Getenv("BERTH_ACME_EMAIL")),
		ACMECARoot: first(o.acmeCARoot, os.Getenv("BERTH_ACME_CA_ROOT")),
	}
	cfg.RestoreLatest = o.restoreLatest
	if abs, err := filepath.Abs(cfg.DataDir); err == nil {
		cfg.DataDir = abs
	}
	cfg.API = first(o.api, os.Getenv("BERTH_API"), "unix://"+filepath.Join(cfg.DataDir, client.SocketName))
	if v, ok := os.LookupEnv("BERTH_HTTPS"); ok {
		cfg.HTTPSAddr = v
	}
	if cmd.Flags().Changed("https") {
		cfg.HTTPSAddr = o.https
	}
	cfg.UIAddr = "127.0.0.1:8081"
	if v, ok := os.LookupEnv("BERTH_UI"); ok {
		cfg.UIAddr = v
	}
	if cmd.Flags().Changed("ui") {
		cfg.UIAddr = o.ui
	}
	return cfg
}

// first is the first non-empty value.
func first(values ...string) string {
	for _, v := range values {
		if v != "" {
			return v
		}
	}
	return ""
}

// runOnDocker runs the daemon on the local Docker Engine, the engine of
// one machine (the control plane knows engines only by their contract).
// Nothing contacts the Docker Engine before the daemon has checked its
// state.
func runOnDocker(ctx context.Context, cfg controlplane.Config) error {
	if cfg.Engine == nil {
		var log *slog.Logger
		if cfg.Logger != nil {
			log = cfg.Logger.With("component", "docker")
		}
		de, err := docker.New(log)
		if err != nil {
			return fmt.Errorf("connect to the Docker Engine: %w (is dockerd running? check with \"docker info\")", err)
		}
		defer de.Close()
		cfg.Engine = de
	}
	return controlplane.Run(ctx, cfg)
}
