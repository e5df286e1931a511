// Package h1 is the edge's HTTP/1.1 fast path: a server that reads request
// heads itself and proxies the common request (GET or HEAD without a body)
// to an upstream on a pooled connection, writing the answer straight back,
// and hands every other request, with its connection, to a net/http server.
//
// It exists for CPU per request: net/http's server and
// httputil.ReverseProxy cost about twice what the proxying itself does (a
// header map per message, a context and a background read per request, a
// goroutine hand-off per read). It owns
//
//   - the connection loop (server.go, conn.go): accept (and make the TLS
//     handshake: HTTP/1.x over TLS runs the same loop, HTTP/2 goes to
//     net/http), read a head, ask the Handler, proxy, answer (a Responder:
//     the edge's cache hits, respond.go) or hand over; keep-alive,
//     pipelining, timeouts, and a Shutdown that answers what its clients
//     already sent, as net/http's. On a TCP socket the loop runs inside one
//     RawConn.Read of it, so it waits before it reads (loop.go); socket
//     calls are raw (sock.go) and deadlines move lazily (deadline.go);
//   - the parsers (parse.go) of request and response heads, which accept a
//     strict subset of HTTP/1.1 and leave the rest to net/http, so that the
//     two can never disagree on where a message ends;
//   - the framing checks (framing.go) in front of every HTTP/1.x connection
//     net/http serves, handed over or HTTPS, which refuse ambiguous framing
//     (request smuggling) before net/http reads it;
//   - the exchange with the upstream (proxy.go): retry on a connection that
//     failed before any answer, 1xx, chunked and close-delimited bodies,
//     streaming, a client that leaves;
//   - the same exchange for HTTP/2 (stream.go): an HTTP/2 server hands
//     it a GET or HEAD stream without a body (Server.ServeStream), which
//     is routed and proxied on the same connections and answered through
//     the stream's http.ResponseWriter as ReverseProxy answers, with no
//     http.Request unless a Responder or an error page asks for one;
//   - the transport (transport.go), which the net/http path's
//     ReverseProxy uses too: requests without a body that may be sent twice
//     go out on pooled keep-alive connections in the caller's goroutine.
//
// It knows nothing of routes, balancing, metrics or entrypoints: a Handler
// (the edge) decides for each request whether the fast path takes it and
// where it goes (a Target), and hears how it went through an Exchange. The
// edge's own pages are written by the Server's ErrorPage hook.
package h1
