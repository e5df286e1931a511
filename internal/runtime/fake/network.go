package fake

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/berth-dev/berth/internal/runtime"
)

// network is an app network: a name its pods' aliases resolve on.
type network struct {
	name   string
	labels map[string]string
}

// EnsureNetwork makes the named network if it does not exist, or returns
// ErrNetworkHeld when one of that name is another owner's.
func (e *Engine) EnsureNetwork(ctx context.Context, name string, labels map[string]string) error {
	if err := e.w.fail(opEnsureNetwork); err != nil {
		return err
	}
	w := e.w
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return errClosed
	}
	if n, ok := w.networks[name]; ok {
		return e.checkHeld(n)
	}
	w.networks[name] = &network{name: name, labels: e.withOwner(labels)}
	return nil
}

// RemoveNetwork removes the named network. A missing one is not an error;
// one of another owner is ErrNetworkHeld (and is left); one a running pod
// is on is an error, as on Docker (active endpoints).
func (e *Engine) RemoveNetwork(ctx context.Context, name string) error {
	if err := e.w.fail(opRemoveNetwork); err != nil {
		return err
	}
	w := e.w
	w.mu.Lock()
	defer w.mu.Unlock()
	n, ok := w.networks[name]
	if !ok {
		return nil
	}
	if err := e.checkHeld(n); err != nil {
		return err
	}
	var users []string
	for _, p := range w.pods {
		if p.net == n && (p.phase != phaseCreated && p.phase != phaseExited) {
			users = append(users, p.name)
		}
	}
	if len(users) > 0 {
		slices.Sort(users)
		return fmt.Errorf("fake: network %s has active endpoints (pods %s)", name, strings.Join(users, ", "))
	}
	delete(w.networks, name)
	return nil
}

// NetworkHeld is ErrNetworkHeld when the named network exists and is
// another owner's, changing nothing.
func (e *Engine) NetworkHeld(ctx context.Context, name string) error {
	if err := e.w.fail(opNetworkHeld); err != nil {
		return err
	}
	e.w.mu.Lock()
	defer e.w.mu.Unlock()
	if n, ok := e.w.networks[name]; ok {
		return e.checkHeld(n)
	}
	return nil
}

func (e *Engine) checkHeld(n *network) error {
	if e.Owner().Owns(n.labels) {
		return nil
	}
	by := "another berth server"
	if dir := n.labels[runtime.LabelOwnerDir]; dir != "" {
		by += " (data directory " + dir + ")"
	}
	return fmt.Errorf("%w: network %s is held by %s on this engine", runtime.ErrNetworkHeld, n.name, by)
}

// netns is a pod's network namespace during one run: which container
// port is served at which real 127.0.0.1 address.
type netns struct {
	ports map[int]string
}

// nsView is a process's view of its pod's namespace.
type nsView struct {
	w  *world
	p  *pod
	ns *netns
}

var _ podNet = nsView{}

func (v nsView) bind(port int, addr string) error {
	v.w.mu.Lock()
	defer v.w.mu.Unlock()
	if _, taken := v.ns.ports[port]; taken {
		return errors.New("address already in use")
	}
	v.ns.ports[port] = addr
	return nil
}

func (v nsView) unbind(port int, addr string) {
	v.w.mu.Lock()
	defer v.w.mu.Unlock()
	if v.ns.ports[port] == addr {
		delete(v.ns.ports, port)
	}
}

// dial connects from inside the pod: localhost is the pod itself, any
// other name an alias (or the name) of a running pod on its network,
// chosen at random among those answering to it, as Docker's DNS does.
func (v nsView) dial(ctx context.Context, network, address string) (net.Conn, error) {
	host, portText, err := net.SplitHostPort(address)
	if err != nil {
		return nil, err
	}
	port, err := strconv.Atoi(portText)
	if err != nil {
		return nil, fmt.Errorf("dial %s: bad port", address)
	}
	v.w.mu.Lock()
	var target string
	switch strings.ToLower(host) {
	case "localhost", "127.0.0.1", "::1":
		target = v.ns.ports[port]
	default:
		peers := v.w.answering(v.p, host)
		if len(peers) == 0 {
			v.w.mu.Unlock()
			return nil, &net.OpError{Op: "dial", Net: network, Err: &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}}
		}
		q := peers[rand.IntN(len(peers))]
		if q.ns != nil {
			target = q.ns.ports[port]
		}
	}
	v.w.mu.Unlock()
	if target == "" {
		return nil, &net.OpError{Op: "dial", Net: network, Err: errors.New("connect: connection refused")}
	}
	var d net.Dialer
	return d.DialContext(ctx, "tcp", target)
}

// answering returns the pods on from's network that answer to name: on
// the network (not suspended, deregistered, broken or stopped), with name
// as an alias or their name. The caller holds w.mu.
func (w *world) answering(from *pod, name string) []*pod {
	n := from.net
	if n == nil || w.networks[n.name] != n {
		return nil
	}
	var out []*pod
	for _, q := range w.pods {
		if q.net != n || !q.registered || q.broken != "" || (q.phase != phaseStarting && q.phase != phaseRunning) {
			continue
		}
		if strings.EqualFold(q.name, name) || slices.ContainsFunc(q.spec.Aliases, func(a string) bool { return strings.EqualFold(a, name) }) {
			out = append(out, q)
		}
	}
	return out
}

// front is a pod's published port: a real 127.0.0.1 listener forwarding
// each connection to whatever serves the pod's Port in its namespace
// (docker-proxy's job). A connection with nothing behind it is closed.
type front struct {
	ln    net.Listener
	mu    sync.Mutex
	conns map[net.Conn]struct{}
	done  bool
}

// openFront listens on hostPort (0: any) and forwards to port of ns. The
// caller holds w.mu.
func (w *world) openFront(ns *netns, port, hostPort int) (*front, error) {
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(hostPort)))
	if err != nil {
		if hostPort > 0 {
			return nil, fmt.Errorf("%w: 127.0.0.1:%d: %v", runtime.ErrPortInUse, hostPort, err)
		}
		return nil, err
	}
	f := &front{ln: ln, conns: map[net.Conn]struct{}{}}
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			w.mu.Lock()
			target := ns.ports[port]
			w.mu.Unlock()
			if target == "" || !f.track(conn) {
				conn.Close()
				continue
			}
			w.wg.Add(1)
			go func() {
				defer w.wg.Done()
				f.forward(w, conn, target)
			}()
		}
	}()
	return f, nil
}

func (f *front) addr() string { return f.ln.Addr().String() }

// track records conn to close with the front; false once it is closed.
func (f *front) track(conn net.Conn) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.done {
		return false
	}
	f.conns[conn] = struct{}{}
	return true
}

func (f *front) untrack(conn net.Conn) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.conns, conn)
}

func (f *front) forward(w *world, conn net.Conn, target string) {
	defer f.untrack(conn)
	defer conn.Close()
	up, err := net.Dial("tcp", target)
	if err != nil {
		return
	}
	if !f.track(up) {
		up.Close()
		return
	}
	defer f.untrack(up)
	defer up.Close()
	copied := make(chan struct{})
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		defer close(copied)
		_, _ = io.Copy(up, conn)
		if tc, ok := up.(*net.TCPConn); ok {
			_ = tc.CloseWrite()
		}
	}()
	_, _ = io.Copy(conn, up)
	// The server is done: so is the connection, whatever the client
	// still sends.
	conn.Close()
	up.Close()
	<-copied
}

// close stops listening and cuts every forwarded connection.
func (f *front) close() {
	f.ln.Close()
	f.mu.Lock()
	defer f.mu.Unlock()
	f.done = true
	for c := range f.conns {
		c.Close()
	}
}
