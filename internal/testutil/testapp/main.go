// Command testapp is the one image berth's tests run. It is a small HTTP
// server whose behaviour is steered by environment variables and
// subcommands, so a test can make a container crash, hang, hog memory, shut
// down slowly or talk to its neighbours without a second image.
//
// It is built statically (CGO_ENABLED=0) into a FROM scratch image by
// testutil.TestAppImage; it must keep working with no shell, no libc and no
// files besides itself.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/coder/websocket"
)

func main() {
	if len(os.Args) > 1 {
		os.Exit(subcommand(os.Args[1], os.Args[2:]))
	}
	os.Exit(serve())
}

// subcommand runs argv[1] and returns the process exit code.
func subcommand(name string, args []string) int {
	switch name {
	case "serve":
		return serve()
	case "migrate":
		fmt.Println("migrating...")
		fmt.Println("migrated")
		code, _ := strconv.Atoi(os.Getenv("MIGRATE_EXIT"))
		return code
	case "exit":
		if len(args) != 1 {
			return usage("exit N")
		}
		code, err := strconv.Atoi(args[0])
		if err != nil {
			return usage("exit N")
		}
		return code
	case "lines":
		if len(args) != 1 {
			return usage("lines N")
		}
		n, err := strconv.Atoi(args[0])
		if err != nil {
			return usage("lines N")
		}
		for i := 1; i <= n; i++ {
			fmt.Printf("line %d\n", i)
		}
		return 0
	case "sleep":
		if len(args) != 1 {
			return usage("sleep DURATION")
		}
		d, err := time.ParseDuration(args[0])
		if err != nil {
			return usage("sleep DURATION")
		}
		time.Sleep(d)
		return 0
	case "echo":
		fmt.Println(strings.Join(args, " "))
		return 0
	case "env":
		if len(args) != 1 {
			return usage("env NAME")
		}
		v, ok := os.LookupEnv(args[0])
		if !ok {
			fmt.Fprintf(os.Stderr, "%s is not set\n", args[0])
			return 1
		}
		fmt.Println(v)
		return 0
	case "cat":
		if _, err := io.Copy(os.Stdout, os.Stdin); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		return 0
	default:
		fmt.Fprintf(os.Stderr, "testapp: unknown subcommand %q\n", name)
		return 2
	}
}

func usage(s string) int {
	fmt.Fprintf(os.Stderr, "usage: testapp %s\n", s)
	return 2
}

// serve runs the HTTP server until SIGTERM/SIGINT.
func serve() int {
	if os.Getenv("CRASH") == "1" {
		fmt.Fprintln(os.Stderr, "crashing on purpose")
		return 1
	}
	if d, ok := envDuration("CRASH_AFTER"); ok {
		time.AfterFunc(d, func() {
			fmt.Fprintf(os.Stderr, "crashing after %s on purpose\n", d)
			os.Exit(3)
		})
	}
	if os.Getenv("MEMHOG") == "1" {
		memhog()
	}
	// Subscribe before the delay so a SIGTERM during START_DELAY is honoured.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	if d, ok := envDuration("START_DELAY"); ok {
		fmt.Printf("starting in %s\n", d)
		select {
		case <-time.After(d):
		case sig := <-sigs:
			fmt.Printf("got %s while starting\n", sig)
			return 0
		}
	}

	port := os.Getenv("PORT")
	if port == "" {
		port = "8080"
	}
	ln, err := net.Listen("tcp", ":"+port)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	srv := &http.Server{Handler: newMux(), ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	fmt.Printf("listening on :%s\n", port)

	for {
		select {
		case err := <-served:
			fmt.Fprintln(os.Stderr, err)
			return 1
		case sig := <-sigs:
			switch mode := os.Getenv("EXIT_ON_SIGTERM"); mode {
			case "", "graceful":
				fmt.Println("shutting down")
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				err := srv.Shutdown(ctx)
				cancel()
				if err != nil {
					fmt.Fprintln(os.Stderr, "shutdown:", err)
				}
				return 0
			case "ignore":
				fmt.Printf("ignoring %s\n", sig)
			case "immediate":
				fmt.Println("exiting immediately")
				return 0
			default:
				code, err := strconv.Atoi(mode)
				if err != nil {
					fmt.Fprintf(os.Stderr, "bad EXIT_ON_SIGTERM %q\n", mode)
					return 2
				}
				fmt.Printf("exiting with %d\n", code)
				return code
			}
		}
	}
}

func envDuration(name string) (time.Duration, bool) {
	v := os.Getenv(name)
	if v == "" {
		return 0, false
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		fmt.Fprintf(os.Stderr, "bad %s %q: %v\n", name, v, err)
		os.Exit(2)
	}
	return d, true
}

// hog keeps every chunk reachable so the collector cannot return it.
var hog [][]byte

// memhog allocates and touches memory until the kernel kills the process.
func memhog() {
	const chunk = 4 << 20
	for i := 1; ; i++ {
		b := make([]byte, chunk)
		for j := 0; j < len(b); j += 4096 {
			b[j] = 1
		}
		hog = append(hog, b)
		if i%4 == 0 {
			fmt.Printf("allocated %d MiB\n", i*chunk>>20)
		}
	}
}

func newMux() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		// ROOT_STATUS makes / fail (health checks still pass): a revision
		// that starts answering 500s.
		if code, err := strconv.Atoi(os.Getenv("ROOT_STATUS")); err == nil && code >= 400 {
			http.Error(w, "failing on purpose", code)
			return
		}
		version := os.Getenv("VERSION")
		if version == "" {
			version = "v1"
		}
		fmt.Fprintf(w, "hello from %s\n", version)
	})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		if os.Getenv("HEALTH_FAIL") == "1" {
			http.Error(w, "unhealthy on purpose", http.StatusInternalServerError)
			return
		}
		fmt.Fprint(w, "ok")
	})
	mux.HandleFunc("GET /env/{name}", func(w http.ResponseWriter, r *http.Request) {
		v, ok := os.LookupEnv(r.PathValue("name"))
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
		select {
		case <-time.After(d):
			fmt.Fprint(w, "slept")
		case <-r.Context().Done():
		}
	})
	mux.HandleFunc("GET /sse", handleSSE)
	mux.HandleFunc("GET /ws", handleWS)
	mux.HandleFunc("GET /fetch", handleFetch)
	mux.HandleFunc("GET /headers", func(w http.ResponseWriter, r *http.Request) {
		h := map[string][]string(r.Header.Clone())
		h["Host"] = []string{r.Host}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(h)
	})
	mux.HandleFunc("GET /hostname", func(w http.ResponseWriter, r *http.Request) {
		name, err := os.Hostname()
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		fmt.Fprint(w, name)
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
			select {
			case <-time.After(every):
			case <-r.Context().Done():
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

// fetchClient opens a connection per fetch, so each one resolves the name
// afresh (as a test of who answers to a name needs).
var fetchClient = &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}

func handleFetch(w http.ResponseWriter, r *http.Request) {
	u := r.URL.Query().Get("url")
	if u == "" {
		http.Error(w, "url is required", http.StatusBadRequest)
		return
	}
	resp, err := fetchClient.Get(u)
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
