package controlplane

import (
	"context"
	"crypto/tls"
	"net"
	"os/user"
	"strconv"
	"syscall"
)

// Who calls the API, as the daemon itself knows it, never as a client
// says: over the Unix socket the peer's user (SO_PEERCRED), over TCP the
// token's holder at the client's address. Revisions record it (berth
// revisions' BY).

type callerKey struct{}

// withCaller is the API server's ConnContext: it puts the connection's
// caller in the context of its requests.
func withCaller(ctx context.Context, c net.Conn) context.Context {
	return context.WithValue(ctx, callerKey{}, callerOfConn(c))
}

// callerOf is the caller withCaller found, or "" (a request that did not
// come through the API listener, such as the console's own).
func callerOf(ctx context.Context) string {
	s, _ := ctx.Value(callerKey{}).(string)
	return s
}

func callerOfConn(c net.Conn) string {
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	switch conn := c.(type) {
	case *net.UnixConn:
		raw, err := conn.SyscallConn()
		if err != nil {
			return ""
		}
		var cred *syscall.Ucred
		if err := raw.Control(func(fd uintptr) {
			cred, err = syscall.GetsockoptUcred(int(fd), syscall.SOL_SOCKET, syscall.SO_PEERCRED)
		}); err != nil || cred == nil {
			return ""
		}
		uid := strconv.FormatUint(uint64(cred.Uid), 10)
		if u, err := user.LookupId(uid); err == nil {
			return u.Username
		}
		return "uid " + uid
	case *net.TCPConn:
		host, _, err := net.SplitHostPort(conn.RemoteAddr().String())
		if err != nil {
			return "api token"
		}
		return "api token from " + host
	}
	return ""
}
