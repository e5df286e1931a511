package fake

// The simulation of internal/testutil/testapp: each function mirrors the
// part of testapp/main.go of the same name, with its output lines and exit
// codes. Keep them in step when testapp changes.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/coder/websocket"
)

// codeNoExec is a container's exit when its command is not an executable
// of its image (the shell's "command not found").
const codeNoExec = 127

// main runs the process's argv as testapp would, returning its exit code.
func (p *proc) main() int {
	if len(p.argv) == 0 {
		fmt.Fprintln(p.stderr, "fake: no command to run (the image has no CMD and the spec no Command)")
		return codeNoExec
	}
	if p.argv[0] != p.binary {
		fmt.Fprintf(p.stderr, "fake: exec %q: no such file in the image (the fake engine runs only the test app, %s)\n", p.argv[0], p.binary)
		return codeNoExec
	}
	if len(p.argv) > 1 {
		return p.subcommand(p.argv[1], p.argv[2:])
	}
	return p.serve()
}

func (p *proc) getenv(name string) string { return p.env[name] }

func (p *proc) subcommand(name string, args []string) int {
	switch name {
	case "serve":
		return p.serve()
	case "migrate":
		fmt.Fprintln(p.stdout, "migrating...")
		fmt.Fprintln(p.stdout, "migrated")
		code, _ := strconv.Atoi(p.getenv("MIGRATE_EXIT"))
		return code
	case "exit":
		if len(args) != 1 {
			return p.usage("exit N")
		}
		code, err := strconv.Atoi(args[0])
		if err != nil {
			return p.usage("exit N")
		}
		return code & 0xff // as the kernel keeps it
	case "lines":
		if len(args) != 1 {
			return p.usage("lines N")
		}
		n, err := strconv.Atoi(args[0])
		if err != nil {
			return p.usage("lines N")
		}
		for i := 1; i <= n; i++ {
			fmt.Fprintf(p.stdout, "line %d\n", i)
		}
		return 0
	case "sleep":
		if len(args) != 1 {
			return p.usage("sleep DURATION")
		}
		d, err := time.ParseDuration(args[0])
		if err != nil {
			return p.usage("sleep DURATION")
		}
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
		case <-p.ctx.Done():
		}
		return 0
	case "echo":
		fmt.Fprintln(p.stdout, strings.Join(args, " "))
		return 0
	case "env":
		if len(args) != 1 {
			return p.usage("env NAME")
		}
		v, ok := p.env[args[0]]
		if !ok {
			fmt.Fprintf(p.stderr, "%s is not set\n", args[0])
			return 1
		}
		fmt.Fprintln(p.stdout, v)
		return 0
	case "cat":
		if _, err := io.Copy(p.stdout, p.stdin); err != nil {
			fmt.Fprintln(p.stderr, err)
			return 1
		}
		return 0
	default:
		fmt.Fprintf(p.stderr, "testapp: unknown subcommand %q\n", name)
		return 2
	}
}

func (p *proc) usage(s string) int {
	fmt.Fprintf(p.stderr, "usage: testapp %s\n", s)
	return 2
}

// serve is testapp's HTTP server, on a real 127.0.0.1 listener bound to
// PORT of the pod's namespace, until SIGTERM.
func (p *proc) serve() int {
	if p.getenv("CRASH") == "1" {
		fmt.Fprintln(p.stderr, "crashing on purpose")
		return 1
	}
	crashc := make(chan struct{})
	if d, ok, code := p.envDuration("CRASH_AFTER"); code != 0 {
		return code
	} else if ok {
		t := time.AfterFunc(d, func() {
			fmt.Fprintf(p.stderr, "crashing after %s on purpose\n", d)
			close(crashc)
		})
		defer t.Stop()
	}
	if p.getenv("MEMHOG") == "1" {
		return p.memhog()
	}
	p.notifyTerm()
	if d, ok, code := p.envDuration("START_DELAY"); code != 0 {
		return code
	} else if ok {
		fmt.Fprintf(p.stdout, "starting in %s\n", d)
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-p.termc:
			t.Stop()
			fmt.Fprintln(p.stdout, "got terminated while starting")
			return 0
		case <-crashc:
			t.Stop()
			return 3
		case <-p.ctx.Done():
			t.Stop()
			return 0
		}
	}

	port := p.getenv("PORT")
	if port == "" {
		port = "8080"
	}
	n, err := strconv.Atoi(port)
	if err != nil || n <= 0 || n > 65535 {
		fmt.Fprintf(p.stderr, "listen tcp: lookup tcp/%s: unknown port\n", port)
		return 1
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(p.stderr, err)
		return 1
	}
	if err := p.net.bind(n, ln.Addr().String()); err != nil {
		ln.Close()
		fmt.Fprintf(p.stderr, "listen tcp :%s: bind: address already in use\n", port)
		return 1
	}
	defer p.net.unbind(n, ln.Addr().String())
	srv := &http.Server{Handler: p.mux(), ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	defer func() {
		srv.Close()
		<-served
	}()
	fmt.Fprintf(p.stdout, "listening on :%s\n", port)

	for {
		select {
		case <-p.ctx.Done():
			return 0 // killed: the code is the kill's
		case <-crashc:
			return 3
		case <-p.termc:
			switch mode := p.getenv("EXIT_ON_SIGTERM"); mode {
			case "", "graceful":
				fmt.Fprintln(p.stdout, "shutting down")
				ctx, cancel := context.WithTimeout(p.ctx, 30*time.Second)
				err := srv.Shutdown(ctx)
				cancel()
				if err != nil {
					fmt.Fprintln(p.stderr, "shutdown:", err)
				}
				return 0
			case "ignore":
				fmt.Fprintln(p.stdout, "ignoring terminated")
			case "immediate":
				fmt.Fprintln(p.stdout, "exiting immediately")
				return 0
			default:
				code, err := strconv.Atoi(mode)
				if err != nil {
					fmt.Fprintf(p.stderr, "bad EXIT_ON_SIGTERM %q\n", mode)
					return 2
				}
				fmt.Fprintf(p.stdout, "exiting with %d\n", code)
				return code & 0xff
			}
		}
	}
}

// envDuration parses a duration variable; a bad one is testapp's exit 2.
func (p *proc) envDuration(name string) (d time.Duration, ok bool, code int) {
	v := p.getenv(name)
	if v == "" {
		return 0, false, 0
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		fmt.Fprintf(p.stderr, "bad %s %q: %v\n", name, v, err)
		return 0, false, 2
	}
	return d, true, 0
}

// memhog allocates in 4 MiB chunks, saying so every 16 MiB, until the
// kernel kills the process at its memory limit (before the chunk that
// would reach it: the runtime needs some too; with 32 MiB Docker logs
// "allocated 16 MiB" only).
func (p *proc) memhog() int {
	const chunk = 4 << 20
	for i := 1; int64(i)*chunk < p.memLimit; i++ {
		if i%4 == 0 {
			fmt.Fprintf(p.stdout, "allocated %d MiB\n", i*chunk>>20)
		}
	}
	p.kill(codeKilled, true)
	return codeKilled
}

func (p *proc) mux() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		if code, err := strconv.Atoi(p.getenv("ROOT_STATUS")); err == nil && code >= 400 {
			http.Error(w, "failing on purpose", code)
			return
		}
		version := p.getenv("VERSION")
		if version == "" {
			version = "v1"
		}
		fmt.Fprintf(w, "hello from %s\n", version)
	})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		if p.getenv("HEALTH_FAIL") == "1" {
			http.Error(w, "unhealthy on purpose", http.StatusInternalServerError)
			return
		}
		fmt.Fprint(w, "ok")
	})
	mux.HandleFunc("GET /env/{name}", func(w http.ResponseWriter, r *http.Request) {
		v, ok := p.env[r.PathValue("name")]
		if !ok {
			http.NotFound(w, r)
			return
		}
		fmt.Fprint(w, v)
	})
	mux.HandleFunc("GET /sleep", func(w http.ResponseWriter, r *http.Request) {
		d, err := time.ParseDuration(r.URL.Query().Get("d"))
		if err != nil {
			http.Error(w, "d must be a duration like 200ms", http.StatusBadRequest)
			return
		}
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
			fmt.Fprint(w, "slept")
		case <-r.Context().Done():
		}
	})
	mux.HandleFunc("GET /sse", handleSSE)
	mux.HandleFunc("GET /ws", handleWS)
	mux.HandleFunc("GET /fetch", p.handleFetch)
	mux.HandleFunc("GET /headers", func(w http.ResponseWriter, r *http.Request) {
		h := map[string][]string(r.Header.Clone())
		h["Host"] = []string{r.Host}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(h)
	})
	mux.HandleFunc("GET /hostname", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, p.hostname)
	})
	return mux
}

func handleSSE(w http.ResponseWriter, r *http.Request) {
	n, err := strconv.Atoi(r.URL.Query().Get("n"))
	if err != nil || n < 0 {
		n = 5
	}
	every, err := time.ParseDuration(r.URL.Query().Get("every"))
	if err != nil {
		every = 100 * time.Millisecond
	}
	rc := http.NewResponseController(w)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	_ = rc.Flush()
	for i := 1; i <= n; i++ {
		if i > 1 {
			t := time.NewTimer(every)
			select {
			case <-t.C:
			case <-r.Context().Done():
				t.Stop()
				return
			}
		}
		fmt.Fprintf(w, "id: %d\ndata: event %d\n\n", i, i)
		if err := rc.Flush(); err != nil {
			return
		}
	}
}

func handleWS(w http.ResponseWriter, r *http.Request) {
	c, err := websocket.Accept(w, r, &websocket.AcceptOptions{InsecureSkipVerify: true})
	if err != nil {
		return
	}
	defer c.CloseNow()
	for {
		typ, msg, err := c.Read(r.Context())
		if err != nil {
			return
		}
		if err := c.Write(r.Context(), typ, msg); err != nil {
			return
		}
	}
}

// handleFetch fetches url from inside the pod: localhost is the pod's own
// containers, other names the aliases on its network.
func (p *proc) handleFetch(w http.ResponseWriter, r *http.Request) {
	u := r.URL.Query().Get("url")
	if u == "" {
		http.Error(w, "url is required", http.StatusBadRequest)
		return
	}
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		DisableKeepAlives: true,
		DialContext:       p.net.dial,
		Proxy:             nil,
	}}
	resp, err := client.Get(u)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil && !errors.Is(err, io.EOF) {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	fmt.Fprintf(w, "%d\n%s", resp.StatusCode, body)
}
