package h2

import (
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/net/http2"
)

// serve starts s on a loopback TLS listener offering only h2, and
// returns its address.
func serve(t testing.TB, s *Server) string {
	t.Helper()
	ts := httptest.NewUnstartedServer(nil)
	ts.StartTLS()
	cfg := ts.TLS.Clone()
	ts.Close()
	cfg.NextProtos = []string{"h2"}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var wg sync.WaitGroup
	t.Cleanup(func() {
		ln.Close()
		_ = s.Close()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				tc := tls.Server(c, cfg)
				if tc.Handshake() != nil {
					c.Close()
					return
				}
				s.ServeConn(tc)
			}()
		}
	}()
	return ln.Addr().String()
}

// client is an HTTP/2 client of the test server; each call to client
// makes a transport of its own, so its connections are its own.
func client(t testing.TB) *http.Client {
	tr := &http2.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}} //nolint:gosec // test certificate
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 20 * time.Second}
}

// answer is the body the echo handler writes for a path: the path over
// and over, n bytes.
func answer(path string, n int) string {
	return strings.Repeat(path+";", n/len(path)+1)[:n]
}

// Many streams at once on few connections each get their own answer,
// whole, whatever its size.
func TestConcurrentStreamsGetTheirOwnAnswers(t *testing.T) {
	s := &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var n int
		fmt.Sscanf(r.URL.Query().Get("n"), "%d", &n)
		_, _ = io.WriteString(w, answer(r.URL.Path, n))
	})}
	addr := serve(t, s)
	var wg sync.WaitGroup
	errs := make(chan error, 1000)
	for c := 0; c < 4; c++ {
		cl := client(t)
		for i := 0; i < 100; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				path := fmt.Sprintf("/c%d/r%d", c, i)
				n := []int{0, 1, 1024, 16 << 10, 16<<10 + 1, 100 << 10}[i%6]
				res, err := cl.Get(fmt.Sprintf("https://%s%s?n=%d", addr, path, n))
				if err != nil {
					errs <- err
					return
				}
				b, err := io.ReadAll(res.Body)
				res.Body.Close()
				if err != nil {
					errs <- fmt.Errorf("%s: %w", path, err)
					return
				}
				if string(b) != answer(path, n) {
					errs <- fmt.Errorf("%s: got %d bytes, not its own answer of %d", path, len(b), n)
				}
			}()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
