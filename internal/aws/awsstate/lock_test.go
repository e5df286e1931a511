package awsstate_test

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berth-dev/berth/internal/aws/awsstate"
)

var (
	alice = awsstate.Holder{Who: "alice", Host: "laptop", PID: 4242, Op: "deploy"}
	bob   = awsstate.Holder{Who: "bob", Host: "desk", PID: 77, Op: "rollback"}
)

func TestHeldErrorMessage(t *testing.T) {
	err := &awsstate.HeldError{
		Env: "prod", App: "shop", Holder: alice, Op: "deploy",
		Since: time.Date(2026, 12, 6, 12, 3, 4, 0, time.UTC), Age: 41*time.Second + 300*time.Millisecond,
	}
	assert.Equal(t, "app shop (prod) is locked by alice@laptop (deploy, since 12:03:04 UTC, 41s ago); wait for it, or run with --lock-wait 5m", err.Error())
	assert.ErrorIs(t, err, awsstate.ErrLocked)
}

// A second berth without --lock-wait fails at once, naming who holds the
// lock, for what and since when.
func TestSecondAcquireFailsFastNamingTheHolder(t *testing.T) {
	st, teammate := open(t)
	ctx := t.Context()
	lock, err := st.App("prod", "shop").Acquire(ctx, alice, 0, 0)
	require.NoError(t, err)
	assert.Nil(t, lock.Replaced)

	start := time.Now()
	_, err = teammate().App("prod", "shop").Acquire(ctx, bob, 0, 0)
	assert.Less(t, time.Since(start), 2*time.Second)
	var held *awsstate.HeldError
	require.ErrorAs(t, err, &held)
	assert.Equal(t, alice, held.Holder)
	assert.Equal(t, "deploy", held.Op)
	assert.WithinDuration(t, lock.Since(), held.Since, time.Millisecond)
	assert.Regexp(t, regexp.MustCompile(`^app shop \(prod\) is locked by alice@laptop \(deploy, since \d\d:\d\d:\d\d UTC, \d+s ago\); wait for it, or run with --lock-wait 5m$`), err.Error())

	// Another app, or the same app in another environment, is not locked.
	other, err := teammate().App("staging", "shop").Acquire(ctx, bob, 0, 0)
	require.NoError(t, err)
	require.NoError(t, other.Release(ctx))

	require.NoError(t, lock.Release(ctx))
	require.NoError(t, lock.Release(ctx), "a second Release is a no-op")
	again, err := teammate().App("prod", "shop").Acquire(ctx, bob, 0, 0)
	require.NoError(t, err, "a released lock is free")
	require.NoError(t, again.Release(ctx))
}

// With a wait, the second berth gets the lock once the first releases it.
func TestAcquireWaitsForRelease(t *testing.T) {
	st, teammate := open(t)
	ctx := t.Context()
	lock, err := st.App("prod", "shop").Acquire(ctx, alice, 0, 0)
	require.NoError(t, err)
	released := make(chan time.Time, 1)
	go func() {
		time.Sleep(700 * time.Millisecond)
		released <- time.Now()
		assert.NoError(t, lock.Release(ctx))
	}()

	second, err := teammate().App("prod", "shop").Acquire(ctx, bob, 0, 10*time.Second)
	require.NoError(t, err)
	got := time.Now()
	assert.False(t, got.Before(<-released), "got the lock before the first released it")
	assert.Nil(t, second.Replaced, "the lock was released, not taken over")
	require.NoError(t, second.Release(ctx))
}

// A wait shorter than the holder's operation ends in a HeldError.
func TestAcquireWaitRunsOut(t *testing.T) {
	st, teammate := open(t)
	ctx := t.Context()
	lock, err := st.App("prod", "shop").Acquire(ctx, alice, 0, 0)
	require.NoError(t, err)
	defer lock.Release(ctx)
	start := time.Now()
	_, err = teammate().App("prod", "shop").Acquire(ctx, bob, 0, 800*time.Millisecond)
	assert.GreaterOrEqual(t, time.Since(start), 800*time.Millisecond)
	require.ErrorIs(t, err, awsstate.ErrLocked)
}

// A holder that stops renewing (it died, froze, lost the network) loses
// the lock when its lease runs out: the next berth takes it over, learns
// whose it was, and the old holder finds out at its next renewal, cannot
// write the journal, and its Release leaves the new holder's lock alone.
func TestExpiredLeaseIsTakenOver(t *testing.T) {
	st, teammate := open(t)
	ctx := t.Context()
	lease := 600 * time.Millisecond
	old, err := st.App("prod", "shop").Acquire(ctx, alice, lease, 0)
	require.NoError(t, err)
	require.NoError(t, old.PutOp(ctx, awsstate.Op{Kind: "deploy", Started: time.Now().UTC()}))

	// While it renews, the lease does not run out.
	time.Sleep(2 * lease)
	_, err = teammate().App("prod", "shop").Acquire(ctx, bob, 0, 0)
	require.ErrorIs(t, err, awsstate.ErrLocked, "a renewed lease was taken over")

	old.PauseRenewal(true)
	start := time.Now()
	shop := teammate().App("prod", "shop")
	next, err := shop.Acquire(ctx, bob, 0, 5*time.Second)
	require.NoError(t, err)
	assert.Less(t, time.Since(start), 5*lease)
	require.NotNil(t, next.Replaced)
	assert.Equal(t, alice, *next.Replaced)
	op, ok, err := shop.Op(ctx)
	require.NoError(t, err)
	require.True(t, ok, "the interrupted operation's journal is there for the next berth")
	assert.Equal(t, alice, op.Holder)

	select {
	case <-old.Lost():
		t.Fatal("Lost fired before the old holder tried to renew")
	default:
	}
	old.PauseRenewal(false)
	select {
	case <-old.Lost():
	case <-time.After(5 * lease):
		t.Fatal("the old holder did not notice it lost the lock")
	}
	err = old.PutOp(ctx, awsstate.Op{Kind: "deploy"})
	require.ErrorIs(t, err, awsstate.ErrLost)
	err = old.ClearOp(ctx)
	require.ErrorIs(t, err, awsstate.ErrLost)
	err = old.Release(ctx)
	require.ErrorIs(t, err, awsstate.ErrLost)
	assert.Contains(t, err.Error(), "bob@desk")

	// The new holder still holds it.
	_, err = teammate().App("prod", "shop").Acquire(ctx, alice, 0, 0)
	var held *awsstate.HeldError
	require.ErrorAs(t, err, &held)
	assert.Equal(t, bob, held.Holder)
	require.NoError(t, next.PutOp(ctx, awsstate.Op{Kind: "rollback"}))
	require.NoError(t, next.Release(ctx))
}

// Many berths racing for one app's lock: exactly one holds it at a time,
// and every one of them gets it in turn.
func TestRacingAcquiresNeverOverlap(t *testing.T) {
	_, teammate := open(t)
	ctx := t.Context()
	const berths, rounds = 6, 2
	var (
		inside, overlaps, turns atomic.Int32
		wg                      sync.WaitGroup
	)
	errs := make(chan error, berths*rounds)
	for i := range berths {
		shop := teammate().App("prod", "shop")
		h := awsstate.Holder{Who: fmt.Sprintf("user%d", i), Host: "ci", PID: i, Op: "deploy"}
		wg.Go(func() {
			for range rounds {
				lock, err := shop.Acquire(ctx, h, 3*time.Second, 60*time.Second)
				if err != nil {
					errs <- err
					return
				}
				if inside.Add(1) > 1 {
					overlaps.Add(1)
				}
				turns.Add(1)
				time.Sleep(30 * time.Millisecond)
				inside.Add(-1)
				if err := lock.Release(ctx); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	assert.Equal(t, int32(0), overlaps.Load())
	assert.Equal(t, int32(berths*rounds), turns.Load())
}

func TestReleaseAfterCancelStillDeletes(t *testing.T) {
	st, teammate := open(t)
	ctx, cancel := contextWithCancel(t)
	lock, err := st.App("prod", "shop").Acquire(ctx, alice, 0, 0)
	require.NoError(t, err)
	cancel() // Ctrl-C
	require.NoError(t, lock.Release(ctx))
	again, err := teammate().App("prod", "shop").Acquire(t.Context(), bob, 0, 0)
	require.NoError(t, err)
	require.NoError(t, again.Release(t.Context()))
}

// answerLost sends every single-item write twice and answers the second,
// as the SDK does when the first answer is lost on the way back (it
// retries, and the server sees the write again).
type answerLost struct{ awsstate.DynamoDB }

func (d answerLost) PutItem(ctx context.Context, in *dynamodb.PutItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
	_, _ = d.DynamoDB.PutItem(ctx, in, opts...)
	return d.DynamoDB.PutItem(ctx, in, opts...)
}

func (d answerLost) DeleteItem(ctx context.Context, in *dynamodb.DeleteItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error) {
	_, _ = d.DynamoDB.DeleteItem(ctx, in, opts...)
	return d.DynamoDB.DeleteItem(ctx, in, opts...)
}

func (d answerLost) UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error) {
	_, _ = d.DynamoDB.UpdateItem(ctx, in, opts...)
	return d.DynamoDB.UpdateItem(ctx, in, opts...)
}

// A retried write whose first answer was lost is not mistaken for
// another berth's doing: Acquire does not find itself holding the lock,
// Release does not report a lost lock, a state move is not a lost race.
func TestRetriedWritesAreNotRaces(t *testing.T) {
	st, teammate := open(t)
	ctx := t.Context()
	flaky, err := awsstate.Open(ctx, answerLost{client(t)}, st.Table())
	require.NoError(t, err)
	shop := flaky.App("prod", "shop")

	lock, err := shop.Acquire(ctx, alice, 0, 0)
	require.NoError(t, err)
	_, err = teammate().App("prod", "shop").Acquire(ctx, bob, 0, 0)
	require.ErrorIs(t, err, awsstate.ErrLocked)
	require.NoError(t, lock.Release(ctx))
	again, err := teammate().App("prod", "shop").Acquire(ctx, bob, 0, 0)
	require.NoError(t, err, "the lock was released")
	require.NoError(t, again.Release(ctx))

	require.NoError(t, shop.PutRevision(ctx, awsstate.Revision{Number: 1, Service: "web", State: awsstate.StateDeploying}))
	require.NoError(t, shop.UpdateRevisionState(ctx, "web", 1, awsstate.StateDeploying, awsstate.StateActive))
	r, err := st.App("prod", "shop").Revision(ctx, "web", 1)
	require.NoError(t, err)
	assert.Equal(t, awsstate.StateActive, r.State)
}

// netDown fails every lease renewal while down, as a cut network would.
type netDown struct {
	awsstate.DynamoDB
	down atomic.Bool
}

func (d *netDown) UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error) {
	if d.down.Load() {
		return nil, errors.New("dial tcp: connection refused")
	}
	return d.DynamoDB.UpdateItem(ctx, in, opts...)
}

// A blip shorter than the lease costs nothing; a cut longer than the lease
// loses the lock, and the holder learns it when its lease runs out.
func TestRenewalsThatCannotGetThroughLoseTheLock(t *testing.T) {
	st, teammate := open(t)
	ctx := t.Context()
	db := &netDown{DynamoDB: client(t)}
	flaky, err := awsstate.Open(ctx, db, st.Table())
	require.NoError(t, err)
	lease := 900 * time.Millisecond
	lock, err := flaky.App("prod", "shop").Acquire(ctx, alice, lease, 0)
	require.NoError(t, err)

	db.down.Store(true)
	time.Sleep(lease / 2)
	db.down.Store(false)
	time.Sleep(lease)
	select {
	case <-lock.Lost():
		t.Fatal("a blip shorter than the lease lost the lock")
	default:
	}
	_, err = teammate().App("prod", "shop").Acquire(ctx, bob, 0, 0)
	require.ErrorIs(t, err, awsstate.ErrLocked)

	db.down.Store(true)
	start := time.Now()
	select {
	case <-lock.Lost():
		assert.Less(t, time.Since(start), 2*lease)
	case <-time.After(5 * lease):
		t.Fatal("the holder did not learn its lease ran out")
	}
	next, err := teammate().App("prod", "shop").Acquire(ctx, bob, 0, 5*time.Second)
	require.NoError(t, err)
	require.NoError(t, next.Release(ctx))
}
