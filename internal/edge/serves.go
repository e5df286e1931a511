package edge

// Serves reports whether a route or an entrypoint claims host (a name, or
// host:port), by the routing table requests see now. The certificates ask
// it during a TLS handshake, so that berth's local CA mints a certificate
// only for a host the edge answers.
func (e *Edge) Serves(host string) bool {
	h := normalizeHost(host)
	s := e.snap.Load()
	return s.hosts[h] != nil || s.epHosts[h] != nil
}
