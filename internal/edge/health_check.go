package edge

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Errors of Check, wrapped with the address and the detail.
var (
	ErrUnhealthyStatus = errors.New("unhealthy status")
	ErrCheckTimeout    = errors.New("no answer")
)

// healthClient probes instances. Keep-alives are off so every probe proves
// that the instance still accepts connections, and no idle connection to a
// stopped instance lingers.
var healthClient = &http.Client{
	Transport: &http.Transport{
		Proxy:              nil,
		DialContext:        (&net.Dialer{KeepAlive: -1}).DialContext,
		DisableKeepAlives:  true,
		DisableCompression: true,
	},
	// A redirect is an answer: the instance is up.
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

// Check runs one health probe against the instance at addr. With a path it
// sends GET path and wants a 2xx or 3xx answer; with path "" it only opens a
// TCP connection. It returns nil when healthy, else an error that says why:
// the connection was refused, nothing answered within timeout
// (ErrCheckTimeout), or the status was bad (ErrUnhealthyStatus). timeout 0
// means only ctx limits the probe.
func Check(ctx context.Context, addr string, path string, timeout time.Duration) error {
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, timeout, ErrCheckTimeout)
		defer cancel()
	}
	if path == "" {
		return checkTCP(ctx, addr, timeout)
	}
	return checkHTTP(ctx, addr, path, timeout)
}

func checkTCP(ctx context.Context, addr string, timeout time.Duration) error {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("connect %s: %w", addr, probeError(ctx, err, timeout))
	}
	defer conn.Close()
	// Instances are reached through the engine's port proxy, which accepts
	// every connection and closes it at once when nothing listens inside the
	// container. So a connection must also stay open a moment (or carry a
	// greeting) to count as healthy.
	_ = conn.SetReadDeadline(time.Now().Add(tcpSettle))
	var b [1]byte
	if _, err := conn.Read(b[:]); err != nil {
		if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() {
			return nil
		}
		return fmt.Errorf("connect %s: connection closed at once: nothing listens on the container port (check port in berth.yaml)", addr)
	}
	return nil
}

// tcpSettle is how long a TCP health check's connection must stay open.
const tcpSettle = 150 * time.Millisecond

func checkHTTP(ctx context.Context, addr, path string, timeout time.Duration) error {
	if !strings.HasPrefix(path, "/") {
		path = "/" + path
	}
	target := "http://" + addr + path
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return fmt.Errorf("health check of %s: %w", target, err)
	}
	req.Header.Set("User-Agent", "berth-health-check")
	res, err := healthClient.Do(req)
	if err != nil {
		if ue, ok := errors.AsType[*url.Error](err); ok {
			err = ue.Err
		}
		return fmt.Errorf("GET %s: %w", target, probeError(ctx, err, timeout))
	}
	defer res.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(res.Body, 64<<10))
	if res.StatusCode < 200 || res.StatusCode >= 400 {
		return fmt.Errorf("GET %s: %w %s", target, ErrUnhealthyStatus, res.Status)
	}
	return nil
}

// probeError names a timeout as such rather than as "context deadline
// exceeded".
func probeError(ctx context.Context, err error, timeout time.Duration) error {
	if errors.Is(context.Cause(ctx), ErrCheckTimeout) {
		return fmt.Errorf("%w within %s", ErrCheckTimeout, timeout)
	}
	if cause := context.Cause(ctx); cause != nil {
		return cause
	}
	return err
}
