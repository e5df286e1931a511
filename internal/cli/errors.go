package cli

import (
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/internal/api"
	"github.com/berth-dev/berth/internal/client"
)

// errInterrupted is the cause of the context of a run stopped by a signal.
var errInterrupted = errors.New("interrupted")

// errDetached is the cause that stops reading a deploy started with
// --detach; the daemon goes on without the client.
var errDetached = errors.New("detached")

// Exit codes.
const (
	exitFailure     = 1
	exitInterrupted = 130 // 128 + SIGINT, as shells report it
)

// usageError is a command line the verb cannot run: wrong arguments,
// unknown flags or verbs.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

// usagef is a usageError that ends with the verb's usage line.
func usagef(cmd *cobra.Command, format string, args ...any) error {
	return usageError{fmt.Sprintf(format, args...) + fmt.Sprintf(" (usage: %s)", cmd.UseLine())}
}

// inputError is a value the user gave that is wrong (SERVICE=N, a secret
// name, a missing file); its message says what to do.
type inputError struct{ msg string }

func (e inputError) Error() string { return e.msg }

func invalidf(format string, args ...any) error {
	return inputError{fmt.Sprintf(format, args...)}
}

// exitError ends berth with a process's own exit code (berth task run,
// berth exec) rather than 1. msg, when set, is the one-line reason printed.
type exitError struct {
	code int
	msg  string
}

func (e exitError) Error() string {
	if e.msg == "" {
		return fmt.Sprintf("exit code %d", e.code)
	}
	return e.msg
}

// exitWith is nil for code 0, else an exitError.
func exitWith(code int, msg string) error {
	if code == 0 {
		return nil
	}
	return exitError{code: code, msg: msg}
}

// apiErrorOf is err as the API's error body, with a code scripts can test.
func apiErrorOf(err error) api.Error {
	var (
		apiErr  *client.APIError
		resErr  *client.ResultError
		certErr *tls.CertificateVerificationError
	)
	switch {
	case errors.As(err, &apiErr):
		return apiErr.Body
	case errors.As(err, &resErr):
		return api.Error{Message: resErr.Error(), Code: resErr.Result.Code}
	case errors.Is(err, client.ErrDaemonUnreachable):
		return api.Error{Message: err.Error(), Code: "unreachable"}
	case errors.As(err, &certErr):
		return api.Error{Message: err.Error() + " (trust the daemon's certificate with BERTH_CA=DATA/api-cert.pem)", Code: "tls"}
	case errors.Is(err, errInterrupted):
		return api.Error{Message: "interrupted", Code: "interrupted"}
	case errors.As(err, new(usageError)):
		return api.Error{Message: err.Error(), Code: "usage"}
	case errors.As(err, new(inputError)):
		return api.Error{Message: err.Error(), Code: "invalid"}
	}
	return api.Error{Message: err.Error(), Code: "error"}
}

// report prints err the one way every verb fails: "berth: REASON" on
// stderr (then, for a failed deploy, the last log lines, indented), and with
// --json the api.Error on stdout unless the stream's result already said it.
// It returns the exit code.
func (c *cli) report(err error) int {
	var ee exitError
	if errors.As(err, &ee) {
		// The remote process's own failure: its output said why, and with
		// --json the stream's result did.
		if ee.msg != "" && !c.json {
			fmt.Fprintf(c.stderr, "berth: %s\n", oneLine(ee.msg))
		}
		return ee.code
	}
	e := apiErrorOf(err)
	e.Message = oneLine(e.Message)
	fmt.Fprintf(c.stderr, "berth: %s\n", e.Message)
	var resErr *client.ResultError
	isResult := errors.As(err, &resErr)
	if isResult && !c.json {
		for _, l := range resErr.Result.LastLogs {
			fmt.Fprintf(c.stderr, "    %s\n", l)
		}
	}
	if c.json && !isResult {
		b, _ := json.Marshal(e)
		fmt.Fprintf(c.stdout, "%s\n", b)
	}
	if errors.Is(err, errInterrupted) {
		return exitInterrupted
	}
	return exitFailure
}

// oneLine folds a multi-line message onto one line: docs/cli.md promises a
// one-line reason on failure.
func oneLine(s string) string {
	var parts []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			parts = append(parts, l)
		}
	}
	return strings.Join(parts, "; ")
}
