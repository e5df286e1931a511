package controlplane

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// Listeners are the daemon's listening sockets: the edge's HTTP and HTTPS
// (nil when disabled), the API's, and the console's (nil when disabled). Run binds them itself unless
// Config.Listeners hands them in; berth server's supervisor does, so the
// sockets outlive any one daemon process and a restart or an upgrade
// refuses no connection (they wait in the kernel's accept queue).
type Listeners struct {
	HTTP  net.Listener
	HTTPS net.Listener
	API   net.Listener
	UI    net.Listener
}

// Close closes every listener. A unix socket bound by Listen is removed
// from the file system with it; one made from an inherited file is not.
func (l *Listeners) Close() error {
	var errs []error
	for _, ln := range []net.Listener{l.HTTP, l.HTTPS, l.API, l.UI} {
		if ln != nil {
			errs = append(errs, ln.Close())
		}
	}
	return errors.Join(errs...)
}

// Listen binds the edge's and the API's sockets of cfg, with the errors a
// user can act on (which flag, which address). Nothing stays bound when it
// fails.
func Listen(cfg Config) (lns *Listeners, err error) {
	cfg, err = withDefaults(cfg)
	if err != nil {
		return nil, err
	}
	lns = &Listeners{}
	defer func() {
		if err != nil {
			lns.Close()
			lns = nil
		}
	}()
	lns.HTTP, err = net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return lns, fmt.Errorf("edge cannot listen on --http %s: %w (pick another address with --http or BERTH_HTTP)", cfg.HTTPAddr, errors.Unwrap(err))
	}
	if cfg.HTTPSAddr != "" {
		lns.HTTPS, err = net.Listen("tcp", cfg.HTTPSAddr)
		if err != nil {
			return lns, fmt.Errorf("edge cannot listen on --https %s: %w (pick another address with --https, or --https \"\" to disable)", cfg.HTTPSAddr, errors.Unwrap(err))
		}
	}
	if lns.API, err = listenAPI(cfg); err != nil {
		return lns, err
	}
	if cfg.UIAddr != "" {
		lns.UI, err = net.Listen("tcp", cfg.UIAddr)
		if err != nil {
			return lns, fmt.Errorf("console cannot listen on --ui %s: %w (pick another address with --ui or BERTH_UI, or --ui \"\" to disable)", cfg.UIAddr, errors.Unwrap(err))
		}
	}
	return lns, nil
}

// listenAPI binds the API: a unix socket private to its owner, or TCP (with
// TLS and a bearer token, see apiSecurity).
func listenAPI(cfg Config) (net.Listener, error) {
	switch {
	case strings.HasPrefix(cfg.API, "unix://"):
		path := strings.TrimPrefix(cfg.API, "unix://")
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, fmt.Errorf("api socket directory: %w", err)
		}
		if c, err := net.DialTimeout("unix", path, 200*time.Millisecond); err == nil {
			c.Close()
			return nil, fmt.Errorf("%w: a daemon already answers on %s", ErrAlreadyRunning, path)
		}
		_ = os.Remove(path) // a stale socket from a daemon that died
		// Create the socket with no permissions for group and others from
		// the first instant, then make sure of the mode.
		old := syscall.Umask(0o177)
		ln, err := net.Listen("unix", path)
		syscall.Umask(old)
		if err != nil {
			return nil, fmt.Errorf("api cannot listen on %s: %w", path, err)
		}
		if err := os.Chmod(path, 0o600); err != nil {
			ln.Close()
			return nil, fmt.Errorf("api socket mode: %w", err)
		}
		return ln, nil
	case strings.HasPrefix(cfg.API, "tcp://"):
		ln, err := net.Listen("tcp", strings.TrimPrefix(cfg.API, "tcp://"))
		if err != nil {
			return nil, fmt.Errorf("api cannot listen on --api %s: %w (pick another address)", cfg.API, errors.Unwrap(err))
		}
		return ln, nil
	default:
		return nil, fmt.Errorf("invalid --api %q: use unix:///path/berth.sock or tcp://HOST:PORT", cfg.API)
	}
}

// apiSecurity is the API's address as clients name it and, for TCP, its
// TLS configuration and bearer token (loaded, or created on first use).
func apiSecurity(cfg Config, ln net.Listener) (addr string, tlsCfg *tls.Config, token string, err error) {
	if ln.Addr().Network() == "unix" {
		return "unix://" + strings.TrimPrefix(cfg.API, "unix://"), nil, "", nil
	}
	tlsCfg, token, err = apiTLS(cfg.DataDir, strings.TrimPrefix(cfg.API, "tcp://"))
	if err != nil {
		return "", nil, "", err
	}
	return "tcp://" + ln.Addr().String(), tlsCfg, token, nil
}
