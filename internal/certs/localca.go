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
	"slices"
	"strings"
	"sync"
	"time"
)

// Lifetimes of the local CA's certificates. Leaves are short so a leaked key
// matters little; they are re-minted once a third of their life is left, so a
// daemon restarted now and then never serves an expired one. The root lasts
// two years, not the ten of earlier versions, so that a root trusted on a
// machine long forgotten stops vouching by itself; it is re-issued at a
// start less than rootRenewBefore from its end (users trust the new one).
const (
	rootValidity     = 2 * 365 * 24 * time.Hour
	rootRenewBefore  = 60 * 24 * time.Hour
	leafValidity     = 30 * 24 * time.Hour
	leafRenewBefore  = leafValidity / 3
	clockSkew        = time.Hour
	maxTransientLeaf = 1024
)

// File names under DataDir/certs. A root being replaced is first written
// next to the current one with nextSuffix (key, then certificate); the
// certificate's .next file is the commit point, and a start that finds it
// finishes the swap (see rotate).
const (
	caCertFile = "ca.pem"
	caKeyFile  = "ca-key.pem"
	leafDir    = "local"
	nextSuffix = ".next"
)

// The root is constrained (RFC 5280 section 4.2.1.10, marked critical) to
// the names berth serves with it: its domain, and names no public CA
// issues for. A client that trusts the root thus trusts it for nothing
// else, even if its key leaks. IP addresses are limited to the loopback
// ones: a certificate for a LAN address would vouch for other machines.
var (
	localSuffixes = []string{"localhost", "internal", "local", "home.arpa"}
	loopbackNets  = []*net.IPNet{
		{IP: net.IPv4(127, 0, 0, 0).To4(), Mask: net.CIDRMask(8, 32)},
		{IP: net.IPv6loopback, Mask: net.CIDRMask(128, 128)},
	}
)

// permittedDomains are the DNS name constraints of a root for domain: the
// domain (unless a local suffix already covers it) and the local suffixes.
func permittedDomains(domain string) []string {
	for _, s := range localSuffixes {
		if domain == s || strings.HasSuffix(domain, "."+s) {
			return slices.Clone(localSuffixes)
		}
	}
	return append([]string{domain}, localSuffixes...)
}

// ErrCAIncomplete is returned when only half of the local CA is on disk.
var ErrCAIncomplete = errors.New("local CA is incomplete")

// localCA is berth's own certificate authority: one ECDSA P-256 root that
// signs a leaf per served name, on demand.
type localCA struct {
	dir     string // DataDir/certs
	domain  string // berth's domain, the first of the root's permitted names
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
// exists. A root that does not carry the name constraints for domain (one
// made by an earlier version, or for another --domain), or that ends within
// rootRenewBefore, is replaced by a new one, and the log says so: clients
// that trusted the old root must trust the new one.
func loadOrCreateCA(dir, domain string, now func() time.Time, logger *slog.Logger) (*localCA, error) {
	ca := &localCA{dir: dir, domain: domain, now: now, logger: logger, leaves: make(map[string]*leafEntry)}
	if err := ca.finishRotation(); err != nil {
		return nil, err
	}
	certPath, keyPath := filepath.Join(dir, caCertFile), filepath.Join(dir, caKeyFile)
	certPEM, certErr := os.ReadFile(certPath)
	keyPEM, keyErr := os.ReadFile(keyPath)
	switch {
	case certErr == nil && keyErr == nil:
		if err := ca.parse(certPEM, keyPEM); err != nil {
			return nil, fmt.Errorf("load local CA from %s: %w", dir, err)
		}
		why := ca.replaceReason()
		if why == "" {
			return ca, nil
		}
		old := ca.root
		if err := ca.rotate(); err != nil {
			return nil, fmt.Errorf("replace local CA root (%s): %w", why, err)
		}
		logger.Warn("replaced the local CA root: clients that trusted the old one must trust the new one (berth ca export)",
			"reason", why, "path", certPath, "old_expires", old.NotAfter.Format(time.DateOnly),
			"expires", ca.root.NotAfter.Format(time.DateOnly), "names", strings.Join(ca.root.PermittedDNSDomains, ","))
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

// replaceReason says why the loaded root must be replaced, or "".
func (ca *localCA) replaceReason() string {
	r := ca.root
	switch {
	case !r.PermittedDNSDomainsCritical || len(r.PermittedDNSDomains) == 0:
		return "it has no name constraints, so it could vouch for any name"
	case !slices.Equal(r.PermittedDNSDomains, permittedDomains(ca.domain)):
		return fmt.Sprintf("it is constrained to %s, not to the names of --domain %s", strings.Join(r.PermittedDNSDomains, ","), ca.domain)
	case !slices.EqualFunc(r.PermittedIPRanges, loopbackNets, func(a, b *net.IPNet) bool { return a.String() == b.String() }):
		return "its address constraints are not the loopback ones"
	case ca.now().After(r.NotAfter):
		return "it expired on " + r.NotAfter.Format(time.DateOnly)
	case ca.now().Add(rootRenewBefore).After(r.NotAfter):
		return "it expires on " + r.NotAfter.Format(time.DateOnly)
	}
	return ""
}

// rootTemplate is the certificate of a new root.
func (ca *localCA) rootTemplate() *x509.Certificate {
	now := ca.now()
	name := "berth local CA"
	if host, err := os.Hostname(); err == nil && host != "" {
		name += " (" + host + ")"
	}
	return &x509.Certificate{
		SerialNumber:                randomSerial(),
		Subject:                     pkix.Name{CommonName: name, Organization: []string{"berth"}},
		NotBefore:                   now.Add(-clockSkew),
		NotAfter:                    now.Add(rootValidity),
		KeyUsage:                    x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid:       true,
		IsCA:                        true,
		MaxPathLenZero:              true,
		PermittedDNSDomainsCritical: true,
		PermittedDNSDomains:         permittedDomains(ca.domain),
		PermittedIPRanges:           loopbackNets,
	}
}

// newRoot makes a new root key and certificate, in PEM.
func (ca *localCA) newRoot() (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("create local CA key: %w", err)
	}
	tmpl := ca.rootTemplate()
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, fmt.Errorf("create local CA: %w", err)
	}
	if keyPEM, err = marshalECKey(key); err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), keyPEM, nil
}

// rotate replaces the root on disk with a new one. The new key and
// certificate are written as .next files first (the certificate's is the
// commit point), then renamed over the old ones; a crash anywhere leaves
// either the old pair or a swap that finishRotation completes at the next
// start. Leaves signed by the old root are deleted: none would verify.
func (ca *localCA) rotate() error {
	certPEM, keyPEM, err := ca.newRoot()
	if err != nil {
		return err
	}
	certPath, keyPath := filepath.Join(ca.dir, caCertFile), filepath.Join(ca.dir, caKeyFile)
	if err := writeFileAtomic(keyPath+nextSuffix, keyPEM, 0o600); err != nil {
		return err
	}
	if err := writeFileAtomic(certPath+nextSuffix, certPEM, 0o644); err != nil {
		return err
	}
	if err := ca.finishRotation(); err != nil {
		return err
	}
	if err := os.RemoveAll(filepath.Join(ca.dir, leafDir)); err != nil {
		ca.logger.Warn("removing certificates of the old local CA root", "err", err)
	}
	ca.mu.Lock()
	clear(ca.leaves)
	ca.mu.Unlock()
	return ca.parse(certPEM, keyPEM)
}

// finishRotation completes a root swap that rotate committed (the
// certificate's .next file exists) and drops one it did not (a key's .next
// file alone).
func (ca *localCA) finishRotation() error {
	certPath, keyPath := filepath.Join(ca.dir, caCertFile), filepath.Join(ca.dir, caKeyFile)
	_, certErr := os.Stat(certPath + nextSuffix)
	_, keyErr := os.Stat(keyPath + nextSuffix)
	switch {
	case certErr != nil && keyErr != nil:
		return nil
	case certErr != nil:
		// Not committed: the old pair is whole and stays.
		if err := os.Remove(keyPath + nextSuffix); err != nil {
			return fmt.Errorf("local CA: %w", err)
		}
		return nil
	}
	if keyErr == nil { // else the key was renamed already
		if err := os.Rename(keyPath+nextSuffix, keyPath); err != nil {
			return fmt.Errorf("local CA: %w", err)
		}
	}
	if err := os.Rename(certPath+nextSuffix, certPath); err != nil {
		return fmt.Errorf("local CA: %w", err)
	}
	return syncDir(ca.dir)
}

// permits reports whether the root's name constraints allow a leaf for
// name (normalized), so that nothing is minted that would not verify.
func (ca *localCA) permits(name string) bool {
	if ip := net.ParseIP(name); ip != nil {
		return slices.ContainsFunc(ca.root.PermittedIPRanges, func(n *net.IPNet) bool { return n.Contains(ip) })
	}
	return slices.ContainsFunc(ca.root.PermittedDNSDomains, func(d string) bool {
		return name == d || strings.HasSuffix(name, "."+d)
	})
}

func (ca *localCA) create() error {
	certPEM, keyPEM, err := ca.newRoot()
	if err != nil {
		return err
	}
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

// fresh reports whether leaf is valid now and not yet due for renewal. A
// leaf that ends with its root (minted near the root's end) is as good as
// any new one could be, so it is kept until it expires rather than
// re-minted on every handshake.
func (ca *localCA) fresh(leaf *x509.Certificate) bool {
	now := ca.now()
	if !now.After(leaf.NotBefore) || !now.Before(leaf.NotAfter) {
		return false
	}
	return now.Before(leaf.NotAfter.Add(-leafRenewBefore)) || !leaf.NotAfter.Before(ca.root.NotAfter)
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
	if tmpl.NotAfter.After(ca.root.NotAfter) {
		tmpl.NotAfter = ca.root.NotAfter // it would not verify past its root
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
