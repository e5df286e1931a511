package client

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"syscall"

	"github.com/berth-dev/berth/internal/api"
)

// ErrDaemonUnreachable is wrapped by every error returned when nothing
// answers at the daemon's address (socket missing, connection refused).
var ErrDaemonUnreachable = errors.New("cannot reach the berth daemon")

// ErrNoResult is returned when a stream that must end with a result message
// ends without one (the daemon stopped or the connection broke).
var ErrNoResult = errors.New("the berth daemon ended the stream without a result: check `berth status`")

// errBadMessage marks a stream line that is not an api.Message.
var errBadMessage = errors.New("invalid message from the berth daemon")

// APIError is a request the daemon answered with a non-2xx status.
type APIError struct {
	// StatusCode is the HTTP status.
	StatusCode int
	// Body is the daemon's error: a one-line Message and a stable Code.
	Body api.Error
}

// Error returns the daemon's one-line message.
func (e *APIError) Error() string { return e.Body.Message }

// ResultError is a stream whose final result message reports a failure
// (a deploy that never became healthy, a failed release task...).
type ResultError struct {
	// Result is the final message: Error, Code and LastLogs say why.
	Result api.Message
}

// Error returns the result's one-line reason.
func (e *ResultError) Error() string {
	if e.Result.Error == "" {
		return "the operation failed"
	}
	return e.Result.Error
}

// unreachable reports whether err means that nothing listens at the
// daemon's address, as opposed to a daemon that answered badly.
func unreachable(err error) bool {
	var op *net.OpError
	if !errors.As(err, &op) || op.Op != "dial" {
		return false
	}
	return op.Timeout() ||
		errors.Is(err, syscall.ENOENT) ||
		errors.Is(err, syscall.ECONNREFUSED) ||
		errors.Is(err, syscall.EHOSTUNREACH) ||
		errors.Is(err, syscall.ENETUNREACH)
}

// transportError turns an error from the HTTP client into one that says
// which daemon could not be talked to, and why.
func (c *Client) transportError(err error) error {
	if unreachable(err) {
		return fmt.Errorf("%w at %s: is it running? Start it with \"berth server\"", ErrDaemonUnreachable, c.host)
	}
	// Drop the url.Error's `Get "http://berth/v1/...":` prefix: the URL of
	// a unix socket request is meaningless to the user.
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	if errors.Is(err, syscall.EACCES) {
		return fmt.Errorf("cannot talk to the berth daemon at %s: %w (run berth as the daemon's user)", c.host, err)
	}
	return fmt.Errorf("cannot talk to the berth daemon at %s: %w", c.host, err)
}

// firstLine is s up to its first newline, trimmed, for error messages built
// from bodies that are not an api.Error.
func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	return strings.TrimSpace(s)
}
