package edge

import (
	"context"
	"encoding/xml"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestHTTP2Conformance runs h2spec, the HTTP/2 conformance suite
// (github.com/summerwind/h2spec), against the edge's HTTPS listener with a
// route to a backend: every case must pass, the RFC's SHOULDs too
// (--strict). net/http's HTTP/2 server, which the edge used before its own
// (package h2), failed four: a SETTINGS frame naming a setting twice
// refused, connection-specific fields answered 400 rather than reset, and
// h2spec's own mistake about the frame size net/http advertised. h2spec is
// a program on PATH; the test is skipped without it, unless
// BERTH_REQUIRE_H2SPEC=1 (as in CI).
func TestHTTP2Conformance(t *testing.T) {
	bin, err := exec.LookPath("h2spec")
	if err != nil {
		if os.Getenv("BERTH_REQUIRE_H2SPEC") == "1" {
			t.Fatalf("h2spec is not on PATH and BERTH_REQUIRE_H2SPEC=1: go install github.com/summerwind/h2spec/cmd/h2spec@v2.2.1+incompatible")
		}
		t.Skip("h2spec is not on PATH (go install github.com/summerwind/h2spec/cmd/h2spec@v2.2.1+incompatible)")
	}

	// h2spec sends its requests with :authority 127.0.0.1:PORT, and some
	// of them carry a body; the backend reads it and answers a few KiB,
	// enough for the cases that watch DATA frames and flow control.
	answer := strings.Repeat("h2spec ", 1024)
	backend := newTestBackend(t, "conf", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		_, _ = io.WriteString(w, answer)
	}))
	e := New(Options{})
	t.Cleanup(e.CloseIdleConnections)
	e.Update(Route{Key: "conf/web", Hosts: []string{"127.0.0.1"}, Backends: backendsOf(backend)})
	srv := startTLSServer(t, &Server{Edge: e, HTTP: &http.Server{Handler: e, ReadHeaderTimeout: 10 * time.Second,
		ErrorLog: log.New(io.Discard, "", 0)}}) // h2spec's bad frames are logged by the server
	_, port, err := net.SplitHostPort(srv.Addr)
	require.NoError(t, err)

	report := filepath.Join(t.TempDir(), "h2spec.xml")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	// --strict runs the cases of the RFC's SHOULDs too; --timeout is how
	// long a case waits for the server, generous for a loaded machine.
	out, runErr := exec.CommandContext(ctx, bin, "--tls", "--insecure", "--strict", "--host", "127.0.0.1", "--port", port,
		"--timeout", "5", "--junit-report", report).CombinedOutput()
	cases, err := readH2specReport(report)
	require.NoError(t, err, "h2spec wrote no report (run: %v):\n%s", runErr, out)
	require.NotEmpty(t, cases, "h2spec ran no case:\n%s", out)

	var passed, skipped int
	for _, c := range cases {
		switch {
		case c.skipped:
			skipped++
		case c.failure == "":
			passed++
		default:
			t.Errorf("h2spec %s: %s\n%s", c.id, c.desc, c.failure)
		}
	}
	assert.Positive(t, backend.hits.Load(), "h2spec's requests reached the backend through the edge")
	t.Logf("h2spec: %d cases, %d passed, %d skipped", len(cases), passed, skipped)
}

// h2specCase is one case of h2spec's JUnit report.
type h2specCase struct {
	id      string // e.g. "http2/6.9.1/2"
	desc    string
	skipped bool
	failure string // what h2spec expected and saw; empty when it passed
}

// readH2specReport reads h2spec's JUnit report. h2spec numbers a group's
// cases from 1 in the order the report lists them.
func readH2specReport(path string) ([]h2specCase, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	type text struct {
		Content string `xml:",innerxml"`
	}
	var rep struct {
		Suites []struct {
			Package string `xml:"package,attr"`
			Cases   []struct {
				ClassName string `xml:"classname,attr"`
				Failure   *text  `xml:"failure"`
				Error     *text  `xml:"error"`
				Skipped   *text  `xml:"skipped"`
			} `xml:"testcase"`
		} `xml:"testsuite"`
	}
	if err := xml.Unmarshal(b, &rep); err != nil {
		return nil, err
	}
	var cases []h2specCase
	for _, s := range rep.Suites {
		for i, c := range s.Cases {
			hc := h2specCase{id: fmt.Sprintf("%s/%d", s.Package, i+1), desc: c.ClassName, skipped: c.Skipped != nil}
			for _, f := range []*text{c.Failure, c.Error} {
				if f != nil {
					hc.failure = strings.TrimSpace(f.Content)
					if hc.failure == "" {
						hc.failure = "(failed, no detail)"
					}
				}
			}
			cases = append(cases, hc)
		}
	}
	return cases, nil
}
