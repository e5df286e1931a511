// Command edge measures berth's edge against nginx and caddy, each a plain
// reverse proxy of the same backend on loopback: requests per second and
// latency percentiles of a 1 KiB response with wrk, straight to the backend
// and through each proxy, then the same for cache hits (berth's entrypoint
// cache against nginx's proxy_cache; caddy has no cache of its own). It
// prints a markdown table with the ratios, and the CPU time each proxy
// spent per request: on a machine that the proxies share with wrk and the
// backend (and with anyone else's work), req/s moves with the load, while
// CPU per request says what a proxy costs. A second table gives the
// latency each proxy adds at a fixed rate well below saturation (-rate,
// open loop, as wrk2 measures), where percentiles measure the proxy rather
// than the queue in front of a saturated CPU.
//
//	bash bench/edge.sh            # installs nginx, caddy and wrk if missing
//	go run ./bench/edge -d 10s -c 64
//
// Every server runs in its own process: the backend and berth's edge are
// this program started again with a role (-role backend|edge), so the
// numbers do not share a Go runtime with each other or with the driver.
package main

import (
	"bufio"
	"cmp"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/berth-dev/berth/internal/edge"
	"github.com/berth-dev/berth/internal/edge/cache"
)

const host = "bench.localhost"

func main() {
	role := flag.String("role", "", "internal: run as backend or edge")
	listen := flag.String("listen", "127.0.0.1:0", "internal: address to serve on")
	backend := flag.String("backend", "", "internal: the backend's address (edge role)")
	logDir := flag.String("log-dir", "", "internal: where the edge writes its access log")
	tlsListen := flag.String("tls-listen", "", "internal: HTTPS address of the edge (edge role)")
	netH2Listen := flag.String("nethttp2-listen", "", "internal: HTTPS address of the edge with net/http's HTTP/2 server (edge role)")
	certDir := flag.String("cert-dir", "", "internal: directory of cert.pem and key.pem (edge role)")
	cpuProfile := flag.String("edge-cpuprofile", "", "write a CPU profile of berth's edge to this file")
	only := flag.String("only", "", "measure only the targets whose name matches this regexp")
	rounds := flag.Int("n", 3, "rounds: every target is measured once per round, and the median is shown")
	dur := flag.Duration("d", 4*time.Second, "wrk (or h2load) duration per target")
	conns := flag.Int("c", 64, "wrk connections")
	threads := flag.Int("t", 2, "wrk threads")
	rate := flag.Int("rate", 2000, "fixed-rate latency run: requests per second (0: skip it)")
	rateDur := flag.Duration("rate-d", 3*time.Second, "fixed-rate latency run: duration per target")
	h2Conns := flag.Int("h2-c", 32, "h2load connections")
	h2Streams := flag.Int("h2-m", 8, "h2load concurrent streams per connection")
	flag.Parse()
	var err error
	switch *role {
	case "backend":
		err = serveBackend(*listen)
	case "floor":
		err = serveFloor(*listen, *backend)
	case "edge":
		err = serveEdge(*listen, *tlsListen, *netH2Listen, *certDir, *backend, *logDir, *cpuProfile)
	case "":
		err = run(options{d: *dur, conns: *conns, threads: *threads, profile: *cpuProfile, only: *only, rounds: *rounds,
			rate: *rate, rateDur: *rateDur, h2Conns: *h2Conns, h2Streams: *h2Streams})
	default:
		err = fmt.Errorf("unknown role %q", *role)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench/edge:", err)
		os.Exit(1)
	}
}

// body is the 1 KiB response.
var body = []byte(strings.Repeat("berth edge bench 1KiB payload.\n", 40)[:1024])

func serveBackend(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hdr := w.Header()
		hdr["Content-Type"] = []string{"text/plain; charset=utf-8"}
		if strings.HasPrefix(r.URL.Path, "/cached") {
			hdr["Cache-Control"] = []string{"public, max-age=3600"}
		} else {
			hdr["Cache-Control"] = []string{"no-store"}
		}
		_, _ = w.Write(body)
	})
	fmt.Println(ln.Addr().String())
	return http.Serve(ln, h)
}

// serveEdge runs berth's edge as the daemon does (metrics, access log to a
// file): bench.localhost is a service route to the backend, /ep/... an
// entrypoint host with the backend as external URL origin, and
// cache.localhost the same entrypoint with its cache on.
func serveEdge(addr, tlsAddr, netH2Addr, certDir, backend, logDir, profile string) error {
	edge.TuneGC() // as the daemon does
	if profile != "" {
		f, err := os.Create(profile)
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	reg := prometheus.NewRegistry()
	m, err := edge.NewMetrics(reg)
	if err != nil {
		return err
	}
	lf, err := edge.OpenLogFile(filepath.Join(logDir, "edge-access.log"), edge.DefaultLogMaxBytes, 1)
	if err != nil {
		return err
	}
	defer lf.Close()
	e := edge.New(edge.Options{Logger: slog.New(slog.DiscardHandler), Metrics: m, AccessLog: lf})
	e.Update(edge.Route{Key: "bench/web", Hosts: []string{host}, Backends: []edge.Backend{{ID: "b1", Addr: backend}}, Timeout: 300 * time.Second})
	u, _ := url.Parse("http://" + backend)
	if err := e.SetEntrypoint(edge.Entrypoint{Name: "ep", Hosts: []string{"ep.localhost"}, Origin: edge.Origin{Name: u.String(), URL: u}, Controls: edge.Controls{Timeout: 300 * time.Second}}); err != nil {
		return err
	}
	c, err := cache.New(cache.Options{})
	if err != nil {
		return err
	}
	if err := e.SetEntrypoint(edge.Entrypoint{Name: "cached", Hosts: []string{"cache.localhost"}, Origin: edge.Origin{Name: u.String(), URL: u}, Cache: c}); err != nil {
		return err
	}
	cert, err := tls.LoadX509KeyPair(filepath.Join(certDir, "cert.pem"), filepath.Join(certDir, "key.pem"))
	if err != nil {
		return err
	}
	tlsLn, err := net.Listen("tcp", tlsAddr)
	if err != nil {
		return err
	}
	netH2Ln, err := net.Listen("tcp", netH2Addr)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	fmt.Println(ln.Addr().String())
	// As the daemon serves: one edge.Server for plain HTTP, one for HTTPS
	// (HTTP/1.1 on the fast loop, HTTP/2 on the edge's own server); and,
	// for comparison, one that leaves HTTP/2 to net/http's server, as the
	// edge did before.
	srv := &edge.Server{Edge: e, HTTP: &http.Server{Handler: e, ReadHeaderTimeout: 30 * time.Second}}
	tlsCfg := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	tlsSrv := &edge.Server{Edge: e, HTTP: &http.Server{Handler: e, ReadHeaderTimeout: 30 * time.Second, TLSConfig: tlsCfg}}
	netH2Srv := &edge.Server{Edge: e, NetHTTP2: true, HTTP: &http.Server{Handler: e, ReadHeaderTimeout: 30 * time.Second, TLSConfig: tlsCfg.Clone()}}
	go func() {
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, syscall.SIGTERM, os.Interrupt)
		<-sig
		_ = tlsSrv.Close()
		_ = netH2Srv.Close()
		_ = srv.Close()
	}()
	go func() { _ = tlsSrv.ServeTLS(tlsLn) }()
	go func() { _ = netH2Srv.ServeTLS(netH2Ln) }()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// proc is a server the driver started.
type proc struct {
	name string
	cmd  *exec.Cmd
	addr string
}

// cpu returns the CPU time the process and its children (nginx's workers)
// have used so far.
func (p *proc) cpu() time.Duration {
	if p == nil || p.cmd.Process == nil {
		return 0
	}
	pid := p.cmd.Process.Pid
	total := procCPU(pid)
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		if child, err := strconv.Atoi(e.Name()); err == nil && child != pid && procParent(child) == pid {
			total += procCPU(child)
		}
	}
	return total
}

// procStat returns the fields of /proc/PID/stat after the command name.
func procStat(pid int) []string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return nil
	}
	s := string(b)
	if i := strings.LastIndexByte(s, ')'); i >= 0 {
		s = s[i+1:]
	}
	return strings.Fields(s)
}

func procParent(pid int) int {
	f := procStat(pid)
	if len(f) < 2 {
		return 0
	}
	ppid, _ := strconv.Atoi(f[1])
	return ppid
}

// userHZ is the unit of the times in /proc/PID/stat on Linux.
const userHZ = 100

func procCPU(pid int) time.Duration {
	f := procStat(pid)
	if len(f) < 13 {
		return 0
	}
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(utime+stime) * time.Second / userHZ
}

func (p *proc) stop() {
	if p == nil || p.cmd.Process == nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = p.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		_ = p.cmd.Process.Kill()
		<-done
	}
}

// startSelf runs this program with a role and reads the address it prints.
func startSelf(name string, args ...string) (*proc, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(exe, args...)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		_ = cmd.Process.Kill()
		return nil, fmt.Errorf("%s did not start: %w", name, err)
	}
	return &proc{name: name, cmd: cmd, addr: strings.TrimSpace(line)}, nil
}

// startExternal runs nginx or caddy and waits until addr accepts.
func startExternal(name, addr string, args ...string) (*proc, error) {
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &proc{name: name, cmd: cmd, addr: addr}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond); err == nil {
			c.Close()
			return p, nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	p.stop()
	return nil, fmt.Errorf("%s did not listen on %s", name, addr)
}

func freePort() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// result is one wrk run.
type result struct {
	name, group string
	rps         float64
	p50, p99    time.Duration
	mean        bool // p50 is the mean (h2load), p99 unknown
	// cpu is the proxy's CPU time per request (0: not measured).
	cpu    time.Duration
	errors string
}

var (
	rpsRE     = regexp.MustCompile(`Requests/sec:\s+([0-9.]+)`)
	totalRE   = regexp.MustCompile(`(\d+) requests in`)
	pctRE     = regexp.MustCompile(`(?m)^\s+(50|99)%\s+([0-9.]+)(us|ms|s)\s*$`)
	nonOKRE   = regexp.MustCompile(`Non-2xx or 3xx responses: (\d+)`)
	socketErr = regexp.MustCompile(`Socket errors: .*`)
)

// wrk measures target; proxy, when not nil, is the process whose CPU time
// per request is reported.
func wrk(name, target, hostHeader string, proxy *proc, d time.Duration, c, t int) (result, error) {
	args := []string{"-t", strconv.Itoa(t), "-c", strconv.Itoa(c), "-d", d.String(), "--latency"}
	if hostHeader != "" {
		args = append(args, "-H", "Host: "+hostHeader)
	}
	args = append(args, target)
	// A short warm-up fills keep-alive pools and caches.
	_ = exec.Command("wrk", append([]string{"-t", "1", "-c", strconv.Itoa(c), "-d", "1s"}, args[6:]...)...).Run()
	cpu0 := proxy.cpu()
	out, err := exec.Command("wrk", args...).CombinedOutput()
	cpu := proxy.cpu() - cpu0
	if err != nil {
		return result{}, fmt.Errorf("wrk %s: %v: %s", name, err, out)
	}
	s := string(out)
	r := result{name: name}
	m := rpsRE.FindStringSubmatch(s)
	if m == nil {
		return r, fmt.Errorf("wrk %s: no Requests/sec in %s", name, s)
	}
	r.rps, _ = strconv.ParseFloat(m[1], 64)
	if m := totalRE.FindStringSubmatch(s); m != nil {
		if n, _ := strconv.ParseInt(m[1], 10, 64); n > 0 {
			r.cpu = cpu / time.Duration(n)
		}
	}
	for _, pm := range pctRE.FindAllStringSubmatch(s, -1) {
		v, _ := strconv.ParseFloat(pm[2], 64)
		unit := map[string]time.Duration{"us": time.Microsecond, "ms": time.Millisecond, "s": time.Second}[pm[3]]
		dur := time.Duration(v * float64(unit))
		if pm[1] == "50" {
			r.p50 = dur
		} else {
			r.p99 = dur
		}
	}
	var errs []string
	if m := nonOKRE.FindStringSubmatch(s); m != nil {
		errs = append(errs, m[1]+" non-2xx")
	}
	if m := socketErr.FindString(s); m != "" {
		errs = append(errs, m)
	}
	r.errors = strings.Join(errs, "; ")
	return r, nil
}

// options are the driver's flags.
type options struct {
	d                  time.Duration
	conns, threads     int
	profile, only      string
	rounds, rate       int
	rateDur            time.Duration
	h2Conns, h2Streams int
}

// Groups of targets: each is compared with nginx's (and caddy's) row of
// its group.
const (
	groupHTTP  = "HTTP/1.1"
	groupHTTPS = "HTTPS (HTTP/1.1 over TLS)"
	groupH2    = "HTTP/2 over TLS"
	groupCache = "cache hit"
)

// target is one thing measured.
type target struct {
	name, group, url, host string
	proc                   *proc // whose CPU time is counted
	h2                     bool  // measured with h2load
}

func run(o options) error {
	onlyRE, err := regexp.Compile(o.only)
	if err != nil {
		return fmt.Errorf("-only: %w", err)
	}
	for _, bin := range []string{"wrk", "nginx", "caddy", "h2load"} {
		if _, err := exec.LookPath(bin); err != nil {
			return fmt.Errorf("%s is not installed: run bash bench/edge.sh (it installs nginx, caddy, wrk and h2load)", bin)
		}
	}
	dir, err := os.MkdirTemp("", "berth-bench-edge-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	// nginx's workers run as an unprivileged user: they write the cache.
	if err := os.Chmod(dir, 0o755); err != nil {
		return err
	}
	if err := os.Mkdir(filepath.Join(dir, "cache"), 0o777); err != nil {
		return err
	}
	if err := os.Chmod(filepath.Join(dir, "cache"), 0o777); err != nil {
		return err
	}
	if err := writeCert(dir); err != nil {
		return err
	}

	backend, err := startSelf("backend", "-role", "backend")
	if err != nil {
		return err
	}
	defer backend.stop()
	berthTLS, _ := freePort()
	berthNetH2, _ := freePort()
	berth, err := startSelf("berth", "-role", "edge", "-backend", backend.addr, "-log-dir", dir, "-edge-cpuprofile", o.profile,
		"-tls-listen", berthTLS, "-nethttp2-listen", berthNetH2, "-cert-dir", dir)
	if err != nil {
		return err
	}
	defer berth.stop()

	floor, err := startSelf("floor", "-role", "floor", "-backend", backend.addr)
	if err != nil {
		return err
	}
	defer floor.stop()

	nginxAddr, _ := freePort()
	nginxCacheAddr, _ := freePort()
	nginxTLS, _ := freePort()
	if err := os.WriteFile(filepath.Join(dir, "nginx.conf"), []byte(nginxConf(dir, nginxAddr, nginxCacheAddr, nginxTLS, backend.addr)), 0o644); err != nil {
		return err
	}
	nginx, err := startExternal("nginx", nginxAddr, "-p", dir, "-c", filepath.Join(dir, "nginx.conf"), "-e", filepath.Join(dir, "nginx-error.log"))
	if err != nil {
		return err
	}
	defer nginx.stop()
	caddyAddr, _ := freePort()
	caddyTLS, _ := freePort()
	if err := os.WriteFile(filepath.Join(dir, "Caddyfile"), []byte(caddyConf(dir, caddyAddr, caddyTLS, backend.addr)), 0o644); err != nil {
		return err
	}
	caddy, err := startExternal("caddy", caddyAddr, "run", "--config", filepath.Join(dir, "Caddyfile"), "--adapter", "caddyfile")
	if err != nil {
		return err
	}
	defer caddy.stop()

	targets := []target{
		{"backend (direct)", groupHTTP, "http://" + backend.addr + "/", "", backend, false},
		{"berth edge (service route)", groupHTTP, "http://" + berth.addr + "/", host, berth, false},
		{"berth edge (entrypoint, URL origin)", groupHTTP, "http://" + berth.addr + "/", "ep.localhost", berth, false},
		{"nginx", groupHTTP, "http://" + nginxAddr + "/", "", nginx, false},
		{"caddy", groupHTTP, "http://" + caddyAddr + "/", "", caddy, false},
		{"floor: minimal epoll loop (reference, no HTTP rules)", groupHTTP, "http://" + floor.addr + "/", "", floor, false},
		{"berth edge, HTTPS (service route)", groupHTTPS, "https://" + berthTLS + "/", host, berth, false},
		{"nginx, HTTPS", groupHTTPS, "https://" + nginxTLS + "/", "", nginx, false},
		{"caddy, HTTPS", groupHTTPS, "https://" + caddyTLS + "/", "", caddy, false},
		{"berth edge, HTTP/2 (service route)", groupH2, "https://" + berthTLS + "/", host, berth, true},
		{"berth edge, HTTP/2 on net/http's server", groupH2, "https://" + berthNetH2 + "/", host, berth, true},
		{"nginx, HTTP/2", groupH2, "https://" + nginxTLS + "/", "", nginx, true},
		{"caddy, HTTP/2", groupH2, "https://" + caddyTLS + "/", "", caddy, true},
		{"berth edge, cache hit", groupCache, "http://" + berth.addr + "/cached", "cache.localhost", berth, false},
		{"nginx, cache hit", groupCache, "http://" + nginxCacheAddr + "/cached", "", nginx, false},
	}
	results, err := inRounds(o.rounds, len(targets), func(round, i int) (result, bool, error) {
		tg := targets[i]
		if !onlyRE.MatchString(tg.name) {
			return result{}, false, nil
		}
		if tg.h2 {
			fmt.Fprintf(os.Stderr, "round %d: h2load %s (%s)...\n", round, tg.name, o.d)
			r, err := h2load(tg, o.d, o.h2Conns, o.h2Streams, o.threads)
			return r, true, err
		}
		fmt.Fprintf(os.Stderr, "round %d: wrk %s (%s)...\n", round, tg.name, o.d)
		r, err := wrk(tg.name, tg.url, tg.host, tg.proc, o.d, o.conns, o.threads)
		r.group = tg.group
		return r, true, err
	}, median)
	if err != nil {
		return err
	}
	printTable(os.Stdout, results, o)

	// Latency added at a load every proxy carries with CPU to spare: at
	// saturation the percentiles measure the queue, not the proxy.
	if o.rate <= 0 {
		return nil
	}
	const rateConns = 16
	var direct latency // this round's, measured first
	lats, err := inRounds(o.rounds, len(targets), func(round, i int) (latency, bool, error) {
		tg := targets[i]
		// Against nginx only: caddy's throughput rows say enough, and
		// the bench stays inside bench/run's time.
		if !onlyRE.MatchString(tg.name) || tg.proc == caddy {
			return latency{}, false, nil
		}
		fmt.Fprintf(os.Stderr, "round %d: %d req/s to %s (%s)...\n", round, o.rate, tg.name, o.rateDur)
		l, err := fixedRate(tg.name, tg.url, tg.host, tg.h2, o.rate, rateConns, o.rateDur)
		if tg.proc == backend {
			l.direct, direct = true, l
		}
		l.added50, l.added99 = l.p50-direct.p50, l.p99-direct.p99
		return l, true, err
	}, medianLatency)
	if err != nil {
		return err
	}
	printLatency(os.Stdout, lats, o.rate, rateConns, o.rateDur, o.rounds)
	return nil
}

// writeCert writes a self-signed ECDSA P-256 certificate for 127.0.0.1 and
// its key to dir/cert.pem and dir/key.pem, which every proxy serves.
func writeCert(dir string) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "bench.localhost"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		DNSNames:     []string{"bench.localhost", "localhost"},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return err
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "cert.pem"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "key.pem"), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o644)
}

var (
	h2rpsRE  = regexp.MustCompile(`finished in [0-9.]+m?s, ([0-9.]+) req/s`)
	h2doneRE = regexp.MustCompile(`requests: (\d+) total, \d+ started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored`)
	h2meanRE = regexp.MustCompile(`time for request:\s+\S+\s+\S+\s+([0-9.]+)(us|ms|s)`)
	h2statRE = regexp.MustCompile(`status codes: \d+ 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx`)
	durUnits = map[string]time.Duration{"us": time.Microsecond, "ms": time.Millisecond, "s": time.Second}
)

// h2load measures an HTTP/2 target with h2load: conns connections with
// streams concurrent requests each. h2load reports no percentiles: p50
// holds its mean.
func h2load(tg target, d time.Duration, conns, streams, threads int) (result, error) {
	args := []string{"-c", strconv.Itoa(conns), "-m", strconv.Itoa(streams), "-t", strconv.Itoa(threads),
		"--warm-up-time=1", "-D", strconv.Itoa(int(d.Seconds()))}
	if tg.host != "" {
		args = append(args, "-H", ":authority: "+tg.host)
	}
	args = append(args, tg.url)
	cpu0 := tg.proc.cpu()
	out, err := exec.Command("h2load", args...).CombinedOutput()
	cpu := tg.proc.cpu() - cpu0
	if err != nil {
		return result{}, fmt.Errorf("h2load %s: %v: %s", tg.name, err, out)
	}
	s := string(out)
	r := result{name: tg.name, group: tg.group, mean: true}
	m := h2rpsRE.FindStringSubmatch(s)
	if m == nil {
		return r, fmt.Errorf("h2load %s: no req/s in %s", tg.name, s)
	}
	r.rps, _ = strconv.ParseFloat(m[1], 64)
	var errs []string
	if m := h2doneRE.FindStringSubmatch(s); m != nil {
		// The CPU was measured over the warm-up too: count its requests
		// by rate.
		if n := r.rps * (d.Seconds() + 1); n > 0 {
			r.cpu = time.Duration(float64(cpu) / n)
		}
		if m[4] != "0" || m[5] != "0" {
			errs = append(errs, m[4]+" failed, "+m[5]+" errored")
		}
	}
	if m := h2statRE.FindStringSubmatch(s); m != nil && (m[1] != "0" || m[2] != "0" || m[3] != "0") {
		errs = append(errs, "non-2xx: "+m[1]+" 3xx, "+m[2]+" 4xx, "+m[3]+" 5xx")
	}
	if m := h2meanRE.FindStringSubmatch(s); m != nil {
		v, _ := strconv.ParseFloat(m[1], 64)
		r.p50 = time.Duration(v * float64(durUnits[m[2]]))
	}
	r.errors = strings.Join(errs, "; ")
	return r, nil
}

// inRounds measures n targets (by index; measure says whether it took one)
// once per round and returns the median of each, in target order.
// Rounds interleave the targets, so that a burst of other load on the
// machine hits them all alike.
func inRounds[R any](rounds, n int, measure func(round, i int) (R, bool, error), median func([]R) R) ([]R, error) {
	runs := make([][]R, n)
	for round := 1; round <= max(rounds, 1); round++ {
		for i := range n {
			r, ok, err := measure(round, i)
			if err != nil {
				return nil, err
			}
			if ok {
				runs[i] = append(runs[i], r)
			}
		}
	}
	var out []R
	for _, rs := range runs {
		if len(rs) > 0 {
			out = append(out, median(rs))
		}
	}
	return out, nil
}

func nginxConf(dir, addr, cacheAddr, tlsAddr, backend string) string {
	return fmt.Sprintf(`worker_processes auto;
daemon off;
pid %[1]s/nginx.pid;
events { worker_connections 4096; }
http {
    access_log %[1]s/nginx-access.log combined buffer=64k flush=1s;
    client_body_temp_path %[1]s/body;
    proxy_temp_path %[1]s/proxy;
    fastcgi_temp_path %[1]s/fastcgi;
    uwsgi_temp_path %[1]s/uwsgi;
    scgi_temp_path %[1]s/scgi;
    proxy_cache_path %[1]s/cache keys_zone=bench:10m;
    upstream backend { server %[4]s; keepalive 128; }
    server {
        listen %[2]s;
        location / {
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $remote_addr;
        }
    }
    server {
        listen %[5]s ssl http2;
        ssl_certificate %[1]s/cert.pem;
        ssl_certificate_key %[1]s/key.pem;
        keepalive_requests 1000000;
        http2_max_requests 1000000;
        location / {
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $remote_addr;
            proxy_set_header X-Forwarded-Proto https;
        }
    }
    server {
        listen %[3]s;
        location / {
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_cache bench;
        }
    }
}
`, dir, addr, cacheAddr, backend, tlsAddr)
}

// caddyConf keeps as many idle connections to the backend as berth and
// nginx do: with caddy's default of 32 per host, fewer than wrk's 64
// connections, it would open (and close) a connection for about every
// other request.
func caddyConf(dir, addr, tlsAddr, backend string) string {
	return fmt.Sprintf(`{
	admin off
	auto_https off
}
(proxy) {
	reverse_proxy %[4]s {
		transport http {
			keepalive_idle_conns 512
			keepalive_idle_conns_per_host 512
		}
	}
}
http://%[2]s {
	import proxy
}
https://%[3]s {
	tls %[1]s/cert.pem %[1]s/key.pem
	import proxy
}
`, dir, addr, tlsAddr, backend)
}

// median is the run with the median req/s; its latencies are the medians
// of the runs' latencies.
func median(rs []result) result {
	sorted := slices.Clone(rs)
	slices.SortFunc(sorted, func(a, b result) int { return cmp.Compare(a.rps, b.rps) })
	m := sorted[len(sorted)/2]
	p50s, p99s, cpus := make([]time.Duration, len(rs)), make([]time.Duration, len(rs)), make([]time.Duration, len(rs))
	var errs []string
	for i, r := range rs {
		p50s[i], p99s[i], cpus[i] = r.p50, r.p99, r.cpu
		if r.errors != "" {
			errs = append(errs, r.errors)
		}
	}
	slices.Sort(p50s)
	slices.Sort(p99s)
	slices.Sort(cpus)
	m.p50, m.p99, m.cpu = p50s[len(p50s)/2], p99s[len(p99s)/2], cpus[len(cpus)/2]
	m.errors = strings.Join(errs, "; ")
	return m
}

func printTable(w io.Writer, rs []result, o options) {
	find := func(name string) result {
		for _, r := range rs {
			if r.name == name {
				return r
			}
		}
		return result{}
	}
	direct := find("backend (direct)")
	// Each group's rows are compared with nginx's and caddy's in that
	// group.
	base := map[string][2]string{
		groupHTTP:  {"nginx", "caddy"},
		groupHTTPS: {"nginx, HTTPS", "caddy, HTTPS"},
		groupH2:    {"nginx, HTTP/2", "caddy, HTTP/2"},
		groupCache: {"nginx, cache hit", ""},
	}
	fmt.Fprintf(w, "\nwrk -t%d -c%d -d%s (HTTP/2: h2load -c%d -m%d), 1 KiB response, loopback, %d CPUs, median of %d rounds\n\n",
		o.threads, o.conns, o.d, o.h2Conns, o.h2Streams, numCPU(), o.rounds)
	fmt.Fprintln(w, "| target | req/s | p50 | p99 | vs nginx | vs caddy | p99 added over direct | CPU/req | errors |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|---:|---:|---|")
	for _, r := range rs {
		b := base[r.group]
		vsN, vsC := ratio(r.rps, find(b[0]).rps), "-"
		if b[1] != "" {
			vsC = ratio(r.rps, find(b[1]).rps)
		}
		added, p50, p99 := "-", fmtDur(r.p50), fmtDur(r.p99)
		if r.mean {
			p50, p99 = fmtDur(r.p50)+" (mean)", "-"
		} else if r.name != direct.name {
			added = fmtDur(r.p99 - direct.p99)
		}
		cpu := "-"
		if r.cpu > 0 {
			cpu = fmt.Sprintf("%.1fµs", float64(r.cpu)/float64(time.Microsecond))
		}
		fmt.Fprintf(w, "| %s | %.0f | %s | %s | %s | %s | %s | %s | %s |\n", r.name, r.rps, p50, p99, vsN, vsC, added, cpu, orNone(r.errors))
	}
	fmt.Fprintln(w, "\nCPU/req: CPU time (user+system) of the proxy's processes per request; the backend's on the direct row. vs nginx/caddy: against their row of the same kind (HTTP, HTTPS, HTTP/2, cache hit).")
}

func ratio(a, b float64) string {
	if b == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f×", a/b)
}

func fmtDur(d time.Duration) string {
	switch {
	case d < 0:
		return "-" + fmtDur(-d)
	case d < time.Millisecond:
		return fmt.Sprintf("%dµs", d.Microseconds())
	}
	return fmt.Sprintf("%.2fms", float64(d)/float64(time.Millisecond))
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

func numCPU() int {
	n := 0
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), "processor") {
			n++
		}
	}
	return n
}
