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
// route to a backend: every case must pass but the few net/http's server
// is known to fail (h2specKnownFailures), whichever HTTP/2 server the edge
// hands its "h2" connections to. h2spec is a program on PATH; the
// test is skipped without it, unless BERTH_REQUIRE_H2SPEC=1 (as in CI).
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

	var passed, skipped, known int
	ran := map[string]bool{}
	for _, c := range cases {
		ran[c.id] = true
		why, isKnown := h2specKnownFailures[c.id]
		switch {
		case c.skipped:
			skipped++
		case c.failure == "":
			passed++
			if isKnown {
				// Not a regression: the server now does what h2spec
				// asks, which the RFC allows too.
				t.Logf("h2spec %s passes now: it can come off h2specKnownFailures", c.id)
			}
		case isKnown:
			known++
			t.Logf("h2spec %s fails as known (%s): %s", c.id, c.desc, why)
		default:
			t.Errorf("h2spec %s: %s\n%s", c.id, c.desc, c.failure)
		}
	}
	for id := range h2specKnownFailures {
		assert.True(t, ran[id], "h2spec has no case %s: h2specKnownFailures names the wrong one", id)
	}
	assert.Positive(t, backend.hits.Load(), "h2spec's requests reached the backend through the edge")
	t.Logf("h2spec: %d cases, %d passed, %d skipped, %d known failures", len(cases), passed, skipped, known)
}

// h2specKnownFailures are the h2spec cases that net/http's HTTP/2 server
// fails, by ID (group/section/case number, as h2spec prints them), with
// why. Any other failure fails the test; one of these that starts to pass
// is only logged, as each is an outcome that the RFC allows or h2spec's
// own mistake.
var h2specKnownFailures = map[string]string{
	// h2spec 2.2.1 sends a HEADERS frame of 16,384 + 1,192 bytes, taking
	// the default SETTINGS_MAX_FRAME_SIZE for granted, but net/http's
	// server advertises 1 MiB: the frame is within the limit, and the
	// server answers the request, as it should.
	"http2/4.2/3": "the frame is within the server's advertised SETTINGS_MAX_FRAME_SIZE",
	// net/http's server hangs up (GOAWAY PROTOCOL_ERROR) on a SETTINGS
	// frame that names a setting twice, a hardening of its own against
	// abusive peers, where RFC 9113 6.5.3 has the values applied in
	// order.
	"http2/6.5.3/1": "net/http refuses a SETTINGS frame with a repeated setting",
	// A request with a connection-specific field, or TE other than
	// "trailers", is malformed; net/http answers it 400 Bad Request
	// instead of RST_STREAM(PROTOCOL_ERROR), which RFC 9113 8.1.1 allows
	// ("a server MAY send an HTTP response prior to closing or resetting
	// the stream"). TestHTTP2ConnectionSpecificHeaders accepts either.
	"http2/8.1.2.2/1": "answered 400 Bad Request, not reset",
	"http2/8.1.2.2/2": "answered 400 Bad Request, not reset",
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
