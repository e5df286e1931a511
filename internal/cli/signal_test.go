package cli

import (
	"net/http"
	"os"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berth-dev/berth/internal/api"
)

// TestInterrupt sends the test process a real SIGINT while a stream is
// open: a followed stream ends normally, anything else exits 130. Not
// parallel: the signal goes to the whole process.
func TestInterrupt(t *testing.T) {
	d := newFakeDaemon(t)
	interrupt := func(w http.ResponseWriter, r *http.Request) {
		send(w, api.Message{Kind: api.KindLog, Source: "web-1", Text: "hello"})
		require.NoError(t, syscall.Kill(os.Getpid(), syscall.SIGINT))
		<-r.Context().Done()
	}
	d.handle("GET /v1/apps/shop/services/web/logs", interrupt)
	d.handle("POST /v1/apps/shop/services/web/resume", interrupt)

	res := d.run("logs", "web", "-f", "--app", "shop", "--instance", "web-1")
	assert.Equal(t, 0, res.code, res.stderr)
	assert.Equal(t, "hello\n", res.stdout)

	res = d.run("resume", "web", "--app", "shop")
	assert.Equal(t, exitInterrupted, res.code)
	assert.Equal(t, "berth: interrupted\n", res.stderr)
}
