package edge

import (
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestCheck(t *testing.T) {
	srv := newTestBackend(t, "app", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/healthz":
			w.WriteHeader(http.StatusOK)
		case "/moved":
			http.Redirect(w, r, "/elsewhere", http.StatusFound)
		case "/broken":
			w.WriteHeader(http.StatusInternalServerError)
		case "/slow":
			select {
			case <-time.After(5 * time.Second):
			case <-r.Context().Done():
			}
		default:
			http.NotFound(w, r)
		}
	}))
	// A listener that accepts connections but never answers HTTP.
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { _ = silent.Close() })
	dead := deadAddr(t)
	// A listener that accepts and closes at once, as the engine's port proxy
	// does when nothing listens inside the container.
	closer, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { _ = closer.Close() })
	go func() {
		for {
			c, err := closer.Accept()
			if err != nil {
				return
			}
			_ = c.Close()
		}
	}()

	tests := []struct {
		name     string
		addr     string
		path     string
		wantIs   error
		contains string // in the error; "" = healthy
	}{
		{name: "http 200", addr: srv.Addr, path: "/healthz"},
		{name: "path without slash", addr: srv.Addr, path: "healthz"},
		{name: "http 302 is healthy", addr: srv.Addr, path: "/moved"},
		{name: "http 500", addr: srv.Addr, path: "/broken", wantIs: ErrUnhealthyStatus, contains: "500 Internal Server Error"},
		{name: "http 404", addr: srv.Addr, path: "/missing", wantIs: ErrUnhealthyStatus, contains: "404"},
		{name: "http refused", addr: dead, path: "/healthz", contains: "connection refused"},
		{name: "http timeout", addr: srv.Addr, path: "/slow", wantIs: ErrCheckTimeout, contains: "no answer within 200ms"},
		{name: "http silent listener", addr: silent.Addr().String(), path: "/healthz", wantIs: ErrCheckTimeout},
		{name: "tcp open", addr: srv.Addr},
		{name: "tcp open without http", addr: silent.Addr().String()},
		{name: "tcp refused", addr: dead, contains: "connection refused"},
		{name: "tcp closed at once", addr: closer.Addr().String(), contains: "nothing listens on the container port"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			err := Check(t.Context(), tt.addr, tt.path, 200*time.Millisecond)
			assert.Less(t, time.Since(start), 2*time.Second)
			if tt.contains == "" && tt.wantIs == nil {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			if tt.wantIs != nil {
				require.ErrorIs(t, err, tt.wantIs)
			}
			assert.Contains(t, err.Error(), tt.contains)
			assert.Contains(t, err.Error(), tt.addr, "the error names the instance")
		})
	}
}
