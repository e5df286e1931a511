package cli

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berth-dev/berth/internal/api"
)

// stubBrowser replaces the browser opener for one test and returns the
// URLs it was asked to open. Not for parallel tests.
func stubBrowser(t *testing.T) *[]string {
	t.Helper()
	var opened []string
	old := openBrowser
	t.Cleanup(func() { openBrowser = old })
	openBrowser = func(u string) error { opened = append(opened, u); return nil }
	return &opened
}

func TestUIPrintsAndOpensTheSignInURL(t *testing.T) {
	opened := stubBrowser(t)
	d := newFakeDaemon(t)
	url := "http://127.0.0.1:8081/signin?token=abc"
	d.handle("POST /v1/ui/signin", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, api.SignIn{URL: url, Expires: time.Now().Add(2 * time.Minute)})
	})
	res := d.run("ui")
	require.Equal(t, 0, res.code, res.stderr)
	assert.Equal(t, url+"\n", res.stdout)
	assert.Contains(t, res.stderr, "works once")
	assert.Equal(t, []string{url}, *opened)

	res = d.run("ui", "--no-open")
	require.Equal(t, 0, res.code, res.stderr)
	assert.Equal(t, url+"\n", res.stdout)
	assert.Len(t, *opened, 1, "--no-open opens nothing")
}

func TestUIWhenTheConsoleIsOff(t *testing.T) {
	stubBrowser(t)
	d := newFakeDaemon(t)
	d.handle("POST /v1/ui/signin", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusConflict, api.Error{Code: "console_off", Message: "the console is off: start berth server with --ui ADDR (or BERTH_UI; default 127.0.0.1:8081)"})
	})
	res := d.run("ui")
	assert.Equal(t, 1, res.code)
	assert.Equal(t, "berth: the console is off: start berth server with --ui ADDR (or BERTH_UI; default 127.0.0.1:8081)\n", res.stderr)
}

func TestUIRefusesAnEnvironment(t *testing.T) {
	stubBrowser(t)
	d := newFakeDaemon(t) // answers nothing: no request may be sent
	res := d.run("ui", "--env", "prod")
	assert.Equal(t, 1, res.code)
	assert.Equal(t, "berth: the console shows the local daemon's apps; environment \"prod\" is not in it yet: use the CLI with --env prod\n", res.stderr)
}
