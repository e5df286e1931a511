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

// caller is who is at the other end of an API connection: a Unix user
// by uid (named when asked: a user lookup can be slow, and ConnContext
// runs in the accept loop), or a description.
type caller struct {
	uid  string
	what string
}

// withCaller is the API server's ConnContext: it puts the connection's
// caller in the context of its requests.
func withCaller(ctx context.Context, c net.Conn) context.Context {
	return context.WithValue(ctx, callerKey{}, callerOfConn(c))
}

// callerOf names the caller withCaller found, or "" (a request that did
// not come through the API listener, such as the console's own).
func callerOf(ctx context.Context) string {
	c, _ := ctx.Value(callerKey{}).(caller)
	if c.uid == "" {
		return c.what
	}
	if u, err := user.LookupId(c.uid); err == nil {
		return u.Username
	}
	return "uid " + c.uid
}

func callerOfConn(c net.Conn) caller {
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	switch conn := c.(type) {
	case *net.UnixConn:
		raw, err := conn.SyscallConn()
		if err != nil {
			return caller{}
		}
		var cred *syscall.Ucred
		if err := raw.Control(func(fd uintptr) {
			cred, err = syscall.GetsockoptUcred(int(fd), syscall.SOL_SOCKET, syscall.SO_PEERCRED)
		}); err != nil || cred == nil {
			return caller{}
		}
		return caller{uid: strconv.FormatUint(uint64(cred.Uid), 10)}
	case *net.TCPConn:
		host, _, err := net.SplitHostPort(conn.RemoteAddr().String())
		if err != nil {
			return caller{what: "api token"}
		}
		return caller{what: "api token from " + host}
	}
	return caller{}
}
