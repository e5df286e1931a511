package certs

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func rootOf(t testing.TB, m *Manager) *x509.Certificate {
	t.Helper()
	block, _ := pem.Decode(m.CARootPEM())
	require.NotNil(t, block)
	root, err := x509.ParseCertificate(block.Bytes)
	require.NoError(t, err)
	return root
}

func TestLocalCAServesHTTP1AndHTTP2(t *testing.T) {
	routed := map[string]bool{"web.shop.localhost": true, "api.shop.localhost": true, "localhost": true, "new.shop.localhost": true}
	m := newTestManager(t, Options{Routed: func(h string) bool { return routed[h] }})
	require.NoError(t, m.SetHosts(t.Context(), []string{"web.shop.localhost", "api.shop.localhost", "localhost"}))
	addr := serveTLS(t, listen(t), m.TLSConfig(), HSTS(appHandler, 24*time.Hour))
	port := portFromAddr(addr)
	roots := poolOf(t, m.CARootPEM())
	root := rootOf(t, m)

	for _, tc := range []struct {
		name, host string
		h2         bool
		proto      string
	}{
		{"HTTP/1.1 served host", "web.shop.localhost", false, "HTTP/1.1"},
		{"HTTP/2 served host", "web.shop.localhost", true, "HTTP/2.0"},
		{"HTTP/2 second host", "api.shop.localhost", true, "HTTP/2.0"},
		{"HTTP/1.1 routed host minted before SetHosts lists it", "new.shop.localhost", false, "HTTP/1.1"},
		{"HTTP/2 localhost", "localhost", true, "HTTP/2.0"},
		{"HTTP/1.1 IP address without SNI", "127.0.0.1", false, "HTTP/1.1"},
		{"HTTP/2 IP address without SNI", "127.0.0.1", true, "HTTP/2.0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newClient(t, roots, addr, tc.h2)
			resp, body := get(t, c, "https://"+tc.host+":"+port+"/p?q=1")
			require.Equal(t, http.StatusOK, resp.StatusCode)
			assert.Equal(t, tc.proto, resp.Proto)
			if tc.h2 {
				assert.Equal(t, 2, resp.ProtoMajor)
			}
			assert.Contains(t, body, "path=/p?q=1")
			assert.Equal(t, "max-age=86400", resp.Header.Get("Strict-Transport-Security"))

			require.NotEmpty(t, resp.TLS.VerifiedChains)
			chain := resp.TLS.VerifiedChains[0]
			require.Len(t, chain, 2, "leaf signed directly by the root")
			assert.True(t, chain[1].Equal(root))
			leaf := chain[0]
			require.NoError(t, leaf.VerifyHostname(tc.host))
			assert.WithinDuration(t, time.Now().Add(leafValidity), leaf.NotAfter, 2*time.Hour)
			assert.GreaterOrEqual(t, resp.TLS.Version, uint16(0x0303), "TLS 1.2 or later")
		})
	}
}

func TestLocalCACustomDomain(t *testing.T) {
	m := newTestManager(t, Options{Domain: "Berth.Test."})
	local := []string{"web.shop.berth.test", "berth.test", "a.b.berth.test", "printer.local", "db.internal", "nas.home.arpa"}
	require.NoError(t, m.SetHosts(t.Context(), local))
	addr := serveTLS(t, listen(t), m.TLSConfig(), appHandler)
	c := newClient(t, poolOf(t, m.CARootPEM()), addr, true)
	resp, _ := get(t, c, "https://web.shop.berth.test:"+portFromAddr(addr)+"/")
	assert.Equal(t, http.StatusOK, resp.StatusCode)

	for _, name := range []string{"shop.example.com", "berth.test.evil.com", "xberth.test"} {
		_, err := m.GetCertificate(hello(name))
		require.ErrorIs(t, err, ErrUnknownHost, name)
		assert.ErrorContains(t, err, name)
	}
	_, err := c.Get("https://shop.example.com:" + portFromAddr(addr) + "/")
	require.Error(t, err, "no certificate for a name that is neither local nor served")

	for _, name := range append(local, "127.0.0.1", "127.1.2.3", "::1") {
		cert, err := m.GetCertificate(hello(name))
		require.NoError(t, err, name)
		require.NoError(t, cert.Leaf.VerifyHostname(name), name)
	}
	for _, name := range []string{"10.1.2.3", "192.168.1.1", "fd00::1"} {
		_, err := m.GetCertificate(hello(name))
		require.ErrorIs(t, err, ErrUnknownHost, name)
		assert.ErrorContains(t, err, "outside the names the local CA may sign")
	}
}

func TestLocalCAPersistence(t *testing.T) {
	dataDir := t.TempDir()
	m1 := newTestManager(t, Options{DataDir: dataDir})
	require.NoError(t, m1.SetHosts(t.Context(), []string{"web.shop.localhost"}))
	served, err := m1.GetCertificate(hello("web.shop.localhost"))
	require.NoError(t, err)
	_, err = m1.GetCertificate(hello("unserved.localhost"))
	require.ErrorIs(t, err, ErrUnknownHost)
	require.NoError(t, m1.Close())

	dir := filepath.Join(dataDir, "certs")
	for path, mode := range map[string]os.FileMode{
		dir:                            0o700 | os.ModeDir,
		filepath.Join(dir, caKeyFile):  0o600,
		filepath.Join(dir, caCertFile): 0o644,
		filepath.Join(dir, leafDir):    0o700 | os.ModeDir,
		filepath.Join(dir, "acme"):     0o700 | os.ModeDir,
		filepath.Join(dir, leafDir, "web.shop.localhost.pem"): 0o600,
	} {
		info, err := os.Stat(path)
		require.NoError(t, err)
		assert.Equal(t, mode, info.Mode(), path)
	}
	assert.NoFileExists(t, filepath.Join(dir, leafDir, "unserved.localhost.pem"), "only served names get a certificate")
	entries, err := os.ReadDir(filepath.Join(dir, leafDir))
	require.NoError(t, err)
	for _, e := range entries {
		assert.False(t, strings.Contains(e.Name(), ".tmp-"), "no temp file left: %s", e.Name())
	}

	m2 := newTestManager(t, Options{DataDir: dataDir})
	assert.Equal(t, m1.CARootPEM(), m2.CARootPEM(), "same root across restarts")
	require.NoError(t, m2.SetHosts(t.Context(), []string{"web.shop.localhost"}))
	addr := serveTLS(t, listen(t), m2.TLSConfig(), appHandler)
	resp, _ := get(t, newClient(t, poolOf(t, m1.CARootPEM()), addr, false), "https://web.shop.localhost:"+portFromAddr(addr)+"/")
	assert.Equal(t, served.Leaf.SerialNumber, resp.TLS.PeerCertificates[0].SerialNumber, "leaf loaded from disk, not re-minted")
}

func TestLocalCAPersistsNameServedLater(t *testing.T) {
	dataDir := t.TempDir()
	// The edge routes the name before the certificates hear of it.
	m := newTestManager(t, Options{DataDir: dataDir, Routed: func(h string) bool { return h == "late.localhost" }})
	first, err := m.GetCertificate(hello("late.localhost"))
	require.NoError(t, err)
	path := filepath.Join(dataDir, "certs", leafDir, "late.localhost.pem")
	assert.NoFileExists(t, path)

	require.NoError(t, m.SetHosts(t.Context(), []string{"late.localhost"}))
	again, err := m.GetCertificate(hello("late.localhost"))
	require.NoError(t, err)
	assert.Same(t, first, again, "the cached leaf is kept")
	assert.FileExists(t, path, "and written once the name is served")
}

func TestLocalCARenewsLeaf(t *testing.T) {
	dataDir := t.TempDir()
	m := newTestManager(t, Options{DataDir: dataDir})
	require.NoError(t, m.SetHosts(t.Context(), []string{"web.shop.localhost"}))
	old, err := m.GetCertificate(hello("web.shop.localhost"))
	require.NoError(t, err)

	for _, tc := range []struct {
		name  string
		after time.Duration
		renew bool
	}{
		{"early in its life", leafValidity / 2, false},
		{"inside the renewal window", leafValidity - leafRenewBefore + time.Hour, true},
		{"expired", leafValidity + time.Hour, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fake := time.Now().Add(tc.after)
			m.ca.now = func() time.Time { return fake }
			cert, err := m.GetCertificate(hello("web.shop.localhost"))
			require.NoError(t, err)
			if !tc.renew {
				assert.Equal(t, old.Leaf.SerialNumber, cert.Leaf.SerialNumber)
				return
			}
			assert.NotEqual(t, old.Leaf.SerialNumber, cert.Leaf.SerialNumber)
			assert.True(t, fake.Before(cert.Leaf.NotAfter.Add(-leafRenewBefore)), "fresh at the fake time")

			m2 := newTestManager(t, Options{DataDir: dataDir})
			m2.ca.now = m.ca.now
			require.NoError(t, m2.SetHosts(t.Context(), []string{"web.shop.localhost"}))
			onDisk, err := m2.GetCertificate(hello("web.shop.localhost"))
			require.NoError(t, err)
			assert.Equal(t, cert.Leaf.SerialNumber, onDisk.Leaf.SerialNumber, "renewed leaf persisted")
		})
	}
}

func TestLocalCAConcurrentMint(t *testing.T) {
	m := newTestManager(t, Options{})
	require.NoError(t, m.SetHosts(t.Context(), []string{"web.shop.localhost"}))
	const n = 32
	certs := make([]*x509.Certificate, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			c, err := m.GetCertificate(hello("web.shop.localhost"))
			if assert.NoError(t, err) {
				certs[i] = c.Leaf
			}
		})
	}
	wg.Wait()
	for _, c := range certs[1:] {
		assert.Equal(t, certs[0].SerialNumber, c.SerialNumber, "minted once")
	}
}

func TestLocalCATransientLeavesAreBounded(t *testing.T) {
	m := newTestManager(t, Options{Routed: func(h string) bool { return strings.HasSuffix(h, ".localhost") }})
	require.NoError(t, m.SetHosts(t.Context(), []string{"web.shop.localhost"}))
	_, err := m.GetCertificate(hello("web.shop.localhost"))
	require.NoError(t, err)
	for i := range maxTransientLeaf + 10 {
		_, err := m.GetCertificate(hello("r" + strconv.Itoa(i) + ".localhost"))
		require.NoError(t, err)
	}
	m.ca.mu.RLock()
	defer m.ca.mu.RUnlock()
	assert.LessOrEqual(t, len(m.ca.leaves), maxTransientLeaf+1)
	assert.Contains(t, m.ca.leaves, "web.shop.localhost", "served names are never evicted")
}

func TestLocalCAIncompleteOrCorrupt(t *testing.T) {
	for _, tc := range []struct {
		name    string
		break_  func(dir string) error
		wantErr error
		wantMsg string
	}{
		{"key missing", func(dir string) error { return os.Remove(filepath.Join(dir, caKeyFile)) }, ErrCAIncomplete, "ca-key.pem"},
		{"certificate missing", func(dir string) error { return os.Remove(filepath.Join(dir, caCertFile)) }, ErrCAIncomplete, "ca.pem"},
		{"certificate garbage", func(dir string) error {
			return os.WriteFile(filepath.Join(dir, caCertFile), []byte("garbage"), 0o644)
		}, nil, "no CERTIFICATE block"},
		{"key of another CA", func(dir string) error {
			other := t.TempDir()
			m, err := New(Options{DataDir: other})
			if err != nil {
				return err
			}
			_ = m.Close()
			data, err := os.ReadFile(filepath.Join(other, "certs", caKeyFile))
			if err != nil {
				return err
			}
			return os.WriteFile(filepath.Join(dir, caKeyFile), data, 0o600)
		}, nil, "does not hold the key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dataDir := t.TempDir()
			m, err := New(Options{DataDir: dataDir})
			require.NoError(t, err)
			require.NoError(t, m.Close())
			require.NoError(t, tc.break_(filepath.Join(dataDir, "certs")))
			_, err = New(Options{DataDir: dataDir})
			require.Error(t, err)
			if tc.wantErr != nil {
				assert.True(t, errors.Is(err, tc.wantErr), err)
			}
			assert.ErrorContains(t, err, tc.wantMsg)
		})
	}
}

func TestNewRejectsBadOptions(t *testing.T) {
	_, err := New(Options{})
	require.ErrorContains(t, err, "DataDir is required")
	_, err = New(Options{DataDir: t.TempDir(), Domain: "bad domain"})
	require.ErrorIs(t, err, ErrInvalidHost)
	_, err = New(Options{DataDir: t.TempDir(), ACMECARoot: filepath.Join(t.TempDir(), "missing.pem")})
	require.ErrorContains(t, err, "ACME CA root")
}

func TestSetHosts(t *testing.T) {
	m := newTestManager(t, Options{})
	require.NoError(t, m.SetHosts(t.Context(), []string{"Web.Shop.Localhost", "shop.example.com.", "127.0.0.1"}))
	assert.True(t, m.IsACME("shop.example.com"))
	assert.True(t, m.IsACME("SHOP.example.com:443"))
	assert.False(t, m.IsACME("web.shop.localhost"))
	assert.False(t, m.IsACME("127.0.0.1"))
	assert.False(t, m.IsACME("other.example.com"))

	err := m.SetHosts(t.Context(), []string{"new.example.com", "*.example.com", "bad host"})
	require.ErrorIs(t, err, ErrInvalidHost)
	assert.ErrorContains(t, err, "wildcard")
	assert.ErrorContains(t, err, `"bad host"`)
	assert.True(t, m.IsACME("shop.example.com"), "a rejected call changes nothing")
	assert.False(t, m.IsACME("new.example.com"))

	require.NoError(t, m.Close())
	require.ErrorIs(t, m.SetHosts(t.Context(), nil), ErrClosed)
}

// TestCurl checks the certificates with another TLS stack: curl over
// OpenSSL, trusting only the exported root.
func TestCurl(t *testing.T) {
	curl, err := exec.LookPath("curl")
	if err != nil {
		t.Skip("curl is not installed")
	}
	m := newTestManager(t, Options{})
	require.NoError(t, m.SetHosts(t.Context(), []string{"web.shop.localhost"}))
	addr := serveTLS(t, listen(t), m.TLSConfig(), appHandler)
	port := portFromAddr(addr)
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	require.NoError(t, os.WriteFile(caFile, m.CARootPEM(), 0o600))

	for _, tc := range []struct{ flag, version, proto string }{
		{"--http1.1", "1.1", "HTTP/1.1"},
		{"--http2", "2", "HTTP/2.0"},
	} {
		t.Run(tc.flag, func(t *testing.T) {
			out, err := exec.Command(curl, "-sS", "--fail", tc.flag,
				"--cacert", caFile,
				"--resolve", "web.shop.localhost:"+port+":127.0.0.1",
				"-w", "\n%{http_version}",
				"https://web.shop.localhost:"+port+"/curl").CombinedOutput()
			require.NoError(t, err, "%s", out)
			body, version, _ := strings.Cut(string(out), "\n")
			assert.Equal(t, tc.version, version)
			assert.Contains(t, body, "proto="+tc.proto)
		})
	}

	out, err := exec.Command(curl, "-sS", "--resolve", "web.shop.localhost:"+port+":127.0.0.1",
		"https://web.shop.localhost:"+port+"/").CombinedOutput()
	require.Error(t, err, "curl must not trust the root without --cacert: %s", out)
}
