package fake

import (
	"context"
	"fmt"
	"io"
	"maps"
	"sync"

	"github.com/berth-dev/berth/internal/runtime"
)

// ExecPod runs cmd in a running container of a pod ("" is the main one),
// as the test app would run it, in the pod's namespace and with the
// container's environment.
func (e *Engine) ExecPod(ctx context.Context, id, container string, cmd []string, tty bool) (runtime.ExecSession, error) {
	if err := e.w.fail(opExecPod); err != nil {
		return nil, err
	}
	w := e.w
	w.mu.Lock()
	defer w.mu.Unlock()
	p, err := w.pod(id)
	if err != nil {
		return nil, err
	}
	c := p.container(container)
	if c == nil {
		return nil, fmt.Errorf("%w: no container %q in pod %s", runtime.ErrNotFound, container, p.name)
	}
	if !c.running || p.phase != phaseRunning {
		return nil, fmt.Errorf("fake: exec in container %q of pod %s: it is not running", c.name, p.name)
	}
	pr := newProc(append([]string(nil), cmd...), maps.Clone(c.proc.env))
	pr.binary = c.proc.binary
	pr.hostname = c.proc.hostname
	pr.memLimit = c.proc.memLimit
	pr.net = c.proc.net
	s := &session{proc: pr, stdin: newPipe(), stdout: newPipe(), stderr: newPipe()}
	pr.stdin = s.stdin
	pr.stdout = output{pr, s.stdout}
	pr.stderr = output{pr, s.stderr}
	if tty {
		pr.stderr = output{pr, s.stdout}
	}
	c.execs[pr] = struct{}{}
	pr.start(&w.wg, func(int, bool) {
		w.mu.Lock()
		delete(c.execs, pr)
		w.mu.Unlock()
		s.stdout.Close()
		s.stderr.Close()
	})
	return s, nil
}

// session is an exec'd process's stdio.
type session struct {
	proc   *proc
	stdin  *pipe
	stdout *pipe
	stderr *pipe
}

func (s *session) Stdin() io.WriteCloser { return s.stdin }
func (s *session) Stdout() io.Reader     { return s.stdout }
func (s *session) Stderr() io.Reader     { return s.stderr }

// Close cuts the session: the command is killed, as when the connection
// to an exec is lost.
func (s *session) Close() error {
	s.proc.kill(codeKilled, false)
	s.stdin.Close()
	return nil
}

func (s *session) Resize(ctx context.Context, height, width uint) error { return nil }

func (s *session) Wait(ctx context.Context) (int, error) {
	select {
	case <-s.proc.done:
		s.proc.mu.Lock()
		defer s.proc.mu.Unlock()
		return s.proc.code, nil
	case <-ctx.Done():
		return -1, ctxErr(ctx)
	}
}

// attachment is a client attached to a created pod's main container: it
// gets the next run's stdio.
type attachment struct {
	stdin  *pipe // nil without OpenStdin
	stdout *pipe
	stderr *pipe
	once   sync.Once
}

func (a *attachment) close() {
	a.once.Do(func() {
		if a.stdin != nil {
			a.stdin.Close()
		}
		a.stdout.Close()
		a.stderr.Close()
	})
}

// attachStream is the Stream AttachPod returns.
type attachStream struct {
	a     *attachment
	w     *world
	c     *container
	stdin io.WriteCloser
}

func (s *attachStream) Stdin() io.WriteCloser { return s.stdin }
func (s *attachStream) Stdout() io.Reader     { return s.a.stdout }
func (s *attachStream) Stderr() io.Reader     { return s.a.stderr }

// Close detaches: the process's stdin ends (EOF), its output goes on to
// the log only.
func (s *attachStream) Close() error {
	s.w.mu.Lock()
	if s.c.attach == s.a {
		s.c.attach = nil
	}
	s.w.mu.Unlock()
	s.a.close()
	return nil
}

// AttachPod connects to a created (or exited) pod's main container stdio
// for its next run. With the pod's TTY, stderr comes on stdout.
func (e *Engine) AttachPod(ctx context.Context, id string) (runtime.Stream, error) {
	if err := e.w.fail(opAttachPod); err != nil {
		return nil, err
	}
	w := e.w
	w.mu.Lock()
	defer w.mu.Unlock()
	p, err := w.pod(id)
	if err != nil {
		return nil, err
	}
	if p.phase != phaseCreated && p.phase != phaseExited {
		return nil, fmt.Errorf("fake: AttachPod: pod %s is %s: attach before it starts", p.name, p.state())
	}
	main := p.containers[0]
	if main.attach != nil {
		main.attach.close()
	}
	a := &attachment{stdout: newPipe(), stderr: newPipe()}
	var stdin io.WriteCloser = discard{}
	if p.spec.OpenStdin {
		a.stdin = newPipe()
		stdin = a.stdin
	}
	if p.spec.TTY {
		a.stderr.Close() // everything comes on stdout
	}
	main.attach = a
	return &attachStream{a: a, w: w, c: main, stdin: stdin}, nil
}

// ResizePod sets the window of a pod's TTY; the fake has none to resize.
func (e *Engine) ResizePod(ctx context.Context, id string, height, width uint) error {
	e.w.mu.Lock()
	defer e.w.mu.Unlock()
	_, err := e.w.pod(id)
	return err
}
