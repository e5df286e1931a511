package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"sync"
	"time"
)

// latency is one fixed-rate run against a target.
type latency struct {
	name           string
	p50, p99, p999 time.Duration
	failed, total  int
	// added are p50 and p99 over the backend's in the same round: rounds
	// interleave the targets, so the difference cancels most of the
	// machine's drift between rounds.
	added50, added99 time.Duration
	direct           bool
}

// fixedRate sends rate requests per second to url for d, open loop as wrk2
// does: request i is due at start + i/rate, and its latency runs from that
// moment, so a proxy that stalls is charged for the requests queued behind
// the stall (no coordinated omission). conns keep-alive connections take
// the requests in turn.
func fixedRate(name, url, hostHeader string, h2 bool, rate, conns int, d time.Duration) (latency, error) {
	n := int(d.Seconds() * float64(rate))
	lat := make([]time.Duration, n)
	failed := make([]bool, n)
	jobs := make(chan int, n)
	interval := time.Second / time.Duration(rate)
	var start time.Time
	var wg sync.WaitGroup
	for range conns {
		tr := &http.Transport{
			Proxy:               nil,
			DialContext:         (&net.Dialer{Timeout: time.Second}).DialContext,
			MaxConnsPerHost:     1,
			MaxIdleConnsPerHost: 1,
			DisableCompression:  true,
			// HTTPS targets: HTTP/1.1 unless the row is HTTP/2's.
			TLSClientConfig:   &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // the bench's own certificate
			ForceAttemptHTTP2: h2,
		}
		if !h2 {
			tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
		}
		c := &http.Client{Transport: tr, Timeout: 10 * time.Second}
		defer tr.CloseIdleConnections()
		// Open the connection before the clock starts.
		if err := get(c, url, hostHeader); err != nil {
			return latency{}, fmt.Errorf("%s: %w", name, err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				err := get(c, url, hostHeader)
				lat[i] = time.Since(start.Add(time.Duration(i) * interval))
				failed[i] = err != nil
			}
		}()
	}
	start = time.Now()
	for i := range n {
		if wait := time.Until(start.Add(time.Duration(i) * interval)); wait > 0 {
			time.Sleep(wait)
		}
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	r := latency{name: name, total: n}
	for _, f := range failed {
		if f {
			r.failed++
		}
	}
	slices.Sort(lat)
	r.p50, r.p99, r.p999 = lat[n/2], lat[n*99/100], lat[n*999/1000]
	return r, nil
}

func get(c *http.Client, url, hostHeader string) error {
	req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	if hostHeader != "" {
		req.Host = hostHeader
	}
	res, err := c.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	if _, err := io.Copy(io.Discard, res.Body); err != nil {
		return err
	}
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("status %d", res.StatusCode)
	}
	return nil
}

// medianLatency takes the median of each percentile over the rounds.
func medianLatency(rs []latency) latency {
	m := rs[0]
	pick := func(f func(latency) time.Duration) time.Duration {
		v := make([]time.Duration, len(rs))
		for i, r := range rs {
			v[i] = f(r)
		}
		slices.Sort(v)
		return v[len(v)/2]
	}
	m.p50 = pick(func(r latency) time.Duration { return r.p50 })
	m.p99 = pick(func(r latency) time.Duration { return r.p99 })
	m.p999 = pick(func(r latency) time.Duration { return r.p999 })
	m.added50 = pick(func(r latency) time.Duration { return r.added50 })
	m.added99 = pick(func(r latency) time.Duration { return r.added99 })
	m.failed, m.total = 0, 0
	for _, r := range rs {
		m.failed += r.failed
		m.total += r.total
	}
	return m
}

func printLatency(w io.Writer, rs []latency, rate, conns int, d time.Duration, rounds int) {
	fmt.Fprintf(w, "\nFixed rate: %d req/s over %d keep-alive connections for %s, open loop (latency from each request's due time), median of %d rounds\n\n", rate, conns, d, rounds)
	fmt.Fprintln(w, "| target | p50 | p99 | p99.9 | p50 added | p99 added | failed |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|---:|")
	for _, r := range rs {
		a50, a99 := "-", "-"
		if !r.direct {
			a50, a99 = fmtDur(r.added50), fmtDur(r.added99)
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %d of %d |\n", r.name, fmtDur(r.p50), fmtDur(r.p99), fmtDur(r.p999), a50, a99, r.failed, r.total)
	}
	fmt.Fprintln(w, "\nadded: over the same percentile straight to the backend in the same round; the median over the rounds.")
}
