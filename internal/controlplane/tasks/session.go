package tasks

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/berth-dev/berth/internal/attach"
	"github.com/berth-dev/berth/internal/controlplane/apierr"
	"github.com/berth-dev/berth/internal/runtime"
	"github.com/berth-dev/berth/internal/store"
)

// Sessions: a task run attached to the client's terminal or pipes (`berth
// task run -i/-t`), and a command exec'd in a running instance (`berth
// exec`). The API server refuses what it can as an ordinary HTTP error,
// then upgrades the connection to the attach protocol and hands it here.

// Attach runs a task attached to conn: the same task lifecycle, with the
// session as its output hook and the client's frames as its input. The
// client going away stops the task.
func (r *Runner) Attach(conn *attach.Conn, ts Spec) {
	ctx := r.cfg.Ctx
	run, err := r.Start(ctx, ts, Hooks{
		Started: func(rec store.Task) { _ = conn.Write(attach.Started, []byte(rec.ID)) },
		Output:  func(stream string, p []byte) { _ = conn.Write(outputFrame(stream), p) },
	})
	if err != nil {
		var se *StartError
		if errors.As(err, &se) {
			_ = conn.Write(attach.Exit, attach.EncodeExit(se.Task.ExitCode, oneLine(err.Error())))
			return
		}
		_ = conn.Write(attach.Error, []byte(oneLine(err.Error())))
		return
	}
	resizer, _ := r.cfg.Pods.(runtime.PodAttacher)
	gone := readInput(conn,
		func(p []byte) {
			if run.stdin != nil {
				_, _ = run.stdin.Write(p)
			}
		},
		run.closeStdin,
		func(s attach.Size) {
			if resizer != nil && ts.tty {
				_ = resizer.ResizePod(ctx, run.pod, uint(s.Height), uint(s.Width))
			}
		})
	select {
	case <-run.done:
		rec := run.Record()
		_ = conn.Write(attach.Exit, attach.EncodeExit(rec.ExitCode, note(rec)))
	case <-gone:
		if ctx.Err() == nil {
			// A hung-up terminal: end the input first (an interactive
			// shell ignores SIGTERM, and would wait out the stop grace).
			run.closeStdin()
			r.Stop(run, ErrClientGone)
		}
	case <-ctx.Done():
	}
}

// ExecTarget is the container an exec runs in: a pod's, by its name in
// the pod ("" = the service's own).
type ExecTarget struct {
	// Instance is the instance's ID, for messages.
	Instance  string
	Pod       string
	Container string
}

// Exec is a command started in a running pod's container, waiting for its
// client (Serve).
type Exec struct {
	r            *Runner
	ctx          context.Context
	cancel       context.CancelFunc
	sess         runtime.ExecSession
	app, service string
	target       ExecTarget
	command      []string
	tty          bool
}

// Exec starts command in target's container of a running instance of an
// app's service, to be attached to its client with Serve. Nothing has to
// be redeployed to allow it. Close it once done.
func (r *Runner) Exec(app, service string, target ExecTarget, command []string, tty bool) (*Exec, error) {
	ex, ok := r.cfg.Pods.(runtime.PodExecer)
	if !ok {
		return nil, fmt.Errorf("%w: this engine cannot exec into containers", apierr.ErrInvalid)
	}
	ctx, cancel := context.WithCancel(r.cfg.Ctx)
	sess, err := ex.ExecPod(ctx, target.Pod, target.Container, command, tty)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("exec in instance %s: %w", target.Instance, err)
	}
	return &Exec{r: r, ctx: ctx, cancel: cancel, sess: sess, app: app, service: service, target: target, command: command, tty: tty}, nil
}

// Close ends the exec's stream (which hangs up its terminal).
func (e *Exec) Close() {
	e.sess.Close()
	e.cancel()
}

// Serve attaches the exec to conn until it ends or the client goes, and
// records it as an "exec" event with its exit code.
func (e *Exec) Serve(conn *attach.Conn) {
	r, sess, ctx := e.r, e.sess, e.ctx
	cmd := quoteCommand(e.command)
	_ = conn.Write(attach.Started, []byte(e.target.Instance))

	pumped := make(chan struct{})
	go func() {
		defer close(pumped)
		done := make(chan struct{})
		go func() {
			defer close(done)
			copyFrames(conn, attach.Stderr, sess.Stderr())
		}()
		copyFrames(conn, attach.Stdout, sess.Stdout())
		<-done
	}()
	gone := readInput(conn,
		func(p []byte) { _, _ = sess.Stdin().Write(p) },
		func() {
			if e.tty {
				_, _ = sess.Stdin().Write([]byte{4})
				return
			}
			_ = sess.Stdin().Close()
		},
		func(s attach.Size) {
			if e.tty {
				_ = sess.Resize(ctx, uint(s.Height), uint(s.Width))
			}
		})
	select {
	case <-pumped:
	case <-gone:
		// Docker cannot kill an exec'd process; closing its stream hangs
		// up its terminal, which ends a shell.
		r.cfg.Event(e.app, e.service, "exec", fmt.Sprintf("exec in instance %s: %s: the client disconnected", e.target.Instance, cmd))
		return
	case <-r.cfg.Ctx.Done():
		return
	}
	code, err := sess.Wait(ctx)
	if err != nil {
		_ = conn.Write(attach.Error, []byte(oneLine(fmt.Sprintf("exec in instance %s: %v", e.target.Instance, err))))
		return
	}
	r.cfg.Event(e.app, e.service, "exec", fmt.Sprintf("exec in instance %s: %s exited with code %d", e.target.Instance, cmd, code))
	_ = conn.Write(attach.Exit, attach.EncodeExit(code, ""))
}

// outputFrame is the frame type of a stream's output.
func outputFrame(stream string) attach.Type {
	if stream == "stderr" {
		return attach.Stderr
	}
	return attach.Stdout
}

// readInput serves a session's client frames until the client goes: input
// to stdin, the end of input, window sizes. The returned channel closes
// when the connection does.
func readInput(conn *attach.Conn, stdin func([]byte), closeStdin func(), resize func(attach.Size)) <-chan struct{} {
	gone := make(chan struct{})
	go func() {
		defer close(gone)
		for {
			f, err := conn.Read()
			if err != nil {
				return
			}
			switch f.Type {
			case attach.Stdin:
				stdin(f.Payload)
			case attach.CloseStdin:
				closeStdin()
			case attach.Resize:
				if s, err := attach.DecodeResize(f.Payload); err == nil && s.Height > 0 && s.Width > 0 {
					resize(s)
				}
			}
		}
	}()
	return gone
}

// copyFrames sends what rd yields as frames of type t until it ends.
func copyFrames(conn *attach.Conn, t attach.Type, rd io.Reader) {
	buf := make([]byte, 32<<10)
	for {
		n, err := rd.Read(buf)
		if n > 0 {
			if conn.Write(t, buf[:n]) != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}
