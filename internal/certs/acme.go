package certs

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"

	"github.com/caddyserver/certmagic"
)

// ErrCertificatePending is returned by GetCertificate for an ACME name whose
// certificate has not been obtained yet (first order still running, or
// failed and waiting for certmagic's next retry).
var ErrCertificatePending = errors.New("certificate not issued yet")

// errHostRemoved is why a name's background ACME work is cancelled.
var errHostRemoved = errors.New("host no longer served")

// acmeTLS1 is the ALPN protocol of the TLS-ALPN-01 challenge (RFC 8737).
const acmeTLS1 = "acme-tls/1"

// acmeManager obtains and renews certificates for public names through
// certmagic, one background management per name.
type acmeManager struct {
	magic   *certmagic.Config
	issuer  *certmagic.ACMEIssuer
	cache   *certmagic.Cache
	storage *drainingStorage
	logger  *slog.Logger
	ctx     context.Context // ends at Manager.Close

	mu      sync.Mutex
	managed map[string]context.CancelCauseFunc
	lastErr map[string]error // the last failed order per name, for handshake errors
}

func newACME(ctx context.Context, opts Options, storageDir string, logger *slog.Logger) (*acmeManager, error) {
	a := &acmeManager{
		logger:  logger,
		ctx:     ctx,
		storage: newDrainingStorage(storageDir),
		managed: make(map[string]context.CancelCauseFunc),
		lastErr: make(map[string]error),
	}
	var roots *x509.CertPool
	if opts.ACMECARoot != "" {
		pemData, err := os.ReadFile(opts.ACMECARoot)
		if err != nil {
			return nil, fmt.Errorf("read ACME CA root: %w", err)
		}
		if roots, err = x509.SystemCertPool(); err != nil {
			roots = x509.NewCertPool()
		}
		if !roots.AppendCertsFromPEM(pemData) {
			return nil, fmt.Errorf("ACME CA root %s: no PEM certificate found", opts.ACMECARoot)
		}
	}
	zl := newZapLogger(logger)
	a.cache = certmagic.NewCache(certmagic.CacheOptions{
		// One config manages every ACME certificate of this Manager.
		GetConfigForCert: func(certmagic.Certificate) (*certmagic.Config, error) { return a.magic, nil },
		Logger:           zl,
	})
	a.magic = certmagic.New(a.cache, certmagic.Config{
		Storage:        a.storage,
		Logger:         zl,
		OnEvent:        a.onEvent,
		ShouldEmitFunc: func(event string) bool { return event == "cert_failed" || event == "cert_obtained" },
	})
	a.issuer = certmagic.NewACMEIssuer(a.magic, certmagic.ACMEIssuer{
		CA:                      opts.ACMECA,
		Email:                   opts.ACMEEmail,
		Agreed:                  true,
		DisableHTTPChallenge:    opts.DisableHTTPChallenge,
		DisableTLSALPNChallenge: opts.DisableTLSALPNChallenge,
		// berth's own listeners normally hold these ports; certmagic sees
		// them busy and lets HTTPChallengeHandler and TLSConfig answer.
		AltHTTPPort:    opts.HTTPPort,
		AltTLSALPNPort: opts.HTTPSPort,
		TrustedRoots:   roots,
		Logger:         zl,
	})
	a.magic.Issuers = []certmagic.Issuer{a.issuer}
	return a, nil
}

// onEvent remembers why the last order for a name failed, so a handshake for
// it can say so instead of a bare "no certificate".
func (a *acmeManager) onEvent(_ context.Context, event string, data map[string]any) error {
	name, _ := data["identifier"].(string)
	if name == "" {
		return nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	switch event {
	case "cert_failed":
		err, _ := data["error"].(error)
		if err == nil {
			err = errors.New("unknown error")
		}
		a.lastErr[name] = err
		a.logger.Error("ACME certificate order failed; certmagic retries with backoff",
			"host", name, "renewal", data["renewal"], "err", err)
	case "cert_obtained":
		delete(a.lastErr, name)
		a.logger.Info("ACME certificate obtained", "host", name, "renewal", data["renewal"])
	}
	return nil
}

// manage makes hosts the exact set of managed names: new names start
// background management (load from storage, else order), dropped names stop
// it and leave the in-memory cache. Certificates stay in storage, so a name
// that comes back is served at once.
func (a *acmeManager) manage(hosts map[string]struct{}) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	var gone []certmagic.SubjectIssuer
	for name, cancel := range a.managed {
		if _, ok := hosts[name]; !ok {
			cancel(errHostRemoved)
			delete(a.managed, name)
			delete(a.lastErr, name)
			gone = append(gone, certmagic.SubjectIssuer{Subject: name})
		}
	}
	if len(gone) > 0 {
		a.cache.RemoveManaged(gone)
	}
	for name := range hosts {
		if _, ok := a.managed[name]; ok {
			continue
		}
		ctx, cancel := context.WithCancelCause(a.ctx)
		if err := a.magic.ManageAsync(ctx, []string{name}); err != nil {
			cancel(err)
			return fmt.Errorf("manage ACME certificate for %s: %w", name, err)
		}
		a.managed[name] = cancel
		a.logger.Info("managing ACME certificate", "host", name)
	}
	return nil
}

// certificate serves the managed certificate of name, or says why there is
// none yet.
func (a *acmeManager) certificate(hello *tls.ClientHelloInfo, name string) (*tls.Certificate, error) {
	cert, err := a.magic.GetCertificate(hello)
	if err == nil && cert != nil && len(cert.Certificate) > 0 {
		return cert, nil
	}
	a.mu.Lock()
	last := a.lastErr[name]
	a.mu.Unlock()
	if last != nil {
		return nil, fmt.Errorf("%w for %s: the last ACME order failed (%v); it is retried with backoff, check the DNS name points here and ports 80/443 reach berth", ErrCertificatePending, name, last)
	}
	return nil, fmt.Errorf("%w for %s: the ACME order is in progress", ErrCertificatePending, name)
}

// challenge answers a TLS-ALPN-01 validation handshake.
func (a *acmeManager) challenge(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	return a.magic.GetCertificate(hello)
}

// stop ends background management and the cache's maintenance goroutine,
// then waits for certmagic to finish with the disk.
func (a *acmeManager) stop() {
	a.mu.Lock()
	for name, cancel := range a.managed {
		cancel(ErrClosed)
		delete(a.managed, name)
	}
	a.mu.Unlock()
	a.cache.Stop()
	if !a.storage.drain(drainTimeout) {
		a.logger.Warn("ACME work still holds storage after close", "timeout", drainTimeout)
	}
}
