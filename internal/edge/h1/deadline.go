package h1

import "time"

// Deadlines that move lazily.
//
// Setting a socket's deadline takes a lock and moves a runtime timer, and
// the fast path set three per request: the client's wait for its next
// request, the request's timeout on the upstream connection, and that
// timeout's clearing. As nginx leaves a timer alone when it would move by
// less than 300 ms (NGX_TIMER_LAZY_DELAY), a deadline already set that is
// still ahead and at most a little earlier than the one wanted is kept:
// the wait may end that much sooner, never later. "A little" is at most
// 300 ms and at most 1/32 of the time left, so a short timeout keeps its
// precision.

// maxLazySlack bounds how much sooner than asked a kept deadline ends.
const maxLazySlack = 300 * time.Millisecond

// lazyDeadline is the deadline last set on a connection, known to its
// owner alone; the zero value is no deadline.
type lazyDeadline struct{ at time.Time }

// keeps reports whether the deadline set can stand for want at now.
func (d lazyDeadline) keeps(want, now time.Time) bool {
	switch {
	case want.IsZero() || d.at.IsZero():
		return want.IsZero() && d.at.IsZero()
	case !d.at.After(now) || want.Before(d.at):
		return false
	}
	return want.Sub(d.at) <= min(maxLazySlack, want.Sub(now)/32)
}

// forget records that someone else set the deadline: the next set is made.
func (d *lazyDeadline) forget() { d.at = aLongTimeAgo }

// setReadDeadline sets the client connection's read deadline to t (zero:
// none), lazily.
func (fc *fastConn) setReadDeadline(t, now time.Time) {
	if fc.rdl.keeps(t, now) {
		return
	}
	_ = fc.c.SetReadDeadline(t)
	fc.rdl.at = t
}

// setDeadline sets the upstream connection's deadline to t (zero: none),
// lazily. A connection goes back to the pool with the deadline of its last
// request, so every request sets its own, none included.
func (pc *upConn) setDeadline(t, now time.Time) {
	if pc.dl.keeps(t, now) {
		return
	}
	_ = pc.conn.SetDeadline(t)
	pc.dl.at = t
}
