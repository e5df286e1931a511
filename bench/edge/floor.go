//go:build linux

package main

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"runtime"
	"strconv"
	"syscall"
	"unsafe"
)

// The floor: the least a Go proxy can do per request on this machine.
//
// serveFloor proxies GETs to the backend with event loops on epoll, one per
// CPU, with no goroutine per connection, no read that finds nothing (it reads
// only what epoll reported), system calls the scheduler does not see (as the
// edge's sockets make them: internal/edge/h1/sock.go) and no HTTP beyond
// what this bench's traffic
// needs: a request head is passed on whole with X-Forwarded-For added, an
// answer must carry Content-Length. It is not a proxy anyone could run; it
// is the bench's measure of what is left once the proxy's own work is gone,
// the kernel's share of four loopback segments per request, which berth's
// edge and nginx pay alike.
func serveFloor(addr, backend string) error {
	bt, err := net.ResolveTCPAddr("tcp4", backend)
	if err != nil {
		return err
	}
	// The loops accept on the listener's socket themselves: Go's poller
	// holds it too, but nothing waits on it there.
	ln, err := net.Listen("tcp4", addr)
	if err != nil {
		return err
	}
	defer ln.Close()
	rc, err := ln.(*net.TCPListener).SyscallConn()
	if err != nil {
		return err
	}
	lfd := -1
	if err := rc.Control(func(fd uintptr) { lfd = int(fd) }); err != nil {
		return err
	}
	back := &syscall.SockaddrInet4{Port: bt.Port}
	copy(back.Addr[:], bt.IP.To4())
	errs := make(chan error, runtime.GOMAXPROCS(0))
	for range runtime.GOMAXPROCS(0) {
		l, err := newFloorLoop(lfd, back)
		if err != nil {
			return err
		}
		go func() { errs <- l.run() }()
	}
	fmt.Println(ln.Addr())
	return <-errs
}

const (
	epollET        = 1 << 31
	epollExclusive = 1 << 28
)

// floorConn is a client connection or a connection to the backend.
type floorConn struct {
	fd     int
	client bool
	in     []byte
	out    []byte     // written when the socket takes it
	peer   *floorConn // the other side of the request under way
}

type floorLoop struct {
	ep    int
	lfd   int
	back  *syscall.SockaddrInet4
	conns map[int]*floorConn
	idle  []*floorConn // kept-alive connections to the backend
	file  *os.File     // the epoll descriptor in Go's poller
}

func newFloorLoop(lfd int, back *syscall.SockaddrInet4) (*floorLoop, error) {
	ep, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return nil, err
	}
	if err := syscall.EpollCtl(ep, syscall.EPOLL_CTL_ADD, lfd, &syscall.EpollEvent{Events: syscall.EPOLLIN | epollExclusive, Fd: int32(lfd)}); err != nil {
		return nil, err
	}
	if err := syscall.SetNonblock(ep, true); err != nil {
		return nil, err
	}
	// A non-blocking epoll descriptor is readable when it has events: Go's
	// poller waits for it, so the loop never blocks a thread in epoll_wait.
	return &floorLoop{ep: ep, lfd: lfd, back: back, conns: make(map[int]*floorConn), file: os.NewFile(uintptr(ep), "epoll")}, nil
}

func (l *floorLoop) run() error {
	rc, err := l.file.SyscallConn()
	if err != nil {
		return err
	}
	events := make([]syscall.EpollEvent, 256)
	for {
		err := rc.Read(func(uintptr) bool {
			for {
				n, err := rawEpollWait(l.ep, events)
				if n <= 0 || err != nil {
					return false
				}
				for _, ev := range events[:n] {
					l.event(ev)
				}
			}
		})
		if err != nil {
			return err
		}
	}
}

func (l *floorLoop) event(ev syscall.EpollEvent) {
	fd := int(ev.Fd)
	if fd == l.lfd {
		l.accept()
		return
	}
	c := l.conns[fd]
	if c == nil {
		return
	}
	if ev.Events&syscall.EPOLLOUT != 0 && len(c.out) > 0 && !l.flush(c) {
		return
	}
	if ev.Events&(syscall.EPOLLIN|syscall.EPOLLERR|syscall.EPOLLHUP|syscall.EPOLLRDHUP) != 0 {
		l.readable(c)
	}
}

func (l *floorLoop) accept() {
	for {
		fd, _, err := syscall.Accept4(l.lfd, syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC)
		if err != nil {
			return
		}
		l.add(&floorConn{fd: fd, client: true})
	}
}

func (l *floorLoop) add(c *floorConn) {
	_ = syscall.SetsockoptInt(c.fd, syscall.IPPROTO_TCP, syscall.TCP_NODELAY, 1)
	c.in = make([]byte, 0, 4<<10)
	l.conns[c.fd] = c
	ev := &syscall.EpollEvent{Events: syscall.EPOLLIN | syscall.EPOLLOUT | syscall.EPOLLRDHUP | epollET, Fd: int32(c.fd)}
	if err := syscall.EpollCtl(l.ep, syscall.EPOLL_CTL_ADD, c.fd, ev); err != nil {
		l.close(c)
	}
}

// close closes c and the other side of its request, if any.
func (l *floorLoop) close(c *floorConn) {
	if _, ok := l.conns[c.fd]; !ok {
		return
	}
	delete(l.conns, c.fd)
	_ = syscall.Close(c.fd)
	for i, b := range l.idle {
		if b == c {
			l.idle = append(l.idle[:i], l.idle[i+1:]...)
			break
		}
	}
	if p := c.peer; p != nil {
		c.peer, p.peer = nil, nil
		l.close(p)
	}
}

// readable reads what epoll reported: a read that fills the buffer may
// have left more, one that does not has taken it all (edge-triggered).
func (l *floorLoop) readable(c *floorConn) {
	for {
		if len(c.in) == cap(c.in) {
			if len(c.in) >= 64<<10 {
				l.close(c) // a head this bench never sends
				return
			}
			c.in = append(c.in, make([]byte, cap(c.in))...)[:len(c.in)]
		}
		n, err := floorRaw(syscall.SYS_READ, c.fd, c.in[len(c.in):cap(c.in)])
		if err == syscall.EAGAIN || err == syscall.EINTR {
			return
		}
		if n <= 0 {
			l.close(c)
			return
		}
		c.in = c.in[:len(c.in)+n]
		full := len(c.in) == cap(c.in)
		if c.client {
			l.request(c)
		} else {
			l.answer(c)
		}
		if !full {
			return
		}
	}
}

var (
	endOfHead     = []byte("\r\n\r\n")
	contentLength = []byte("\r\nContent-Length: ")
	forwardedFor  = []byte("X-Forwarded-For: 127.0.0.1\r\n\r\n")
)

// request sends a whole request head in c's buffer to the backend.
func (l *floorLoop) request(c *floorConn) {
	if c.peer != nil {
		return // one at a time; the next waits in the buffer
	}
	i := bytes.Index(c.in, endOfHead)
	if i < 0 {
		return
	}
	var b *floorConn
	if n := len(l.idle); n > 0 {
		b, l.idle = l.idle[n-1], l.idle[:n-1]
	} else {
		fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC, 0)
		if err != nil {
			l.close(c)
			return
		}
		if err := syscall.Connect(fd, l.back); err != nil && err != syscall.EINPROGRESS {
			_ = syscall.Close(fd)
			l.close(c)
			return
		}
		b = &floorConn{fd: fd}
		l.add(b)
	}
	c.peer, b.peer = b, c
	b.out = append(append(b.out[:0], c.in[:i+2]...), forwardedFor...)
	c.in = c.in[:copy(c.in, c.in[i+4:])]
	l.flush(b)
}

// answer passes a whole answer in b's buffer on to its client.
func (l *floorLoop) answer(b *floorConn) {
	c := b.peer
	i := bytes.Index(b.in, endOfHead)
	if c == nil || i < 0 {
		if c == nil {
			l.close(b) // nobody asked
		}
		return
	}
	j := bytes.Index(b.in[:i+2], contentLength)
	if j < 0 {
		l.close(b)
		return
	}
	j += len(contentLength)
	k := bytes.IndexByte(b.in[j:], '\r')
	size, err := strconv.Atoi(string(b.in[j : j+k]))
	if err != nil {
		l.close(b)
		return
	}
	whole := i + 4 + size
	if len(b.in) < whole {
		return
	}
	c.out = append(c.out, b.in[:whole]...)
	b.in = b.in[:copy(b.in, b.in[whole:])]
	c.peer, b.peer = nil, nil
	l.idle = append(l.idle, b)
	if l.flush(c) && len(c.in) > 0 {
		l.request(c)
	}
}

// flush writes what c owes; the rest waits for EPOLLOUT. It reports
// whether c is still open.
func (l *floorLoop) flush(c *floorConn) bool {
	for len(c.out) > 0 {
		n, err := floorRaw(syscall.SYS_WRITE, c.fd, c.out)
		switch {
		case err == syscall.EAGAIN || err == syscall.ENOTCONN || err == syscall.EINTR:
			return true // not connected yet, or full: EPOLLOUT comes
		case err != nil:
			l.close(c)
			return false
		}
		c.out = c.out[:copy(c.out, c.out[n:])]
	}
	return true
}

// floorRaw reads or writes once on a non-blocking socket, as a raw system
// call.
func floorRaw(trap uintptr, fd int, p []byte) (int, error) {
	r, _, e := syscall.RawSyscall(trap, uintptr(fd), uintptr(unsafe.Pointer(unsafe.SliceData(p))), uintptr(len(p)))
	if e != 0 {
		return -1, e
	}
	return int(r), nil
}

// rawEpollWait collects the events ready now, as a raw system call.
func rawEpollWait(ep int, events []syscall.EpollEvent) (int, error) {
	r, _, e := syscall.RawSyscall6(syscall.SYS_EPOLL_WAIT, uintptr(ep), uintptr(unsafe.Pointer(&events[0])), uintptr(len(events)), 0, 0, 0)
	if e != 0 {
		return -1, e
	}
	return int(r), nil
}
