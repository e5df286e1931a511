package controlplane

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/berth-dev/berth/internal/api"
	"github.com/berth-dev/berth/internal/attach"
	"github.com/berth-dev/berth/internal/runtime"
	"github.com/berth-dev/berth/internal/store"
)

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

// taskSession runs a task attached to the client's terminal or pipes: the
// same task lifecycle, with the session as its output hook and the client's
// frames as its input. The client going away stops the task.
func (d *Daemon) taskSession(w http.ResponseWriter, r *http.Request, app string, req api.TaskRunRequest) {
	if req.Detach {
		fail(w, fmt.Errorf("%w: a detached task cannot be interactive: drop --detach or -i/-t", ErrInvalid))
		return
	}
	ts, err := d.resolveTask(r.Context(), app, req, kindOneOff)
	if err != nil {
		fail(w, err)
		return
	}
	conn, err := upgrade(w)
	if err != nil {
		d.log.Warn("task session", "app", app, "err", err)
		return
	}
	defer conn.Close()
	run, err := d.startTask(d.ctx, ts, taskHooks{
		started: func(rec store.Task) { _ = conn.Write(attach.Started, []byte(rec.ID)) },
		output:  func(stream string, p []byte) { _ = conn.Write(outputFrame(stream), p) },
	})
	if err != nil {
		var se *taskStartError
		if errors.As(err, &se) {
			_ = conn.Write(attach.Exit, attach.EncodeExit(se.rec.ExitCode, oneLine(err.Error())))
			return
		}
		_ = conn.Write(attach.Error, []byte(oneLine(err.Error())))
		return
	}
	resizer, _ := d.pods.(runtime.PodAttacher)
	gone := readInput(conn,
		func(p []byte) {
			if run.stdin != nil {
				_, _ = run.stdin.Write(p)
			}
		},
		run.closeStdin,
		func(s attach.Size) {
			if resizer != nil && ts.tty {
				_ = resizer.ResizePod(d.ctx, run.pod, uint(s.Height), uint(s.Width))
			}
		})
	select {
	case <-run.done:
		rec := run.record()
		_ = conn.Write(attach.Exit, attach.EncodeExit(rec.ExitCode, taskNote(rec)))
	case <-gone:
		if d.ctx.Err() == nil {
			// A hung-up terminal: end the input first (an interactive
			// shell ignores SIGTERM, and would wait out the stop grace).
			run.closeStdin()
			d.stopTask(run, errClientGone)
		}
	case <-d.ctx.Done():
	}
}

// execSession runs cmd inside a running container, attached to the
// client, and records it as an "exec" event with its exit code.
func (d *Daemon) execSession(w http.ResponseWriter, app, svc string, target execTarget, req api.ExecRequest) {
	ex, ok := d.pods.(runtime.PodExecer)
	if !ok {
		fail(w, fmt.Errorf("%w: this engine cannot exec into containers", ErrInvalid))
		return
	}
	ctx, cancel := context.WithCancel(d.ctx)
	defer cancel()
	sess, err := ex.ExecPod(ctx, target.podID, target.container, req.Command, req.TTY)
	if err != nil {
		fail(w, fmt.Errorf("exec in instance %s: %w", target.instance, err))
		return
	}
	defer sess.Close()
	conn, err := upgrade(w)
	if err != nil {
		d.log.Warn("exec session", "app", app, "service", svc, "err", err)
		return
	}
	defer conn.Close()
	cmd := quoteCommand(req.Command)
	_ = conn.Write(attach.Started, []byte(target.instance))

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
			if req.TTY {
				_, _ = sess.Stdin().Write([]byte{4})
				return
			}
			_ = sess.Stdin().Close()
		},
		func(s attach.Size) {
			if req.TTY {
				_ = sess.Resize(ctx, uint(s.Height), uint(s.Width))
			}
		})
	select {
	case <-pumped:
	case <-gone:
		// Docker cannot kill an exec'd process; closing its stream hangs
		// up its terminal, which ends a shell.
		d.event(app, svc, "exec", fmt.Sprintf("exec in instance %s: %s: the client disconnected", target.instance, cmd))
		return
	case <-d.ctx.Done():
		return
	}
	code, err := sess.Wait(ctx)
	if err != nil {
		_ = conn.Write(attach.Error, []byte(oneLine(fmt.Sprintf("exec in instance %s: %v", target.instance, err))))
		return
	}
	d.event(app, svc, "exec", fmt.Sprintf("exec in instance %s: %s exited with code %d", target.instance, cmd, code))
	_ = conn.Write(attach.Exit, attach.EncodeExit(code, ""))
}

// copyFrames sends what r yields as frames of type t until it ends.
func copyFrames(conn *attach.Conn, t attach.Type, r io.Reader) {
	buf := make([]byte, 32<<10)
	for {
		n, err := r.Read(buf)
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
