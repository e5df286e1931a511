package h2

import (
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// workers runs handlers on goroutines kept from earlier handlers: a new
// goroutine starts with a small stack and grows it, copying it each time,
// down the edge's call chain; one that served a handler before has the
// stack already. A worker idle for maxIdle ends, so a burst leaves no
// goroutines behind.
type workers struct {
	mu      sync.Mutex
	idle    []*worker // the most recently used last
	max     int       // idle workers kept at most
	janitor sync.Once
}

type worker struct {
	jobs     chan *stream
	lastUsed time.Time
}

const (
	maxIdleWorkers = 512 // in all shards together
	maxIdle        = time.Second
)

// pools holds the idle workers in shards, one per P when the first
// connection came, and each connection takes its workers from one of
// them: a single lock, taken twice per stream by every connection on
// every core, would be the server's busiest.
var (
	pools     []workers
	poolsOnce sync.Once
	nextPool  atomic.Uint32
)

// poolFor returns the shard of a new connection.
func poolFor() *workers {
	poolsOnce.Do(func() {
		n := runtime.GOMAXPROCS(0)
		pools = make([]workers, n)
		for i := range pools {
			pools[i].max = max(maxIdleWorkers/n, 16)
		}
	})
	return &pools[int(nextPool.Add(1)-1)%len(pools)]
}

// run runs st's handler on an idle worker, or a new one.
func (p *workers) run(st *stream) {
	p.janitor.Do(func() { go p.sweep() })
	p.mu.Lock()
	if n := len(p.idle); n > 0 {
		w := p.idle[n-1]
		p.idle[n-1] = nil
		p.idle = p.idle[:n-1]
		p.mu.Unlock()
		w.jobs <- st
		return
	}
	p.mu.Unlock()
	w := &worker{jobs: make(chan *stream, 1)}
	w.jobs <- st
	go w.loop(p)
}

func (w *worker) loop(p *workers) {
	for st := range w.jobs {
		if st == nil {
			return
		}
		st.runHandler()
		now := time.Now()
		p.mu.Lock()
		if len(p.idle) >= p.max {
			p.mu.Unlock()
			return
		}
		w.lastUsed = now
		p.idle = append(p.idle, w)
		p.mu.Unlock()
	}
}

// sweep ends the workers idle for longer than maxIdle, twice a second.
func (p *workers) sweep() {
	for range time.Tick(maxIdle / 2) {
		cutoff := time.Now().Add(-maxIdle)
		p.mu.Lock()
		n := 0
		for n < len(p.idle) && p.idle[n].lastUsed.Before(cutoff) {
			p.idle[n].jobs <- nil
			n++
		}
		if n > 0 {
			m := copy(p.idle, p.idle[n:])
			clear(p.idle[m:])
			p.idle = p.idle[:m]
		}
		p.mu.Unlock()
	}
}
