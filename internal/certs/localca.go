package certs

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// Lifetimes of the local CA's certificates. Leaves are short so a leaked key
// matters little; they are re-minted once a third of their life is left, so a
// daemon restarted now and then never serves an expired one.
const (
	rootValidity     = 10 * 365 * 24 * time.Hour
	leafValidity     = 30 * 24 * time.Hour
	leafRenewBefore  = leafValidity / 3
	clockSkew        = time.Hour
	maxTransientLeaf = 1024
)

// File names under DataDir/certs.
const (
	caCertFile = "ca.pem"
	caKeyFile  = "ca-key.pem"
	leafDir    = "local"
)

// ErrCAIncomplete is returned when only half of the local CA is on disk.
var ErrCAIncomplete = errors.New("local CA is incomplete")

// localCA is berth's own certificate authority: one ECDSA P-256 root that
// signs a leaf per served name, on demand.
type localCA struct {
	dir     string // DataDir/certs
	root    *x509.Certificate
	key     *ecdsa.PrivateKey
	rootPEM []byte
	now     func() time.Time
	logger  *slog.Logger

	// mu guards leaves; minting happens under it, so concurrent handshakes
	// for a new name mint it once.
	mu     sync.RWMutex
	leaves map[string]*leafEntry
}

// leafEntry is a cached leaf. persisted is false for names minted for a
// handshake but not served (SetHosts does not list them): those stay in
// memory, in bounded number, so random SNI values cannot fill the disk.
type leafEntry struct {
	cert      *tls.Certificate
	persisted bool
}

// loadOrCreateCA loads the root from dir, or creates it when neither file
// exists.
func loadOrCreateCA(dir string, now func() time.Time, logger *slog.Logger) (*localCA, error) {
	ca := &localCA{dir: dir, now: now, logger: logger, leaves: make(map[string]*leafEntry)}
	certPath, keyPath := filepath.Join(dir, caCertFile), filepath.Join(dir, caKeyFile)
	certPEM, certErr := os.ReadFile(certPath)
	keyPEM, keyErr := os.ReadFile(keyPath)
	switch {
	case certErr == nil && keyErr == nil:
		if err := ca.parse(certPEM, keyPEM); err != nil {
			return nil, fmt.Errorf("load local CA from %s: %w", dir, err)
		}
		if ca.now().After(ca.root.NotAfter) {
			return nil, fmt.Errorf("local CA root in %s expired on %s: remove %s and %s to create a new one, then trust the new root (berth ca export)",
				dir, ca.root.NotAfter.Format(time.DateOnly), caCertFile, caKeyFile)
		}
		return ca, nil
	case errors.Is(certErr, fs.ErrNotExist) && errors.Is(keyErr, fs.ErrNotExist):
		if err := ca.create(); err != nil {
			return nil, err
		}
		logger.Info("created local CA", "path", certPath, "subject", ca.root.Subject.CommonName,
			"expires", ca.root.NotAfter.Format(time.DateOnly))
		return ca, nil
	case certErr != nil && !errors.Is(certErr, fs.ErrNotExist):
		return nil, fmt.Errorf("load local CA: %w", certErr)
	case keyErr != nil && !errors.Is(keyErr, fs.ErrNotExist):
		return nil, fmt.Errorf("load local CA: %w", keyErr)
	default:
		return nil, fmt.Errorf("%w: %s and %s must both exist; restore the missing one, or remove both to create a new CA (clients must then trust the new root)",
			ErrCAIncomplete, certPath, keyPath)
	}
}

func (ca *localCA) parse(certPEM, keyPEM []byte) error {
	block, _ := pem.Decode(certPEM)
	if block == nil || block.Type != "CERTIFICATE" {
		return fmt.Errorf("%s: no CERTIFICATE block", caCertFile)
	}
	root, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return fmt.Errorf("%s: %w", caCertFile, err)
	}
	key, err := parseECKey(keyPEM)
	if err != nil {
		return fmt.Errorf("%s: %w", caKeyFile, err)
	}
	if !key.PublicKey.Equal(root.PublicKey) {
		return fmt.Errorf("%s does not hold the key of %s", caKeyFile, caCertFile)
	}
	ca.root, ca.key, ca.rootPEM = root, key, pem.EncodeToMemory(block)
	return nil
}

func (ca *localCA) create() error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("create local CA key: %w", err)
	}
	now := ca.now()
	name := "berth local CA"
	if host, err := os.Hostname(); err == nil && host != "" {
		name += " (" + host + ")"
	}
	tmpl := &x509.Certificate{
		SerialNumber:          randomSerial(),
		Subject:               pkix.Name{CommonName: name, Organization: []string{"berth"}},
		NotBefore:             now.Add(-clockSkew),
		NotAfter:              now.Add(rootValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return fmt.Errorf("create local CA: %w", err)
	}
	keyPEM, err := marshalECKey(key)
	if err != nil {
		return err
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	// Key first: a crash between the two writes leaves a key without a
	// certificate, which loadOrCreateCA reports rather than silently
	// replacing a root that clients may already trust.
	if err := writeFileAtomic(filepath.Join(ca.dir, caKeyFile), keyPEM, 0o600); err != nil {
		return err
	}
	if err := writeFileAtomic(filepath.Join(ca.dir, caCertFile), certPEM, 0o644); err != nil {
		return err
	}
	return ca.parse(certPEM, keyPEM)
}

// leaf returns a certificate for name, from memory, from disk or freshly
// minted. persist says whether name is served, and so whether the leaf is
// worth a file.
func (ca *localCA) leaf(name string, persist bool) (*tls.Certificate, error) {
	ca.mu.RLock()
	e := ca.leaves[name]
	ca.mu.RUnlock()
	if e != nil && ca.fresh(e.cert.Leaf) && (e.persisted || !persist) {
		return e.cert, nil
	}

	ca.mu.Lock()
	defer ca.mu.Unlock()
	e = ca.leaves[name]
	if e != nil && ca.fresh(e.cert.Leaf) {
		if persist && !e.persisted {
			if err := ca.writeLeaf(name, e.cert); err != nil {
				return nil, err
			}
			e.persisted = true
		}
		return e.cert, nil
	}
	var cert *tls.Certificate
	if persist {
		cert = ca.readLeaf(name)
	}
	if cert == nil {
		var err error
		if cert, err = ca.mint(name); err != nil {
			return nil, err
		}
		if persist {
			if err := ca.writeLeaf(name, cert); err != nil {
				return nil, err
			}
		}
		ca.logger.Debug("minted local certificate", "host", name, "expires", cert.Leaf.NotAfter, "persisted", persist)
	}
	if !persist {
		ca.evictTransientLocked()
	}
	ca.leaves[name] = &leafEntry{cert: cert, persisted: persist}
	return cert, nil
}

// evictTransientLocked drops every unpersisted leaf once there are too many;
// they are cheap to mint again.
func (ca *localCA) evictTransientLocked() {
	n := 0
	for _, e := range ca.leaves {
		if !e.persisted {
			n++
		}
	}
	if n < maxTransientLeaf {
		return
	}
	for name, e := range ca.leaves {
		if !e.persisted {
			delete(ca.leaves, name)
		}
	}
}

// fresh reports whether leaf is valid now and not yet due for renewal.
func (ca *localCA) fresh(leaf *x509.Certificate) bool {
	now := ca.now()
	return now.After(leaf.NotBefore) && now.Before(leaf.NotAfter.Add(-leafRenewBefore))
}

func (ca *localCA) mint(name string) (*tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("mint certificate for %s: %w", name, err)
	}
	now := ca.now()
	tmpl := &x509.Certificate{
		SerialNumber: randomSerial(),
		Subject:      pkix.Name{CommonName: name, Organization: []string{"berth"}},
		NotBefore:    now.Add(-clockSkew),
		NotAfter:     now.Add(leafValidity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	if ip := net.ParseIP(name); ip != nil {
		tmpl.IPAddresses = []net.IP{ip}
	} else {
		tmpl.DNSNames = []string{name}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.root, &key.PublicKey, ca.key)
	if err != nil {
		return nil, fmt.Errorf("mint certificate for %s: %w", name, err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("mint certificate for %s: %w", name, err)
	}
	return &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, nil
}

// leafPath names the file of a leaf; ':' of IPv6 addresses is not welcome in
// every file system.
func (ca *localCA) leafPath(name string) string {
	return filepath.Join(ca.dir, leafDir, strings.ReplaceAll(name, ":", "_")+".pem")
}

// readLeaf loads a persisted leaf, or returns nil when there is none or it
// is unusable (stale, for another name, signed by an earlier root): the
// caller mints a new one.
func (ca *localCA) readLeaf(name string) *tls.Certificate {
	data, err := os.ReadFile(ca.leafPath(name))
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			ca.logger.Warn("reading local certificate; minting a new one", "host", name, "err", err)
		}
		return nil
	}
	cert, err := tls.X509KeyPair(data, data)
	if err != nil {
		ca.logger.Warn("parsing local certificate; minting a new one", "host", name, "err", err)
		return nil
	}
	leaf := cert.Leaf
	if leaf == nil || leaf.VerifyHostname(name) != nil || leaf.CheckSignatureFrom(ca.root) != nil || !ca.fresh(leaf) {
		return nil
	}
	return &cert
}

func (ca *localCA) writeLeaf(name string, cert *tls.Certificate) error {
	key, ok := cert.PrivateKey.(*ecdsa.PrivateKey)
	if !ok {
		return fmt.Errorf("persist certificate for %s: unexpected key type %T", name, cert.PrivateKey)
	}
	keyPEM, err := marshalECKey(key)
	if err != nil {
		return err
	}
	data := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Certificate[0]})
	data = append(data, keyPEM...)
	if err := ensureDir(filepath.Join(ca.dir, leafDir)); err != nil {
		return err
	}
	return writeFileAtomic(ca.leafPath(name), data, 0o600)
}

func marshalECKey(key *ecdsa.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("encode private key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

func parseECKey(data []byte) (*ecdsa.PrivateKey, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("no PEM block")
	}
	var (
		key crypto.PrivateKey
		err error
	)
	switch block.Type {
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(block.Bytes)
	default:
		return nil, fmt.Errorf("unexpected PEM block %q", block.Type)
	}
	if err != nil {
		return nil, err
	}
	ec, ok := key.(*ecdsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("key is %T, want ECDSA", key)
	}
	return ec, nil
}

// randomSerial returns a 128-bit positive serial, as CAs must not reuse one.
func randomSerial() *big.Int {
	limit := new(big.Int).Lsh(big.NewInt(1), 128)
	n, err := rand.Int(rand.Reader, limit)
	if err != nil {
		panic(fmt.Sprintf("crypto/rand failed: %v", err)) // crypto/rand never fails on Linux
	}
	return n.Add(n, big.NewInt(1))
}
