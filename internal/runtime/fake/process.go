package fake

import (
	"context"
	"io"
	"net"
	"sync"
)

// Exit codes of a process ended by a signal, as tini (PID 1 of berth's
// containers on Docker) reports them: 128 + the signal.
const (
	codeKilled = 137 // SIGKILL, or the kernel out of memory
	codeTermed = 143 // SIGTERM, in a process that does not handle it
)

// podNet is what a process sees of its pod's network namespace.
type podNet interface {
	// bind serves port of the namespace at addr (a real 127.0.0.1
	// listener); an error when another process serves it.
	bind(port int, addr string) error
	unbind(port int, addr string)
	// dial connects from inside the pod: localhost is the pod, other
	// names are the aliases on its network.
	dial(ctx context.Context, network, address string) (net.Conn, error)
}

// proc is one simulated process: a run of a container, or an exec.
type proc struct {
	argv     []string
	env      map[string]string
	binary   string // the image's one executable
	hostname string
	memLimit int64 // bytes the process may use before the kernel kills it
	net      podNet
	stdin    io.ReadCloser
	stdout   io.Writer
	stderr   io.Writer

	ctx    context.Context // ends when the process dies
	cancel context.CancelFunc

	mu      sync.Mutex
	dead    bool
	code    int
	oom     bool
	handles bool          // SIGTERM is caught (testapp serve)
	termc   chan struct{} // SIGTERM, when caught
	killed  chan struct{} // closed by kill
	frozen  bool
	thawc   chan struct{} // closed by thaw
	done    chan struct{} // closed once the exit is reported
}

func newProc(argv []string, env map[string]string) *proc {
	ctx, cancel := context.WithCancel(context.Background())
	return &proc{
		argv: argv, env: env, ctx: ctx, cancel: cancel,
		stdin:  io.NopCloser(eofReader{}),
		stdout: io.Discard, stderr: io.Discard,
		termc:  make(chan struct{}, 1),
		killed: make(chan struct{}),
		done:   make(chan struct{}),
	}
}

type eofReader struct{}

func (eofReader) Read([]byte) (int, error) { return 0, io.EOF }

// start runs the process; onExit is called once with its exit, from a
// goroutine wg tracks, before done closes.
func (p *proc) start(wg *sync.WaitGroup, onExit func(code int, oom bool)) {
	progDone := make(chan int, 1)
	wg.Add(2)
	go func() {
		defer wg.Done()
		progDone <- p.main()
	}()
	go func() {
		defer wg.Done()
		select {
		case code := <-progDone:
			p.exitWhenThawed(code)
		case <-p.killed:
		}
		p.cancel()
		p.stdin.Close()
		p.mu.Lock()
		code, oom := p.code, p.oom
		p.mu.Unlock()
		onExit(code, oom)
		close(p.done)
	}()
}

// exitWhenThawed records the program's own exit, held while the process
// is frozen (a frozen process cannot exit), unless it is killed.
func (p *proc) exitWhenThawed(code int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for p.frozen && !p.dead {
		thawc := p.thawc
		p.mu.Unlock()
		select {
		case <-thawc:
		case <-p.killed:
		}
		p.mu.Lock()
	}
	if !p.dead {
		p.dead, p.code = true, code
	}
}

// kill ends the process at once with code, whatever it does (SIGKILL, or
// the kernel when oom).
func (p *proc) kill(code int, oom bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.dead {
		return
	}
	p.dead, p.code, p.oom = true, code, oom
	close(p.killed)
	p.cancel()
}

// term delivers SIGTERM: to the program when it catches it, else the
// default action kills the process.
func (p *proc) term() {
	p.mu.Lock()
	if p.dead {
		p.mu.Unlock()
		return
	}
	if !p.handles {
		p.mu.Unlock()
		p.kill(codeTermed, false)
		return
	}
	select {
	case p.termc <- struct{}{}:
	default: // one pending is enough, as with signal.Notify's buffer of 1
	}
	p.mu.Unlock()
}

// notifyTerm is the program's signal.Notify(SIGTERM).
func (p *proc) notifyTerm() {
	p.mu.Lock()
	p.handles = true
	p.mu.Unlock()
}

func (p *proc) freeze() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.frozen {
		p.frozen, p.thawc = true, make(chan struct{})
	}
}

func (p *proc) thaw() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.frozen {
		p.frozen = false
		close(p.thawc)
	}
}

// alive reports whether the process has not died yet.
func (p *proc) alive() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return !p.dead
}

// output is a process's stdout or stderr: what a dead process writes is
// dropped, as the kernel would never let it write.
type output struct {
	p *proc
	w io.Writer
}

func (o output) Write(b []byte) (int, error) {
	if !o.p.alive() {
		return len(b), nil
	}
	return o.w.Write(b)
}
