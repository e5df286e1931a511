package docker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/pkg/stdcopy"

	"github.com/berth-dev/berth/internal/runtime"
)

// attachContainer connects to a container's stdio; attach to a created container
// before Start to see all of its output. Stdin reaches the process only when
// the spec had OpenStdin. Without a TTY, closing stdin sends EOF; with a TTY
// the engine takes it as a detach and ends the output too, so send ^D (0x04)
// to end the input instead. Stdout and Stderr are unbuffered pipes: read both
// concurrently (with a TTY, Stderr is empty).
func (e *Engine) attachContainer(ctx context.Context, id string) (runtime.Stream, error) {
	info, err := e.cli.ContainerInspect(ctx, id)
	if err != nil {
		if cerrdefs.IsNotFound(err) {
			return nil, fmt.Errorf("%w: %s", runtime.ErrNotFound, id)
		}
		return nil, fmt.Errorf("attach %s: %w", shortID(id), err)
	}
	return e.attach(ctx, info)
}

// attach is attachContainer of a container as it was just inspected.
func (e *Engine) attach(ctx context.Context, info container.InspectResponse) (runtime.Stream, error) {
	id := info.ID
	tty := info.Config != nil && info.Config.Tty
	openStdin := info.Config != nil && info.Config.OpenStdin
	resp, err := e.cli.ContainerAttach(ctx, id, container.AttachOptions{
		Stream: true,
		Stdin:  openStdin,
		Stdout: true,
		Stderr: true,
	})
	if err != nil {
		return nil, fmt.Errorf("attach %s: %w", shortID(id), err)
	}
	return newStream(resp, tty), nil
}

// resizeContainer sets a TTY container's window size. The container must be
// running.
func (e *Engine) resizeContainer(ctx context.Context, id string, height, width uint) error {
	if err := e.cli.ContainerResize(ctx, id, container.ResizeOptions{Height: height, Width: width}); err != nil {
		if cerrdefs.IsNotFound(err) {
			return fmt.Errorf("%w: %s", runtime.ErrNotFound, id)
		}
		return fmt.Errorf("resize %s: %w", shortID(id), err)
	}
	return nil
}

// stream is a hijacked attach or exec connection split into stdio.
type stream struct {
	resp   types.HijackedResponse
	stdout *io.PipeReader
	stderr *io.PipeReader
	stdin  stdinWriter
	done   chan struct{} // closed when the output ends
	once   sync.Once
}

var _ runtime.Stream = (*stream)(nil)

func newStream(resp types.HijackedResponse, tty bool) *stream {
	outR, outW := io.Pipe()
	errR, errW := io.Pipe()
	s := &stream{resp: resp, stdout: outR, stderr: errR, done: make(chan struct{})}
	s.stdin.resp = &s.resp
	go func() {
		defer close(s.done)
		var err error
		if tty {
			_, err = io.Copy(outW, resp.Reader)
		} else {
			_, err = stdcopy.StdCopy(outW, errW, resp.Reader)
		}
		if errors.Is(err, io.EOF) {
			err = nil
		}
		outW.CloseWithError(err)
		errW.CloseWithError(err)
	}()
	return s
}

func (s *stream) Stdin() io.WriteCloser { return &s.stdin }
func (s *stream) Stdout() io.Reader     { return s.stdout }
func (s *stream) Stderr() io.Reader     { return s.stderr }

// Close ends the connection; readers then return io.ErrClosedPipe or EOF.
func (s *stream) Close() error {
	s.once.Do(func() {
		s.resp.Close()
		s.stdout.Close()
		s.stderr.Close()
	})
	return nil
}

// stdinWriter writes to the hijacked connection; Close half-closes it so
// the engine passes EOF on to the process.
type stdinWriter struct {
	resp *types.HijackedResponse
}

func (w *stdinWriter) Write(p []byte) (int, error) { return w.resp.Conn.Write(p) }
func (w *stdinWriter) Close() error                { return w.resp.CloseWrite() }

// Exec runs cmd inside a running container, attached to its stdio (stdin
// included: close it to send EOF, or with a TTY send ^D, as for AttachPod).
// Read Stdout and Stderr concurrently, or close the session, or the command
// may block on a full pipe.
func (e *Engine) Exec(ctx context.Context, id string, cmd []string, tty bool) (runtime.ExecSession, error) {
	created, err := e.cli.ContainerExecCreate(ctx, id, container.ExecOptions{
		Cmd:          cmd,
		Tty:          tty,
		AttachStdin:  true,
		AttachStdout: true,
		AttachStderr: true,
	})
	if err != nil {
		if cerrdefs.IsNotFound(err) {
			return nil, fmt.Errorf("%w: %s", runtime.ErrNotFound, id)
		}
		return nil, fmt.Errorf("exec in %s: %w", shortID(id), err)
	}
	resp, err := e.cli.ContainerExecAttach(ctx, created.ID, container.ExecAttachOptions{Tty: tty})
	if err != nil {
		return nil, fmt.Errorf("exec in %s: %w", shortID(id), err)
	}
	return &execSession{stream: newStream(resp, tty), e: e, id: created.ID}, nil
}

// execSession is a stream plus the exec's ID for its exit code and resizes.
type execSession struct {
	*stream
	e  *Engine
	id string
}

var _ runtime.ExecSession = (*execSession)(nil)

// Resize sets the exec's TTY size.
func (s *execSession) Resize(ctx context.Context, height, width uint) error {
	if err := s.e.cli.ContainerExecResize(ctx, s.id, container.ResizeOptions{Height: height, Width: width}); err != nil {
		return fmt.Errorf("resize exec: %w", err)
	}
	return nil
}

// Wait returns the command's exit code once it ends. The engine has no
// blocking wait for execs, so it polls, quickly at first.
func (s *execSession) Wait(ctx context.Context) (int, error) {
	delay := 10 * time.Millisecond
	for {
		ins, err := s.e.cli.ContainerExecInspect(ctx, s.id)
		if err != nil {
			return 0, fmt.Errorf("exec inspect: %w", err)
		}
		// Running=false also means "not started yet", when Pid is still 0;
		// a command that could not start at all (not found) keeps Pid 0 but
		// its output has ended.
		if !ins.Running && (ins.Pid != 0 || s.outputDone()) {
			return ins.ExitCode, nil
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(delay):
		}
		if delay < 200*time.Millisecond {
			delay *= 2
		}
	}
}

func (s *stream) outputDone() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}
