package certs

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddyserver/certmagic"
)

// Errors returned by the Manager.
var (
	// ErrUnknownHost is returned by GetCertificate for a name berth does
	// not serve: a local name (under Domain, localhost, .internal) without
	// a route, an address other than a loopback one, or a public name that
	// is not a served ACME name.
	ErrUnknownHost = errors.New("no certificate for this host: it is not served by berth")
	// ErrClosed is returned after Close.
	ErrClosed = errors.New("certificate manager closed")
)

// Options configures a Manager. Only DataDir is required.
type Options struct {
	// DataDir is berth's data directory; certificates, keys and the local
	// CA persist under DataDir/certs (ACME state under DataDir/certs/acme).
	DataDir string
	// Domain is berth's default domain ("localhost" if empty): names under
	// it get certificates from the local CA, never from ACME.
	Domain string
	// ACMECA is the ACME directory URL (--acme-ca); empty means Let's
	// Encrypt production.
	ACMECA string
	// ACMEEmail is the ACME account contact (--acme-email); optional.
	ACMEEmail string
	// ACMECARoot is an optional PEM file of a root to trust, in addition to
	// the system roots, when talking to the ACME server (a test CA such as
	// pebble).
	ACMECARoot string
	// Logger receives the Manager's and certmagic's logs; nil discards them.
	Logger *slog.Logger
	// HTTPPort and HTTPSPort are the ports of berth's own plain-HTTP and
	// HTTPS listeners (0 means 80 and 443). They tell certmagic where the
	// challenge answers already live, and HTTPSPort is the port
	// RedirectHandler sends clients to. The ACME CA itself always
	// validates on 80/443 of the public address (pebble can be told other
	// ports).
	HTTPPort, HTTPSPort int
	// DisableHTTPChallenge and DisableTLSALPNChallenge turn off one of the
	// two ACME challenge types, for a host that cannot receive the other
	// (port 80 blocked, or TLS terminated in front of berth).
	DisableHTTPChallenge, DisableTLSALPNChallenge bool
	// Routed reports whether the edge has a route for a host (normalized,
	// without port), at handshake time. The local CA mints a leaf only
	// for a routed host, so a client cannot make berth vouch for a name it
	// does not serve. Nil: the names given to SetHosts are the routed ones.
	// Loopback addresses need no route: a client that dials one sends no
	// name, and the certificate vouches only for this machine.
	Routed func(host string) bool
}

// Manager chooses, mints, obtains and serves the certificates of the edge's
// HTTPS listener. It is safe for concurrent use.
type Manager struct {
	domain    string
	httpsPort int
	logger    *slog.Logger
	ca        *localCA
	acme      *acmeManager
	hosts     atomic.Pointer[hostSet]
	routed    func(host string) bool // Options.Routed

	cancel    context.CancelCauseFunc
	closed    atomic.Bool
	closeOnce sync.Once

	warnMu sync.Mutex
	warned map[string]time.Time // last pending-certificate warning per host
}

var _ io.Closer = (*Manager)(nil)

// hostSet is the served names of the last SetHosts, split by source. It is
// replaced as a whole and read without a lock during handshakes.
type hostSet struct {
	local map[string]struct{}
	acme  map[string]struct{}
}

// New opens (or creates) the certificate state under opts.DataDir/certs. It
// does no network I/O: ACME work starts with SetHosts.
func New(opts Options) (*Manager, error) {
	if opts.DataDir == "" {
		return nil, errors.New("certs: DataDir is required")
	}
	if opts.Domain == "" {
		opts.Domain = "localhost"
	}
	domain := normalizeHost(opts.Domain)
	if err := validateHost(domain); err != nil {
		return nil, fmt.Errorf("certs: domain: %w", err)
	}
	if opts.ACMECA == "" {
		opts.ACMECA = certmagic.LetsEncryptProductionCA
	}
	if opts.HTTPPort == 0 {
		opts.HTTPPort = 80
	}
	if opts.HTTPSPort == 0 {
		opts.HTTPSPort = 443
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	dir := filepath.Join(opts.DataDir, "certs")
	if err := ensureDir(dir); err != nil {
		return nil, fmt.Errorf("certs: %w", err)
	}
	ca, err := loadOrCreateCA(dir, domain, time.Now, logger)
	if err != nil {
		return nil, fmt.Errorf("certs: %w", err)
	}
	acmeDir := filepath.Join(dir, "acme")
	if err := ensureDir(acmeDir); err != nil {
		return nil, fmt.Errorf("certs: %w", err)
	}
	ctx, cancel := context.WithCancelCause(context.Background())
	am, err := newACME(ctx, opts, acmeDir, logger.With("acme_ca", opts.ACMECA))
	if err != nil {
		cancel(err)
		return nil, fmt.Errorf("certs: %w", err)
	}
	m := &Manager{
		domain:    domain,
		httpsPort: opts.HTTPSPort,
		logger:    logger,
		ca:        ca,
		acme:      am,
		routed:    opts.Routed,
		cancel:    cancel,
		warned:    make(map[string]time.Time),
	}
	m.hosts.Store(&hostSet{local: map[string]struct{}{}, acme: map[string]struct{}{}})
	return m, nil
}

// SetHosts replaces the full set of served host names. Local names (under
// Domain, localhost, IPs, .local/.internal) get local-CA certificates, minted
// on demand (when routed, see Options.Routed) and persisted; every other name is handed to ACME in the
// background, so SetHosts returns without waiting for any CA. A name that
// cannot be in a certificate fails the whole call and nothing changes.
// Names dropped from the set stop being renewed; their files stay.
//
// ctx bounds only the call: background ACME work lives until the name is
// dropped or the Manager is closed.
func (m *Manager) SetHosts(ctx context.Context, hosts []string) error {
	if m.closed.Load() {
		return ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	next := &hostSet{local: map[string]struct{}{}, acme: map[string]struct{}{}}
	var errs []error
	for _, h := range hosts {
		name := normalizeHost(h)
		if err := validateHost(name); err != nil {
			errs = append(errs, err)
			continue
		}
		if isLocalHost(name, m.domain) {
			next.local[name] = struct{}{}
		} else {
			next.acme[name] = struct{}{}
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("certs: %w", errors.Join(errs...))
	}
	m.hosts.Store(next)
	return m.acme.manage(next.acme)
}

// IsACME reports whether host (a name, or host:port) is served with an ACME
// certificate, that is, it was given to SetHosts and is not local.
func (m *Manager) IsACME(host string) bool {
	_, ok := m.hosts.Load().acme[normalizeHost(host)]
	return ok
}

// CARootPEM returns the local CA's root certificate in PEM, for a trust
// store (`berth ca export`).
func (m *Manager) CARootPEM() []byte {
	return slices.Clone(m.ca.rootPEM)
}

// TLSConfig returns a new tls.Config for the HTTPS listener: certificates
// from GetCertificate, ALPN for HTTP/2, HTTP/1.1 and the TLS-ALPN-01
// challenge, TLS 1.2 at least. Give it to http.Server.TLSConfig and call
// ServeTLS(ln, "", "") so net/http enables HTTP/2.
func (m *Manager) TLSConfig() *tls.Config {
	return &tls.Config{
		MinVersion:     tls.VersionTLS12,
		NextProtos:     []string{"h2", "http/1.1", acmeTLS1},
		GetCertificate: m.GetCertificate,
	}
}

// GetCertificate is the tls.Config.GetCertificate callback: a TLS-ALPN-01
// challenge certificate when the CA validates, a local-CA leaf for routed
// local names and loopback addresses (the local address when the client
// sent no SNI), the ACME certificate for served public names, and an error
// naming the host otherwise: then the handshake fails and nothing is
// minted or stored.
func (m *Manager) GetCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	if len(hello.SupportedProtos) == 1 && hello.SupportedProtos[0] == acmeTLS1 {
		return m.acme.challenge(hello)
	}
	name := normalizeHost(hello.ServerName)
	if name == "" {
		// Clients send no SNI when they dial an IP address.
		name = "localhost"
		if hello.Conn != nil {
			if addr, ok := hello.Conn.LocalAddr().(*net.TCPAddr); ok {
				name = addr.IP.String()
			}
		}
	}
	if err := validateHost(name); err != nil {
		return nil, err
	}
	hosts := m.hosts.Load()
	if isLocalHost(name, m.domain) {
		_, served := hosts.local[name]
		if !m.ca.permits(name) {
			return nil, fmt.Errorf("%w: %s is outside the names the local CA may sign (%s, loopback addresses)", ErrUnknownHost, name, strings.Join(m.ca.root.PermittedDNSDomains, ", "))
		}
		if !isLoopback(name) && !m.isRouted(name, served) {
			return nil, fmt.Errorf("%w: no route serves %s", ErrUnknownHost, name)
		}
		return m.ca.leaf(name, served)
	}
	if _, ok := hosts.acme[name]; ok {
		cert, err := m.acme.certificate(hello, name)
		if err != nil {
			m.warnPending(name, err)
		}
		return cert, err
	}
	return nil, fmt.Errorf("%w: %s is not under %s and not a served domain", ErrUnknownHost, name, m.domain)
}

// isRouted reports whether the edge serves name: Options.Routed when set,
// else whether SetHosts listed it.
func (m *Manager) isRouted(name string, listed bool) bool {
	if m.routed != nil {
		return m.routed(name)
	}
	return listed
}

// isLoopback reports whether name is a loopback IP address.
func isLoopback(name string) bool {
	ip := net.ParseIP(name)
	return ip != nil && ip.IsLoopback()
}

// warnPending logs a handshake refused for want of an ACME certificate, at
// most once a minute per host: a browser retries in a loop.
func (m *Manager) warnPending(name string, err error) {
	now := time.Now()
	m.warnMu.Lock()
	last, seen := m.warned[name]
	due := !seen || now.Sub(last) >= time.Minute
	if due {
		m.warned[name] = now
	}
	m.warnMu.Unlock()
	if due {
		m.logger.Warn("TLS handshake refused", "host", name, "err", err)
	}
}

// Close stops ACME management and renewals and waits (up to 10s) until
// certmagic has released its files and locks. Certificates already on disk
// stay; a new Manager on the same DataDir serves them. Handshakes still work
// after Close, from what is cached.
func (m *Manager) Close() error {
	m.closeOnce.Do(func() {
		m.closed.Store(true)
		m.cancel(ErrClosed)
		m.acme.stop()
	})
	return nil
}
