// Package h2 is the edge's own HTTP/2 server: it serves an http.Handler on
// connections that negotiated HTTP/2 over TLS, as net/http's HTTP/2 server
// does, with less work per stream.
//
// net/http's server runs each connection through one goroutine that owns
// all state, with a reader goroutine feeding it frames and every write of
// a handler passed to it over channels and waited for. Here the reader
// goroutine owns the protocol state and starts each stream's handler on a
// goroutine kept from an earlier stream (workers.go); a handler's answer
// is framed in the handler's own goroutine and queued, and the handler
// writes the connection's queue itself when nobody else is writing, in
// one go with one flush (writer.go). What the reader queues goes through
// a writer goroutine, so the reader never blocks on a write. Flow control
// is kept under one lock per connection.
//
// A Server with a Fast hook offers it each GET or HEAD stream that ended
// with its HEADERS before any http.Request is made (fast.go): the edge's
// HTTP/1.1 fast path serves those it can from the fields, and the Handler
// gets the rest.
//
// What it keeps from net/http: the same http.Request a handler sees
// (pseudo-headers checked, cookies joined, Expect: 100-continue answered
// on the first read of the body, declared trailers), the same answers
// (Date, Content-Type sniffing, Content-Length when the handler is done
// before the first flush, trailers declared or with http.TrailerPrefix,
// informational answers, HEAD), RST_STREAM with NO_ERROR after a full
// answer to a request whose body is still coming, the limits (250
// concurrent streams, 1 MiB windows, the header list size) and the
// defences (streams reset faster than their handlers end, floods of
// control frames a client does not read the answers to, CONTINUATION
// floods through x/net's Framer, which reads and checks every frame).
package h2

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"
)

// Server serves HTTP/2 connections.
type Server struct {
	// Handler answers every request Fast does not take.
	Handler http.Handler
	// Fast, when set, is offered each GET or HEAD stream that ended with
	// its HEADERS, in the stream's goroutine, before any http.Request is
	// made: it answers on w and returns true, or returns false having
	// written nothing, and Handler gets the stream (with r.Request()).
	Fast func(w http.ResponseWriter, r *FastRequest) bool
	// IdleTimeout closes a connection with no open stream for that long
	// (0: never).
	IdleTimeout time.Duration
	// MaxHeaderBytes bounds a request's header list (0:
	// http.DefaultMaxHeaderBytes).
	MaxHeaderBytes int
	// HTTP, when set, is the value of http.ServerContextKey in each
	// request's context.
	HTTP *http.Server
	// Log receives handler panics at error level and protocol errors at
	// debug level. Nil discards them.
	Log *slog.Logger

	// writeStall, when set, replaces the package's (tests).
	writeStall time.Duration

	mu       sync.Mutex
	conns    map[*conn]struct{}
	shutdown bool
}

// Tunables, as net/http's HTTP/2 server sets them.
const (
	maxStreams        = 250     // SETTINGS_MAX_CONCURRENT_STREAMS advertised
	streamRecvWindow  = 1 << 20 // SETTINGS_INITIAL_WINDOW_SIZE advertised
	connRecvWindow    = 1 << 20 // the connection's receive window
	prefaceTimeout    = 10 * time.Second
	goAwayTimeout     = time.Second // for the client to read a GOAWAY before the close
	maxQueuedControl  = 10000       // control frames queued unwritten before the connection is dropped
	maxQueuedData     = 1 << 20     // answer bytes queued unwritten per connection before handlers wait
	maxHandlersFactor = 4           // handlers still running, per advertised stream, before ENHANCE_YOUR_CALM
)

// writeStall bounds one write to the client (Server.writeStall, for the
// tests, replaces it).
const writeStall = 2 * time.Minute

// ServeConn serves c, which has made its TLS handshake and negotiated
// "h2", until it closes. Started during a Shutdown, it sends GOAWAY at once
// and answers what the client had already sent.
func (s *Server) ServeConn(c net.Conn) {
	cn := newConn(s, c)
	s.mu.Lock()
	if s.conns == nil {
		s.conns = make(map[*conn]struct{})
	}
	s.conns[cn] = struct{}{}
	down := s.shutdown
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.conns, cn)
		s.mu.Unlock()
	}()
	if down {
		cn.startGracefulShutdown()
	}
	cn.serve()
}

// Shutdown sends GOAWAY on every connection, lets their open streams
// finish, and returns once all are closed or ctx ends.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.shutdown = true
	for c := range s.conns {
		c.startGracefulShutdown()
	}
	s.mu.Unlock()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		s.mu.Lock()
		n := len(s.conns)
		s.mu.Unlock()
		if n == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// Close closes every connection at once.
func (s *Server) Close() error {
	s.mu.Lock()
	s.shutdown = true
	conns := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		c.close(errServerClosed)
	}
	return nil
}

// Conns reports how many connections are open.
func (s *Server) Conns() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

func (s *Server) log() *slog.Logger {
	if s.Log == nil {
		return discard
	}
	return s.Log
}

var discard = slog.New(slog.DiscardHandler)

func (s *Server) stall() time.Duration {
	if s.writeStall > 0 {
		return s.writeStall
	}
	return writeStall
}

func (s *Server) maxHeaderListSize() uint32 {
	if s.MaxHeaderBytes > 0 {
		return uint32(s.MaxHeaderBytes)
	}
	return http.DefaultMaxHeaderBytes
}
