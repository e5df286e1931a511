package h2

import "sync"

// workers runs handlers on goroutines kept from earlier handlers: a new
// goroutine starts with a small stack and grows it, copying it each time,
// down the edge's call chain; one that served a handler before has the
// stack already.
type workers struct {
	mu   sync.Mutex
	idle []*worker
}

type worker struct {
	jobs chan func()
}

// maxIdleWorkers is how many goroutines wait for work: a stream's
// worth of concurrency on a few busy connections.
const maxIdleWorkers = 512

var pool workers

// run runs f on an idle worker, or a new one.
func (p *workers) run(f func()) {
	p.mu.Lock()
	if n := len(p.idle); n > 0 {
		w := p.idle[n-1]
		p.idle[n-1] = nil
		p.idle = p.idle[:n-1]
		p.mu.Unlock()
		w.jobs <- f
		return
	}
	p.mu.Unlock()
	w := &worker{jobs: make(chan func(), 1)}
	w.jobs <- f
	go w.loop(p)
}

func (w *worker) loop(p *workers) {
	for f := range w.jobs {
		f()
		p.mu.Lock()
		if len(p.idle) >= maxIdleWorkers {
			p.mu.Unlock()
			return
		}
		p.idle = append(p.idle, w)
		p.mu.Unlock()
	}
}
