package certs

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/net/dns/dnsmessage"

	"github.com/berth-dev/berth/internal/testutil"
)

// RequirePebbleEnv set to "1" makes a missing pebble fail the ACME tests
// instead of skipping them; CI sets it after `apt-get install pebble`.
const requirePebbleEnv = "BERTH_REQUIRE_PEBBLE"

// pebbleBinary finds Debian's pebble, skipping (or failing, in CI) without it.
func pebbleBinary(t testing.TB) string {
	t.Helper()
	if p, err := exec.LookPath("pebble"); err == nil {
		return p
	}
	if _, err := os.Stat("/usr/bin/pebble"); err == nil {
		return "/usr/bin/pebble"
	}
	msg := "pebble (an ACME test server) is not installed: apt-get install -y pebble"
	if os.Getenv(requirePebbleEnv) == "1" {
		t.Fatalf("%s (%s=1)", msg, requirePebbleEnv)
	}
	t.Skipf("%s; skipping ACME test (set %s=1 to fail instead)", msg, requirePebbleEnv)
	return ""
}

// pebble is a running pebble ACME server on loopback.
type pebble struct {
	DirURL   string // ACME directory
	CertPath string // PEM of pebble's own HTTPS certificate, for Options.ACMECARoot
	mgmt     string // management address (roots of issued certificates)
	tlsCert  []byte

	cmd      *exec.Cmd
	out      *testutil.SyncBuffer
	stopOnce sync.Once
}

// startPebble runs pebble validating HTTP-01 on httpPort and TLS-ALPN-01 on
// tlsPort, resolving every name through dnsAddr.
func startPebble(t testing.TB, httpPort, tlsPort int, dnsAddr string) *pebble {
	t.Helper()
	bin := pebbleBinary(t)
	dir := t.TempDir()
	certPEM, keyPEM := selfSignedLoopback(t)
	certPath, keyPath := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	require.NoError(t, os.WriteFile(certPath, certPEM, 0o600))
	require.NoError(t, os.WriteFile(keyPath, keyPEM, 0o600))
	listen, mgmt := freeAddr(t), freeAddr(t)
	cfg := map[string]any{"pebble": map[string]any{
		"listenAddress":                  listen,
		"managementListenAddress":        mgmt,
		"certificate":                    certPath,
		"privateKey":                     keyPath,
		"httpPort":                       httpPort,
		"tlsPort":                        tlsPort,
		"ocspResponderURL":               "",
		"externalAccountBindingRequired": false,
	}}
	cfgJSON, err := json.Marshal(cfg)
	require.NoError(t, err)
	cfgPath := filepath.Join(dir, "pebble-config.json")
	require.NoError(t, os.WriteFile(cfgPath, cfgJSON, 0o600))

	p := &pebble{DirURL: "https://" + listen + "/dir", CertPath: certPath, mgmt: mgmt, tlsCert: certPEM, out: &testutil.SyncBuffer{}}
	p.cmd = exec.Command(bin, "-config", cfgPath, "-dnsserver", dnsAddr)
	p.cmd.Env = append(os.Environ(),
		"PEBBLE_VA_NOSLEEP=1",      // validate at once
		"PEBBLE_VA_ALWAYS_VALID=0", // really validate the challenges
		"PEBBLE_WFE_NONCEREJECT=0", // no random badNonce: faster, same coverage
		"PEBBLE_AUTHZREUSE=0",      // every order proves control again
	)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	require.NoError(t, p.cmd.Start())
	t.Cleanup(func() {
		p.Stop()
		if t.Failed() {
			t.Logf("pebble output:\n%s", p.out.String())
		}
	})

	client := &http.Client{Timeout: time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: poolOf(t, certPEM)}}}
	defer client.CloseIdleConnections()
	require.Eventually(t, func() bool {
		resp, err := client.Get(p.DirURL)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, 15*time.Second, 50*time.Millisecond, "pebble did not start:\n%s", p.out)
	return p
}

// Stop kills pebble; the ACME CA is gone from then on.
func (p *pebble) Stop() {
	p.stopOnce.Do(func() {
		_ = p.cmd.Process.Kill()
		_ = p.cmd.Wait()
	})
}

// IssuerRoots returns the pool of the root pebble signs certificates with
// (a fresh one each run).
func (p *pebble) IssuerRoots(t testing.TB) (*x509.CertPool, *x509.Certificate) {
	t.Helper()
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: poolOf(t, p.tlsCert)}}}
	defer client.CloseIdleConnections()
	resp, err := client.Get("https://" + p.mgmt + "/roots/0")
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
	block, _ := pem.Decode(body)
	require.NotNil(t, block, "pebble root: %s", body)
	root, err := x509.ParseCertificate(block.Bytes)
	require.NoError(t, err)
	return poolOf(t, body), root
}

// selfSignedLoopback makes the certificate pebble serves its API with.
func selfSignedLoopback(t testing.TB) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber:          randomSerial(),
		Subject:               pkix.Name{CommonName: "pebble test listener"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	keyPEM, err = marshalECKey(key)
	require.NoError(t, err)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), keyPEM
}

// freeAddr returns a loopback address that was free a moment ago, for
// pebble's own listeners, which must be named before pebble binds them.
func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	return ln.Addr().String()
}

// dnsServer answers every A question with 127.0.0.1 and every other
// question with an empty NOERROR answer, over UDP: enough for pebble's
// validation authority to find the test's challenge servers.
type dnsServer struct {
	Addr    string
	Queries atomic.Int64
}

func startDNS(t testing.TB) *dnsServer {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(t, err)
	s := &dnsServer{Addr: pc.LocalAddr().String()}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 1500)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				if errors.Is(err, net.ErrClosed) {
					return
				}
				continue
			}
			if resp, err := dnsAnswer(buf[:n]); err == nil {
				s.Queries.Add(1)
				_, _ = pc.WriteTo(resp, from)
			}
		}
	}()
	t.Cleanup(func() {
		_ = pc.Close()
		<-done
	})
	return s
}

func dnsAnswer(query []byte) ([]byte, error) {
	var p dnsmessage.Parser
	h, err := p.Start(query)
	if err != nil {
		return nil, err
	}
	q, err := p.Question()
	if err != nil {
		return nil, err
	}
	b := dnsmessage.NewBuilder(nil, dnsmessage.Header{
		ID: h.ID, Response: true, Authoritative: true,
		RecursionDesired: h.RecursionDesired, RecursionAvailable: true,
	})
	b.EnableCompression()
	if err := b.StartQuestions(); err != nil {
		return nil, err
	}
	if err := b.Question(q); err != nil {
		return nil, err
	}
	if err := b.StartAnswers(); err != nil {
		return nil, err
	}
	if q.Type == dnsmessage.TypeA {
		rh := dnsmessage.ResourceHeader{Name: q.Name, Type: dnsmessage.TypeA, Class: dnsmessage.ClassINET, TTL: 60}
		if err := b.AResource(rh, dnsmessage.AResource{A: [4]byte{127, 0, 0, 1}}); err != nil {
			return nil, err
		}
	}
	msg, err := b.Finish()
	if err != nil {
		return nil, fmt.Errorf("build DNS answer: %w", err)
	}
	return msg, nil
}
