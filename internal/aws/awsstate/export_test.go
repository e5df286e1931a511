package awsstate

// PauseRenewal stops (true) or restarts (false) the lock's renewals, as a
// process that froze or lost the network would: its lease runs out while
// it still believes it holds the lock.
func (l *Lock) PauseRenewal(pause bool) {
	select {
	case l.paused <- pause:
	case <-l.done:
	}
}
