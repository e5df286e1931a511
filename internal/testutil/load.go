package testutil

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Load is open-loop HTTP traffic: a GET every 1/rate seconds, each on its
// own goroutine whatever the earlier ones do, so a server that pauses shows
// it as slow or failed requests rather than as fewer requests sent. The
// client keeps connections alive, as browsers and proxies do.
type Load struct {
	ok, failed, refused atomic.Int64
	maxLatency          atomic.Int64 // nanoseconds
	mu                  sync.Mutex
	errs                []string
	quit                chan struct{}
	wg                  sync.WaitGroup
}

// LoadResult is what a Load saw.
type LoadResult struct {
	OK, Failed int64
	// Refused counts the failures that were a refused connection.
	Refused int64
	// Errors are the first few failures, for the test's message.
	Errors []string
	// MaxLatency is the slowest answered request.
	MaxLatency time.Duration
}

// StartLoad sends GET url with Host host at rate requests per second,
// until Stop. Only loopback URLs, please.
func StartLoad(url, host string, rate int) *Load {
	l := &Load{quit: make(chan struct{})}
	hc := &http.Client{Timeout: 15 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64, Proxy: nil}}
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		t := time.NewTicker(time.Second / time.Duration(rate))
		defer t.Stop()
		for {
			select {
			case <-l.quit:
				return
			case <-t.C:
			}
			l.wg.Add(1)
			go func() {
				defer l.wg.Done()
				l.one(hc, url, host)
			}()
		}
	}()
	return l
}

func (l *Load) one(hc *http.Client, url, host string) {
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	req.Host = host
	start := time.Now()
	resp, err := hc.Do(req)
	if err == nil {
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err == nil && resp.StatusCode != http.StatusOK {
			err = fmt.Errorf("status %d", resp.StatusCode)
		}
	}
	if err != nil {
		l.failed.Add(1)
		if errors.Is(err, syscall.ECONNREFUSED) {
			l.refused.Add(1)
		}
		l.mu.Lock()
		if len(l.errs) < 10 {
			l.errs = append(l.errs, fmt.Sprintf("%s: %v", start.Format("15:04:05.000"), err))
		}
		l.mu.Unlock()
		return
	}
	l.ok.Add(1)
	took := int64(time.Since(start))
	for {
		m := l.maxLatency.Load()
		if took <= m || l.maxLatency.CompareAndSwap(m, took) {
			break
		}
	}
}

// Stop sends no more requests, waits for those in flight and reports.
func (l *Load) Stop() LoadResult {
	close(l.quit)
	l.wg.Wait()
	l.mu.Lock()
	defer l.mu.Unlock()
	return LoadResult{OK: l.ok.Load(), Failed: l.failed.Load(), Refused: l.refused.Load(), Errors: l.errs, MaxLatency: time.Duration(l.maxLatency.Load())}
}
