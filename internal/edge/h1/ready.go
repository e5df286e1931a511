package h1

import (
	"net"
	"syscall"
)

// Reads that wait before they read.
//
// A read on a Go socket first tries the read and waits only when it found
// nothing. Where the edge knows nothing can have come yet, that first try is
// a system call spent on EAGAIN: after a request goes upstream, the answer
// cannot be there before the request is. Over loopback that was one read in
// four of the fast path's.
//
// Waiting first is only safe inside one syscall.RawConn.Read: each read on a
// net.Conn starts by forgetting the readiness the poller saw before, so a
// wait begun outside would miss what came in between. Inside RawConn.Read
// the readiness is kept from the first call of its function to the last.

// writeThenRead writes b on the socket and reads into p what comes back,
// waiting for it before the first read: b is a request, so nothing can be
// there before it is written. The socket's deadlines hold for both, and its
// errors are worded as its Write's and Read's.
func (s *sockConn) writeThenRead(b, p []byte) (int, error) {
	if len(p) > maxRawIO {
		p = p[:maxRawIO]
	}
	r, rerr := s.run(false, rawOp{p: p, req: b}, s.thenReadFn)
	if _, ok := r.err.(*net.OpError); ok {
		return 0, r.err // the write's, worded
	}
	return s.readResult(r.n, r.err, rerr, p)
}

func (s *sockConn) writeThenReadStep(fd uintptr) bool {
	r := &s.rd
	if r.req != nil {
		_, r.err = s.Write(r.req)
		r.req = nil
		return r.err != nil
	}
	r.n, r.err = rawRead(int(fd), r.p)
	return r.err != syscall.EAGAIN
}
