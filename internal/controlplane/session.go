package controlplane

import (
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/berth-dev/berth/internal/attach"
)

// The HTTP side of the attach protocol: a request for an interactive task
// run or an exec is refused as an ordinary HTTP error if it can be, then
// upgraded, and the connection handed to the tasks' Runner (its session.go).

// isUpgrade reports whether r asks for an attach session.
func isUpgrade(r *http.Request) bool {
	if !strings.EqualFold(r.Header.Get("Upgrade"), attach.Protocol) {
		return false
	}
	for _, v := range r.Header.Values("Connection") {
		for _, tok := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(tok), "upgrade") {
				return true
			}
		}
	}
	return false
}

// upgrade answers 101 Switching Protocols and takes the connection over
// from the HTTP server. Everything that can be refused must be refused
// before, as an ordinary HTTP error.
func upgrade(w http.ResponseWriter) (*attach.Conn, error) {
	nc, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return nil, fmt.Errorf("take over the connection: %w", err)
	}
	_ = nc.SetDeadline(time.Time{})
	_, err = brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: " + attach.Protocol + "\r\n\r\n")
	if err == nil {
		err = brw.Flush()
	}
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("answer the upgrade: %w", err)
	}
	return attach.NewConn(nc, brw.Reader), nil
}
