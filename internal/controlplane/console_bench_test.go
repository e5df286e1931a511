package controlplane_test

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/berth-dev/berth/internal/testutil"
)

// BenchmarkConsolePageLoad is what a browser fetches from the daemon to
// show a service's page: the page, its script and style, the status
// through the API, and the live feed's first events (status, revisions,
// history) — on a daemon with an app of two services (fake engine). One
// iteration is one page load; the README's target is 100 ms.
//
//	go test -run '^$' -bench ConsolePageLoad ./internal/controlplane/
func BenchmarkConsolePageLoad(b *testing.B) {
	d := startFakeDaemon(b, "", withConsole)
	app := testutil.UniqueName(b, "bench")
	d.mustDeploy(appSpec(app, d.image(), "    instances: 2\n  api:\n    image: "+d.image()+"\n    port: 8080\n"))
	in, err := d.client.ConsoleSignIn(context.Background())
	require.NoError(b, err)
	jar, err := cookiejar.New(nil)
	require.NoError(b, err)
	c := &http.Client{Jar: jar}
	resp, err := c.Get(in.URL)
	require.NoError(b, err)
	resp.Body.Close()
	require.Equal(b, http.StatusOK, resp.StatusCode)
	base := "http://" + d.addrs.UI
	get := func(path string) {
		resp, err := c.Get(base + path)
		require.NoError(b, err)
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		require.Equal(b, http.StatusOK, resp.StatusCode, path)
	}
	for b.Loop() {
		get("/")
		get("/static/app.js")
		get("/static/style.css")
		get("/api/v1/status")
		// The live feed's first three events, then the browser would stay.
		resp, err := c.Get(base + "/live?app=" + app + "&service=web")
		require.NoError(b, err)
		r := bufio.NewReader(resp.Body)
		for events := 0; events < 3; {
			line, err := r.ReadString('\n')
			require.NoError(b, err)
			if strings.HasPrefix(line, "event: ") {
				events++
			}
		}
		resp.Body.Close()
	}
}
