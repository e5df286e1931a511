// Package certs provides the certificates behind the edge's HTTPS listener.
//
// It owns two sources of certificates and the choice between them:
//
//   - a local certificate authority, created under DataDir/certs (ca.pem,
//     ca-key.pem), whose root is name-constrained to berth's default
//     domain, localhost, the other internal suffixes (.internal, .local,
//     .home.arpa) and the loopback addresses. It mints short-lived leaf
//     certificates during the TLS handshake, only for names the edge
//     routes (Options.Routed) and loopback addresses; a root without those
//     constraints (an earlier version's, or another domain's) or near its
//     end is replaced at start, with a warning. `berth ca export` prints
//     the root (CARootPEM) for a trust store;
//   - ACME through certmagic, for every other served name: certificates are
//     obtained in the background, persisted under DataDir/certs/acme, renewed
//     before they expire, and validated with HTTP-01 (HTTPChallengeHandler on
//     the plain-HTTP listener) or TLS-ALPN-01 (TLSConfig on the HTTPS listener).
//
// It also owns the small HTTP pieces that only make sense next to those
// certificates: the HTTP-to-HTTPS redirect (RedirectHandler, which never
// redirects an ACME challenge) and the HSTS header (HSTS).
//
// The package must not touch the store, the engine, the API or the routing
// table: the caller tells it which names are served (SetHosts) and mounts its
// tls.Config and handlers on listeners it owns. It never opens a listener of
// its own, except that certmagic binds a challenge port briefly when nothing
// else listens there.
//
// Files it writes survive a crash: each is written to a temporary file,
// fsynced and renamed; directories are 0700 and private keys 0600.
package certs
