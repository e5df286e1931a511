package certs

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berth-dev/berth/internal/testutil"
)

// TestRootIsNameConstrained parses the root and checks its critical name
// constraints, then has crypto/x509 verify leaves signed with the root's
// own key: one for a served name passes, names outside the constraints
// fail even though the signature is good.
func TestRootIsNameConstrained(t *testing.T) {
	m := newTestManager(t, Options{Domain: "berth.test"})
	root := rootOf(t, m)
	assert.True(t, root.IsCA)
	assert.True(t, root.PermittedDNSDomainsCritical, "critical: a client that cannot check the constraints must reject the root")
	assert.Equal(t, []string{"berth.test", "localhost", "internal", "local", "home.arpa"}, root.PermittedDNSDomains)
	var ranges []string
	for _, r := range root.PermittedIPRanges {
		ranges = append(ranges, r.String())
	}
	assert.Equal(t, []string{"127.0.0.0/8", "::1/128"}, ranges)
	assert.WithinDuration(t, time.Now().Add(rootValidity), root.NotAfter, 2*time.Hour)
	assert.Less(t, root.NotAfter.Sub(root.NotBefore), 3*365*24*time.Hour, "shorter than the 10 years of old")

	roots := poolOf(t, m.CARootPEM())
	for _, tc := range []struct {
		name string
		ok   bool
	}{
		{"web.shop.berth.test", true},
		{"web.shop.localhost", true},
		{"api.shop.internal", true},
		{"127.0.0.1", true},
		{"::1", true},
		{"www.google.com", false},
		{"berth.test.evil.com", false},
		{"xberth.test", false},
		{"10.1.2.3", false},
		{"192.168.1.1", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			leaf := forgeLeaf(t, m.ca, tc.name)
			_, err := leaf.Verify(x509.VerifyOptions{Roots: roots, DNSName: tc.name})
			if tc.ok {
				require.NoError(t, err)
				return
			}
			var invalid x509.CertificateInvalidError
			require.True(t, errors.As(err, &invalid), "want a name-constraint failure, got %v", err)
			assert.Equal(t, x509.CANotAuthorizedForThisName, invalid.Reason, "%v", err)
		})
	}
}

// TestCurlRefusesNamesOutsideTheRoot checks the constraints with another TLS
// stack: curl over OpenSSL, trusting the root, refuses a server whose leaf
// the root's own key signed for a name outside them, and accepts one for a
// name inside.
func TestCurlRefusesNamesOutsideTheRoot(t *testing.T) {
	curl, err := exec.LookPath("curl")
	if err != nil {
		t.Skip("curl is not installed")
	}
	m := newTestManager(t, Options{})
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	require.NoError(t, os.WriteFile(caFile, m.CARootPEM(), 0o600))
	for _, tc := range []struct {
		name string
		ok   bool
	}{
		{"web.shop.localhost", true},
		{"bank.example.com", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			key, leaf := forgeLeafWithKey(t, m.ca, tc.name)
			cfg := &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{leaf.Raw}, PrivateKey: key, Leaf: leaf}}}
			addr := serveTLS(t, listen(t), cfg, appHandler)
			port := portFromAddr(addr)
			out, err := exec.Command(curl, "-sS", "--cacert", caFile,
				"--resolve", tc.name+":"+port+":127.0.0.1",
				"https://"+tc.name+":"+port+"/").CombinedOutput()
			if tc.ok {
				require.NoError(t, err, "%s", out)
				return
			}
			require.Error(t, err, "OpenSSL must refuse a name outside the constraints: %s", out)
			t.Logf("curl: %s", out)
		})
	}
}

// forgeLeaf signs a leaf for name with the CA's key directly, as someone
// holding the key could, bypassing the Manager's own checks.
func forgeLeaf(t *testing.T, ca *localCA, name string) *x509.Certificate {
	t.Helper()
	_, leaf := forgeLeafWithKey(t, ca, name)
	return leaf
}

func forgeLeafWithKey(t *testing.T, ca *localCA, name string) (*ecdsa.PrivateKey, *x509.Certificate) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: randomSerial(),
		Subject:      pkix.Name{CommonName: name},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	if ip := net.ParseIP(name); ip != nil {
		tmpl.IPAddresses = []net.IP{ip}
	} else {
		tmpl.DNSNames = []string{name}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.root, &key.PublicKey, ca.key)
	require.NoError(t, err)
	leaf, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	return key, leaf
}

// TestHandshakeOnlyForRoutedHosts serves TLS as the edge does and checks
// that a handshake for a routed host works, and one for a host under the
// domain that no route serves fails without a certificate being minted or
// stored.
func TestHandshakeOnlyForRoutedHosts(t *testing.T) {
	dataDir := t.TempDir()
	var mu sync.Mutex
	routed := map[string]bool{"web.shop.localhost": true}
	m := newTestManager(t, Options{DataDir: dataDir, Routed: func(h string) bool {
		mu.Lock()
		defer mu.Unlock()
		return routed[h]
	}})
	require.NoError(t, m.SetHosts(t.Context(), []string{"web.shop.localhost"}))
	addr := serveTLS(t, listen(t), m.TLSConfig(), appHandler)
	port := portFromAddr(addr)
	c := newClient(t, poolOf(t, m.CARootPEM()), addr, false)

	resp, body := get(t, c, "https://web.shop.localhost:"+port+"/")
	assert.Equal(t, 200, resp.StatusCode)
	assert.Contains(t, body, "host=web.shop.localhost")

	for _, host := range []string{"ghost.shop.localhost", "localhost", "anything.internal"} {
		_, err := c.Get("https://" + host + ":" + port + "/")
		require.Error(t, err, host)
		// The client sees the server's alert, not a certificate to doubt.
		var certErr *tls.CertificateVerificationError
		assert.False(t, errors.As(err, &certErr), "%s: no certificate was offered: %v", host, err)
		_, err = m.GetCertificate(hello(host))
		require.ErrorIs(t, err, ErrUnknownHost, host)
		assert.ErrorContains(t, err, "no route serves "+host)
	}
	m.ca.mu.RLock()
	assert.Len(t, m.ca.leaves, 1, "nothing minted for unrouted names")
	assert.Contains(t, m.ca.leaves, "web.shop.localhost")
	m.ca.mu.RUnlock()
	files, err := os.ReadDir(filepath.Join(dataDir, "certs", leafDir))
	require.NoError(t, err)
	require.Len(t, files, 1, "nothing stored for unrouted names")
	assert.Equal(t, "web.shop.localhost.pem", files[0].Name())

	// A route appears: its host gets a certificate at once.
	mu.Lock()
	routed["ghost.shop.localhost"] = true
	mu.Unlock()
	resp, _ = get(t, c, "https://ghost.shop.localhost:"+port+"/")
	assert.Equal(t, 200, resp.StatusCode)

	// A route goes: no new handshake for its host.
	mu.Lock()
	delete(routed, "web.shop.localhost")
	mu.Unlock()
	c2 := newClient(t, poolOf(t, m.CARootPEM()), addr, false)
	_, err = c2.Get("https://web.shop.localhost:" + port + "/")
	require.Error(t, err)
}

// writeOldRoot puts a root as earlier versions made it (ten years, no name
// constraints) in dataDir, with a leaf it signed.
func writeOldRoot(t *testing.T, dataDir string, notAfter time.Time, constrain []string) *x509.Certificate {
	t.Helper()
	dir := filepath.Join(dataDir, "certs")
	require.NoError(t, ensureDir(dir))
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber:          randomSerial(),
		Subject:               pkix.Name{CommonName: "berth local CA (old)"},
		NotBefore:             notAfter.Add(-10 * 365 * 24 * time.Hour),
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	if constrain != nil {
		tmpl.PermittedDNSDomainsCritical = true
		tmpl.PermittedDNSDomains = constrain
		tmpl.PermittedIPRanges = loopbackNets
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	keyPEM, err := marshalECKey(key)
	require.NoError(t, err)
	require.NoError(t, writeFileAtomic(filepath.Join(dir, caKeyFile), keyPEM, 0o600))
	require.NoError(t, writeFileAtomic(filepath.Join(dir, caCertFile), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644))
	root, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	old := &localCA{dir: dir, root: root, key: key, now: time.Now, logger: slog.New(slog.DiscardHandler)}
	leaf, err := old.mint("web.shop.localhost")
	require.NoError(t, err)
	require.NoError(t, old.writeLeaf("web.shop.localhost", leaf))
	return root
}

// TestOldRootIsReplaced starts on roots a user may have: one from an
// earlier version (unconstrained), one for another domain, one about to
// expire and one expired. Each is replaced by a constrained root, the log
// says so, and the old root's leaves are gone.
func TestOldRootIsReplaced(t *testing.T) {
	for _, tc := range []struct {
		name      string
		notAfter  time.Time
		constrain []string
		reason    string
	}{
		{"unconstrained root of an earlier version", time.Now().Add(9 * 365 * 24 * time.Hour), nil, "no name constraints"},
		{"root for another domain", time.Now().Add(365 * 24 * time.Hour), permittedDomains("old.test"), "not to the names of --domain localhost"},
		{"root about to expire", time.Now().Add(7 * 24 * time.Hour), permittedDomains("localhost"), "it expires on"},
		{"expired root", time.Now().Add(-24 * time.Hour), permittedDomains("localhost"), "it expired on"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dataDir := t.TempDir()
			old := writeOldRoot(t, dataDir, tc.notAfter, tc.constrain)
			logs := &testutil.SyncBuffer{}
			m := newTestManager(t, Options{DataDir: dataDir, Logger: slog.New(slog.NewTextHandler(logs, nil))})
			root := rootOf(t, m)
			assert.False(t, root.Equal(old), "a new root")
			assert.True(t, root.PermittedDNSDomainsCritical)
			assert.Equal(t, permittedDomains("localhost"), root.PermittedDNSDomains)
			assert.Contains(t, logs.String(), "replaced the local CA root")
			assert.Contains(t, logs.String(), "must trust the new one")
			assert.Contains(t, logs.String(), tc.reason)
			assert.NoFileExists(t, filepath.Join(dataDir, "certs", leafDir, "web.shop.localhost.pem"), "the old root's leaves are gone")

			onDisk, err := os.ReadFile(filepath.Join(dataDir, "certs", caCertFile))
			require.NoError(t, err)
			assert.Equal(t, m.CARootPEM(), onDisk)
			require.NoError(t, m.SetHosts(t.Context(), []string{"web.shop.localhost"}))
			cert, err := m.GetCertificate(hello("web.shop.localhost"))
			require.NoError(t, err)
			require.NoError(t, cert.Leaf.CheckSignatureFrom(root))
			require.NoError(t, m.Close())

			// The next start keeps it, quietly.
			logs2 := &testutil.SyncBuffer{}
			m2 := newTestManager(t, Options{DataDir: dataDir, Logger: slog.New(slog.NewTextHandler(logs2, nil))})
			assert.Equal(t, m.CARootPEM(), m2.CARootPEM())
			assert.NotContains(t, logs2.String(), "replaced")
		})
	}
}

// TestRootRotationSurvivesACrash leaves a rotation at each point a crash
// could stop it and checks the next start ends with a whole, matching,
// constrained root.
func TestRootRotationSurvivesACrash(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T, dir string, nextCert, nextKey []byte)
	}{
		{"only the new key written", func(t *testing.T, dir string, _, nextKey []byte) {
			require.NoError(t, os.WriteFile(filepath.Join(dir, caKeyFile+nextSuffix), nextKey, 0o600))
		}},
		{"both written, none renamed", func(t *testing.T, dir string, nextCert, nextKey []byte) {
			require.NoError(t, os.WriteFile(filepath.Join(dir, caKeyFile+nextSuffix), nextKey, 0o600))
			require.NoError(t, os.WriteFile(filepath.Join(dir, caCertFile+nextSuffix), nextCert, 0o644))
		}},
		{"key renamed, certificate not", func(t *testing.T, dir string, nextCert, nextKey []byte) {
			require.NoError(t, os.WriteFile(filepath.Join(dir, caKeyFile), nextKey, 0o600))
			require.NoError(t, os.WriteFile(filepath.Join(dir, caCertFile+nextSuffix), nextCert, 0o644))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dataDir := t.TempDir()
			writeOldRoot(t, dataDir, time.Now().Add(9*365*24*time.Hour), nil)
			dir := filepath.Join(dataDir, "certs")
			ca := &localCA{dir: dir, domain: "localhost", now: time.Now, logger: slog.New(slog.DiscardHandler)}
			nextCert, nextKey, err := ca.newRoot()
			require.NoError(t, err)
			tc.setup(t, dir, nextCert, nextKey)

			m := newTestManager(t, Options{DataDir: dataDir})
			root := rootOf(t, m)
			assert.True(t, root.PermittedDNSDomainsCritical)
			assert.NoFileExists(t, filepath.Join(dir, caKeyFile+nextSuffix))
			assert.NoFileExists(t, filepath.Join(dir, caCertFile+nextSuffix))
			require.NoError(t, m.SetHosts(t.Context(), []string{"web.shop.localhost"}))
			cert, err := m.GetCertificate(hello("web.shop.localhost"))
			require.NoError(t, err)
			require.NoError(t, cert.Leaf.CheckSignatureFrom(root), "key and certificate match")
		})
	}
}

// TestLeafNearTheRootsEnd checks that a leaf minted in the root's last
// weeks ends with the root (it would not verify past it) and is then kept,
// not minted again on every handshake.
func TestLeafNearTheRootsEnd(t *testing.T) {
	m := newTestManager(t, Options{})
	require.NoError(t, m.SetHosts(t.Context(), []string{"web.shop.localhost"}))
	end := m.ca.root.NotAfter
	for _, before := range []time.Duration{20 * 24 * time.Hour, 5 * 24 * time.Hour} {
		at := end.Add(-before)
		m.ca.now = func() time.Time { return at }
		first, err := m.GetCertificate(hello("web.shop.localhost"))
		require.NoError(t, err)
		assert.Equal(t, end, first.Leaf.NotAfter, "capped at the root's end")
		again, err := m.GetCertificate(hello("web.shop.localhost"))
		require.NoError(t, err)
		assert.Same(t, first, again, "kept, not minted again")
	}
}
