package awsstate

import (
	"context"
	cryptorand "crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/user"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// The lock of an app in an environment is one item with a lease:
//
//	         Acquire: put if absent or expired
//	(free) ──────────────────────────────────▶ (held by T) ──┐ renew every lease/3:
//	  ▲  ▲                                       │  │   ▲     │ update if holder is T
//	  │  └───── Release: delete if holder is T ──┘  │   └─────┘
//	  │                                             │
//	  └── T's lease runs out (T died, froze, lost ──┘
//	      the network); the next Acquire's put succeeds, T's next
//	      renewal or journal write fails and T's Lost() closes
//
// T is a random token made by Acquire, so two berths of one user on one
// machine are two holders. Lease expiry compares the clocks of the machines
// involved: they must agree to well within a lease (NTP does).

// DefaultLease is the lease Acquire takes when given none.
const DefaultLease = 30 * time.Second

// minLease keeps renewals (every lease/3) from hammering the table.
const minLease = 300 * time.Millisecond

// releaseWithin bounds Release, which runs even when the caller's context
// is cancelled (Ctrl-C is when releasing matters most).
const releaseWithin = 10 * time.Second

// ErrLocked is what a *HeldError is (errors.Is): another berth holds the
// app's lock.
var ErrLocked = errors.New("app is locked")

// ErrLost says a lock's lease ran out and another berth may hold the lock
// now: whoever held it must stop before doing harm.
var ErrLost = errors.New("lock lost")

// Holder says who holds a lock, for the message the next berth shows.
type Holder struct {
	// Who is the user (alice), Host the machine (laptop), PID the process.
	Who  string `dynamodbav:"who"`
	Host string `dynamodbav:"host"`
	PID  int    `dynamodbav:"pid"`
	// Op is the operation the lock was taken for (deploy, rollback, ...).
	Op string `dynamodbav:"op"`
}

// CurrentHolder is this process as a Holder for op: the user, the host
// name and the PID.
func CurrentHolder(op string) Holder {
	h := Holder{PID: os.Getpid(), Op: op}
	if u, err := user.Current(); err == nil {
		h.Who = u.Username
	}
	if h.Who == "" {
		h.Who = os.Getenv("USER")
	}
	h.Host, _ = os.Hostname()
	return h
}

// String is "alice@laptop".
func (h Holder) String() string {
	switch {
	case h.Who == "" && h.Host == "":
		return "an unnamed berth"
	case h.Host == "":
		return h.Who
	}
	return h.Who + "@" + h.Host
}

// HeldError is the answer to an Acquire that did not get the lock within
// its wait: who holds it, for what and since when.
type HeldError struct {
	Env, App string
	Holder   Holder
	// Op is Holder.Op, the holder's operation.
	Op string
	// Since is when the holder took the lock; Age how long before the
	// error that was.
	Since time.Time
	Age   time.Duration
	// Expires is when the holder's lease runs out unless renewed.
	Expires time.Time
}

// Error is one line: `app shop (prod) is locked by alice@laptop (deploy,
// since 12:03:04 UTC, 41s ago); wait for it, or run with --lock-wait 5m`.
func (e *HeldError) Error() string {
	return fmt.Sprintf("app %s (%s) is locked by %s (%s, since %s, %s ago); wait for it, or run with --lock-wait 5m",
		e.App, e.Env, e.Holder, e.Op, e.Since.UTC().Format("15:04:05 MST"), e.Age.Round(time.Second))
}

// Is makes errors.Is(err, ErrLocked) true.
func (e *HeldError) Is(target error) bool { return target == ErrLocked }

// Lock is an app's lock while this berth holds it. A goroutine renews its
// lease until Release; if a renewal fails for good, Lost closes.
type Lock struct {
	a      *AppState
	token  string
	holder Holder
	since  time.Time
	lease  time.Duration

	// Replaced is the holder whose expired lease this lock took over, nil
	// when the lock was free: that berth died or was cut off mid-operation,
	// and its journal (AppState.Op) says how far it got.
	Replaced *Holder

	lost     chan struct{}
	lostOnce sync.Once
	stop     chan struct{}
	done     chan struct{}
	paused   chan bool // tests: pause and resume renewals
	released bool
	mu       sync.Mutex
}

// Acquire takes the app's lock for holder with a lease of lease
// (DefaultLease when 0), renewed until Release: the renewals outlive ctx,
// so that a cancelled operation can still undo its steps under the lock.
// If another berth holds it, Acquire retries with backoff for up to wait
// and then answers a *HeldError. An expired lease (its holder died) is
// taken over, and Lock.Replaced names whose it was.
func (a *AppState) Acquire(ctx context.Context, holder Holder, lease, wait time.Duration) (*Lock, error) {
	if lease == 0 {
		lease = DefaultLease
	}
	lease = max(lease, minLease)
	token, err := newToken()
	if err != nil {
		return nil, fmt.Errorf("lock app %s: %w", a, err)
	}
	deadline := time.Now().Add(wait)
	delay := 100 * time.Millisecond
	for {
		l, held, err := a.tryAcquire(ctx, token, holder, lease)
		if err != nil || l != nil {
			return l, err
		}
		if held == nil {
			continue
		}
		remaining := time.Until(deadline)
		if remaining <= 0 {
			held.Age = max(a.s.now().Sub(held.Since), 0)
			return nil, held
		}
		// Sleep with jitter, but wake when the holder's lease runs out: a
		// dead holder's lock is free then.
		d := delay/2 + rand.N(delay/2+1)
		if untilExpiry := held.Expires.Sub(a.s.now()) + 10*time.Millisecond; untilExpiry > 0 && untilExpiry < d {
			d = untilExpiry
		}
		d = min(d, remaining)
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("lock app %s: waiting for %s: %w", a, held.Holder, context.Cause(ctx))
		case <-time.After(d):
		}
		delay = min(delay*3/2, 2*time.Second)
	}
}

// tryAcquire makes one attempt: the lock, or who holds it.
func (a *AppState) tryAcquire(ctx context.Context, token string, h Holder, lease time.Duration) (*Lock, *HeldError, error) {
	now := a.s.now()
	item := key(a.pk, skLock)
	item["token"] = str(token)
	item["who"] = str(h.Who)
	item["host"] = str(h.Host)
	item["pid"] = num(int64(h.PID))
	item["op"] = str(h.Op)
	item["since"] = num(now.UnixMilli())
	item["expires"] = num(now.Add(lease).UnixMilli())
	out, err := a.s.db.PutItem(ctx, &dynamodb.PutItemInput{
		TableName:                           &a.s.table,
		Item:                                item,
		ConditionExpression:                 aws.String("attribute_not_exists(#pk) OR #expires < :now"),
		ExpressionAttributeNames:            map[string]string{"#pk": attrPK, "#expires": "expires"},
		ExpressionAttributeValues:           map[string]types.AttributeValue{":now": num(now.UnixMilli())},
		ReturnValues:                        types.ReturnValueAllOld,
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	})
	cur, failed := isConditionFailed(err)
	if failed && getS(cur, "token") == token {
		// The SDK retried a put whose answer was lost: it was ours.
		failed, err = false, nil
	}
	if failed {
		if cur == nil { // a server that does not return the item: read it, for the message only
			if cur, err = a.s.get(ctx, key(a.pk, skLock)); err != nil {
				return nil, nil, fmt.Errorf("read lock of app %s: %w", a, err)
			}
			if cur == nil { // released meanwhile: try again at once
				return nil, nil, nil
			}
		}
		return nil, a.heldError(cur), nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("lock app %s: %w", a, err)
	}
	l := &Lock{
		a: a, token: token, holder: h, since: now, lease: lease,
		lost: make(chan struct{}), stop: make(chan struct{}), done: make(chan struct{}),
		paused: make(chan bool),
	}
	if out != nil && len(out.Attributes) > 0 {
		old := holderOf(out.Attributes)
		l.Replaced = &old
	}
	go l.renew(now.Add(lease))
	return l, nil, nil
}

func (a *AppState) heldError(item map[string]types.AttributeValue) *HeldError {
	h := holderOf(item)
	return &HeldError{
		Env: a.env, App: a.app, Holder: h, Op: h.Op,
		Since:   time.UnixMilli(getN(item, "since")).UTC(),
		Expires: time.UnixMilli(getN(item, "expires")).UTC(),
	}
}

func holderOf(item map[string]types.AttributeValue) Holder {
	return Holder{Who: getS(item, "who"), Host: getS(item, "host"), PID: int(getN(item, "pid")), Op: getS(item, "op")}
}

// Holder is who this lock was taken for.
func (l *Lock) Holder() Holder { return l.holder }

// Since is when the lock was taken.
func (l *Lock) Since() time.Time { return l.since }

// Lost is closed when the lock is lost: a renewal found another holder, or
// the lease ran out before a renewal got through. Whatever the lock guards
// must stop; journal writes fail with ErrLost from then on.
func (l *Lock) Lost() <-chan struct{} { return l.lost }

// Context returns a context of parent that is cancelled, with cause
// ErrLost, when the lock is lost.
func (l *Lock) Context(parent context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancelCause(parent)
	go func() {
		select {
		case <-l.lost:
			cancel(fmt.Errorf("app %s: %w", l.a, ErrLost))
		case <-ctx.Done():
		}
	}()
	return ctx, func() { cancel(context.Canceled) }
}

func (l *Lock) markLost() { l.lostOnce.Do(func() { close(l.lost) }) }

// renew extends the lease every lease/3 until Release, on the condition
// that the lock is still this one's. A failed renewal is tried again
// sooner, so that two network blips do not cost the lease.
func (l *Lock) renew(expires time.Time) {
	defer close(l.done)
	every := l.lease / 3
	t := time.NewTimer(every)
	defer t.Stop()
	paused := false
	for {
		select {
		case <-l.stop:
			return
		case paused = <-l.paused:
			continue
		case <-t.C:
		}
		if paused {
			t.Reset(every)
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), every)
		now := l.a.s.now()
		_, err := l.a.s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
			TableName:                 &l.a.s.table,
			Key:                       key(l.a.pk, skLock),
			UpdateExpression:          aws.String("SET #expires = :expires"),
			ConditionExpression:       aws.String("#token = :token"),
			ExpressionAttributeNames:  map[string]string{"#expires": "expires", "#token": "token"},
			ExpressionAttributeValues: map[string]types.AttributeValue{":expires": num(now.Add(l.lease).UnixMilli()), ":token": str(l.token)},
		})
		cancel()
		if _, failed := isConditionFailed(err); failed {
			l.markLost() // taken over after our lease ran out, or deleted
			return
		}
		if err == nil {
			expires = now.Add(l.lease)
			t.Reset(every)
			continue
		}
		// A transient failure: try again soon, unless the lease has run
		// out meanwhile and another berth may have taken the lock.
		if !l.a.s.now().Before(expires) {
			l.markLost()
			return
		}
		t.Reset(max(every/4, 50*time.Millisecond))
	}
}

// Release stops the renewals and deletes the lock if it is still this
// one's. It runs to the end even when ctx is cancelled. Releasing a lost
// lock deletes nothing and says so (ErrLost); a second Release is a no-op.
func (l *Lock) Release(ctx context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.released {
		return nil
	}
	l.released = true
	close(l.stop)
	<-l.done
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), releaseWithin)
	defer cancel()
	_, err := l.a.s.db.DeleteItem(ctx, &dynamodb.DeleteItemInput{
		TableName:                           &l.a.s.table,
		Key:                                 key(l.a.pk, skLock),
		ConditionExpression:                 aws.String("#token = :token"),
		ExpressionAttributeNames:            map[string]string{"#token": "token"},
		ExpressionAttributeValues:           map[string]types.AttributeValue{":token": str(l.token)},
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	})
	if cur, failed := isConditionFailed(err); failed {
		if len(cur) == 0 {
			// Nobody holds it: deleted by a retry of this delete whose
			// first answer was lost, or taken over and released since, as
			// a renewal would have told (Lost).
			select {
			case <-l.lost:
				return fmt.Errorf("release lock of app %s: it was lost before (lease expired): %w", l.a, ErrLost)
			default:
				return nil
			}
		}
		l.markLost()
		return fmt.Errorf("release lock of app %s: %s took it over after this lease expired: %w", l.a, holderOf(cur), ErrLost)
	}
	if err != nil {
		return fmt.Errorf("release lock of app %s (it expires by itself in %s): %w", l.a, l.lease, err)
	}
	return nil
}

func newToken() (string, error) {
	var b [16]byte
	if _, err := cryptorand.Read(b[:]); err != nil {
		return "", err
	}
	return hex.EncodeToString(b[:]), nil
}
