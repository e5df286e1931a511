package ssmexec

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"io"
	"strconv"
	"strings"
)

// The exit code travels back in the output: the command runs under
//
//	sh -c '"$@"; printf "\036berth-exit-NONCE:%d\036" "$?"' sh ARGV...
//
// (after `stty -echo -onlcr` when the session has no local terminal)
// and the client strips the marker from the output and reads the code in
// it. The trade-offs: the image needs sh (Request.NoShell runs the command
// directly, exit code unknown); sh stays as the command's parent, so the
// command is not PID 1 of the session and a signal to the session reaches
// sh too; and output that the command prints after its own end (a
// background job) comes after the marker. The nonce is random per session,
// so output that only looks like a marker is left alone.

// markerPrefix is the marker up to the code.
func markerPrefix(nonce string) string { return "\x1eberth-exit-" + nonce + ":" }

// newNonce is a marker nonce.
func newNonce() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// wrap is the command line that runs argv and prints its exit code marker.
// Without a local terminal (tty false: a pipe or a file), the remote
// terminal is first told to stop echoing input and to stop turning "\n"
// into "\r\n", so the output is what the command wrote (where the image
// has stty).
func wrap(argv []string, nonce string, tty bool) string {
	script := `"$@"; printf '\036berth-exit-` + nonce + `:%d\036' "$?"`
	if !tty {
		script = `stty -echo -onlcr 2>/dev/null; ` + script
	}
	return commandLine(append([]string{"sh", "-c", script, "sh"}, argv...))
}

// commandLine quotes argv for the agent, which splits the command it is
// given as a POSIX shell would (without running a shell).
func commandLine(argv []string) string {
	q := make([]string, len(argv))
	for i, a := range argv {
		q[i] = quote(a)
	}
	return strings.Join(q, " ")
}

func quote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./=:,+@%") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// exitFilter passes output through, minus the exit code marker, which it
// reads. It holds back a tail that could be the start of a marker until
// the next write or flush.
type exitFilter struct {
	w      io.Writer
	prefix []byte // "" passes everything
	held   []byte
	found  bool
	code   int
}

func (f *exitFilter) Write(p []byte) (int, error) {
	if len(f.prefix) == 0 {
		return f.w.Write(p)
	}
	buf := append(f.held, p...)
	f.held = nil
	for {
		i := bytes.Index(buf, f.prefix)
		if i < 0 {
			break
		}
		rest := buf[i+len(f.prefix):]
		j := bytes.IndexByte(rest, 0x1e)
		if j < 0 {
			if len(rest) > 12 { // not a code: pass it on
				if err := f.emit(buf[:i+len(f.prefix)]); err != nil {
					return 0, err
				}
				buf = rest
				continue
			}
			if err := f.emit(buf[:i]); err != nil {
				return 0, err
			}
			f.held = append([]byte(nil), buf[i:]...)
			return len(p), nil
		}
		code, err := strconv.Atoi(string(rest[:j]))
		if err != nil {
			if err := f.emit(buf[:i+len(f.prefix)]); err != nil {
				return 0, err
			}
			buf = rest
			continue
		}
		if err := f.emit(buf[:i]); err != nil {
			return 0, err
		}
		f.found, f.code = true, code
		buf = rest[j+1:]
	}
	keep := 0
	for k := min(len(f.prefix)-1, len(buf)); k > 0; k-- {
		if bytes.HasPrefix(f.prefix, buf[len(buf)-k:]) {
			keep = k
			break
		}
	}
	if err := f.emit(buf[:len(buf)-keep]); err != nil {
		return 0, err
	}
	f.held = append([]byte(nil), buf[len(buf)-keep:]...)
	return len(p), nil
}

func (f *exitFilter) emit(b []byte) error {
	if len(b) == 0 {
		return nil
	}
	_, err := f.w.Write(b)
	return err
}

// flush writes what is held back.
func (f *exitFilter) flush() error {
	b := f.held
	f.held = nil
	return f.emit(b)
}
