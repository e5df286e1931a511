// Command hello is berth's example app: a small web service with a health
// check, a release step and a graceful shutdown, packaged FROM scratch.
//
// Build the static binary, then deploy it:
//
//	CGO_ENABLED=0 go build -o examples/hello/hello ./examples/hello
//	cd examples/hello && berth deploy
package main

import (
	"context"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

func main() {
	logger := slog.New(slog.NewTextHandler(os.Stdout, nil))
	if len(os.Args) > 1 && os.Args[1] == "migrate" {
		os.Exit(migrate(logger))
	}
	if len(os.Args) > 1 && os.Args[1] != "serve" {
		fmt.Fprintf(os.Stderr, "usage: hello [serve|migrate]\n")
		os.Exit(2)
	}
	if err := serve(logger); err != nil {
		logger.Error("server failed", "err", err)
		os.Exit(1)
	}
}

// config is what the app reads from its environment.
type config struct {
	Version string
	Message string
	Port    string
}

func configFromEnv() config {
	c := config{
		Version: os.Getenv("VERSION"),
		Message: os.Getenv("APP_MESSAGE"),
		Port:    os.Getenv("PORT"),
	}
	if c.Version == "" {
		c.Version = "dev"
	}
	if c.Message == "" {
		c.Message = "Hello from berth!"
	}
	if c.Port == "" {
		c.Port = "8080"
	}
	return c
}

// migrate is the release step: a real app would change its schema here.
func migrate(logger *slog.Logger) int {
	cfg := configFromEnv()
	fmt.Printf("hello %s: would migrate: create table greetings (id, message)\n", cfg.Version)
	fmt.Println("migrations complete")
	logger.Info("migrate done", "version", cfg.Version)
	return 0
}

var page = template.Must(template.New("page").Parse(`<!doctype html>
<html><head><meta charset="utf-8"><title>hello</title></head>
<body>
<h1>{{.Message}}</h1>
<p>version {{.Version}}, served by {{.Host}}</p>
</body></html>
`))

// newHandler serves the app's routes.
func newHandler(cfg config) http.Handler {
	host, _ := os.Hostname()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.Header.Get("Accept"), "text/html") {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			_ = page.Execute(w, struct{ Message, Version, Host string }{cfg.Message, cfg.Version, host})
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintf(w, "%s (version %s)\n", cfg.Message, cfg.Version)
	})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "ok")
	})
	return mux
}

// serve runs until SIGTERM or SIGINT, then lets in-flight requests finish.
func serve(logger *slog.Logger) error {
	cfg := configFromEnv()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	srv := &http.Server{
		Addr:              ":" + cfg.Port,
		Handler:           newHandler(cfg),
		ReadHeaderTimeout: 10 * time.Second,
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	logger.Info("listening", "port", cfg.Port, "version", cfg.Version)

	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	logger.Info("shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 25*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	logger.Info("stopped")
	return nil
}
