package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"golang.org/x/term"

	"github.com/berth-dev/berth/internal/attach"
)

// session drives an attach session (task run -i/-t, exec) from this
// terminal or these pipes until the remote process exits. With tty and a
// terminal on stdin, the terminal is put in raw mode (keys, Ctrl-C
// included, go to the remote process) and restored before returning, and
// window resizes are forwarded. Without stdin, the remote input is closed
// at once.
func (c *cli) session(ctx context.Context, conn *attach.Conn, tty, stdin bool) (attach.Result, error) {
	defer conn.Close()
	var in io.Reader
	if stdin {
		in = c.stdin
	}
	resizes, restore, err := c.terminal(tty)
	if err != nil {
		return attach.Result{}, err
	}
	defer restore()
	res, err := conn.Pump(ctx, in, tty, c.stdout, c.stderr, resizes)
	if err != nil {
		return res, err
	}
	return res, nil
}

// terminal puts this terminal in raw mode for a session with a tty (keys,
// Ctrl-C included, go to the remote process) and sends its size, then
// each window resize, on the channel it returns; restore gives the
// terminal back. Without a tty or a terminal on stdin it does nothing and
// the channel is nil.
func (c *cli) terminal(tty bool) (<-chan attach.Size, func(), error) {
	f, ok := c.stdin.(*os.File)
	if !ok || !tty || !term.IsTerminal(int(f.Fd())) {
		return nil, func() {}, nil
	}
	fd := int(f.Fd())
	old, err := term.MakeRaw(fd)
	if err != nil {
		return nil, nil, fmt.Errorf("put the terminal in raw mode: %w", err)
	}
	resizes := make(chan attach.Size, 1)
	send := func() {
		w, h, err := term.GetSize(fd)
		if err != nil {
			return
		}
		select { // keep only the newest size
		case <-resizes:
		default:
		}
		resizes <- attach.Size{Height: uint16(h), Width: uint16(w)}
	}
	send()
	winch := make(chan os.Signal, 1)
	signal.Notify(winch, syscall.SIGWINCH)
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-winch:
				send()
			case <-done:
				return
			}
		}
	}()
	return resizes, func() {
		signal.Stop(winch)
		close(done)
		_ = term.Restore(fd, old)
	}, nil
}
