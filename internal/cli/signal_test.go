package cli

import (
	"bytes"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berth-dev/berth/internal/api"
)

// TestInterrupt sends the test process a real SIGINT while a stream is
// open: a followed stream ends normally, anything else exits 130. Not
// parallel: the signal goes to the whole process.
func TestInterrupt(t *testing.T) {
	d := newFakeDaemon(t)
	// The signal goes once the CLI has printed the line (or at once when
	// nothing is to be printed): a signal that overtakes the line would
	// test nothing.
	var printed atomic.Pointer[notifyWriter]
	interrupt := func(w http.ResponseWriter, r *http.Request) {
		send(w, api.Message{Kind: api.KindLog, Source: "web-1", Text: "hello"})
		if out := printed.Load(); out != nil {
			select {
			case <-out.seen:
			case <-time.After(10 * time.Second):
				t.Error("the CLI never printed the line")
			}
		}
		require.NoError(t, syscall.Kill(os.Getpid(), syscall.SIGINT))
		<-r.Context().Done()
	}
	d.handle("GET /v1/apps/shop/services/web/logs", interrupt)
	d.handle("POST /v1/apps/shop/services/web/resume", interrupt)

	out := newNotifyWriter("hello\n")
	printed.Store(out)
	var stderr bytes.Buffer
	code := Main([]string{"--host", d.host, "logs", "web", "-f", "--app", "shop", "--instance", "web-1"}, strings.NewReader(""), out, &stderr)
	assert.Equal(t, 0, code, stderr.String())
	assert.Equal(t, "hello\n", out.String())

	printed.Store(nil)
	res := d.run("resume", "web", "--app", "shop")
	assert.Equal(t, exitInterrupted, res.code)
	assert.Equal(t, "berth: interrupted\n", res.stderr)
}

// notifyWriter is a buffer that closes seen once it holds want.
type notifyWriter struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	want string
	seen chan struct{}
}

func newNotifyWriter(want string) *notifyWriter {
	return &notifyWriter{want: want, seen: make(chan struct{})}
}

func (w *notifyWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	had := strings.Contains(w.buf.String(), w.want)
	n, err := w.buf.Write(p)
	if !had && strings.Contains(w.buf.String(), w.want) {
		close(w.seen)
	}
	return n, err
}

func (w *notifyWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}
