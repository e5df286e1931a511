// Package client is the Go client of berth's HTTP API (see package api for
// the endpoints and wire types). It owns the transport to the daemon: unix
// socket or TLS with a bearer token, error decoding and newline-delimited
// JSON streams. It must not format anything for people: that is package cli.
package client
