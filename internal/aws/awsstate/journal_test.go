package awsstate_test

import (
	"context"
	"encoding/json"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berth-dev/berth/internal/aws/awsstate"
)

func TestJournalRoundTrip(t *testing.T) {
	st, teammate := open(t)
	ctx := t.Context()
	shop := st.App("prod", "shop")
	_, ok, err := shop.Op(ctx)
	require.NoError(t, err)
	assert.False(t, ok)

	lock, err := shop.Acquire(ctx, alice, 0, 0)
	require.NoError(t, err)
	started := time.Date(2026, 12, 6, 12, 3, 4, 0, time.UTC)
	op := awsstate.Op{Kind: "deploy", Revisions: map[string]int{"web": 3, "worker": 2}, Started: started}
	require.NoError(t, op.Done("register-task-definition", map[string]string{"arn": "arn:aws:ecs:eu-west-1:1:task-definition/shop-web:3"}, started.Add(time.Second)))
	require.NoError(t, lock.PutOp(ctx, op))
	require.NoError(t, op.Done("scale-slot-b", nil, started.Add(2*time.Second)))
	require.NoError(t, lock.PutOp(ctx, op))

	// The next verb, on another machine, reads how far it got.
	got, ok, err := teammate().App("prod", "shop").Op(ctx)
	require.NoError(t, err)
	require.True(t, ok)
	assert.Equal(t, "deploy", got.Kind)
	assert.Equal(t, map[string]int{"web": 3, "worker": 2}, got.Revisions)
	assert.Equal(t, alice, got.Holder, "PutOp names the lock's holder")
	assert.True(t, started.Equal(got.Started))
	require.Len(t, got.Steps, 2)
	step, ok := got.Step("register-task-definition")
	require.True(t, ok)
	var detail struct{ ARN string }
	require.NoError(t, json.Unmarshal(step.Detail, &detail))
	assert.Equal(t, "arn:aws:ecs:eu-west-1:1:task-definition/shop-web:3", detail.ARN)
	assert.True(t, started.Add(time.Second).Equal(step.At))
	_, ok = got.Step("switch")
	assert.False(t, ok)

	require.NoError(t, lock.ClearOp(ctx))
	_, ok, err = teammate().App("prod", "shop").Op(ctx)
	require.NoError(t, err)
	assert.False(t, ok)
	require.NoError(t, lock.Release(ctx))

	// Without the lock, nothing is written.
	err = lock.PutOp(ctx, op)
	require.ErrorIs(t, err, awsstate.ErrLost)
	_, ok, err = shop.Op(ctx)
	require.NoError(t, err)
	assert.False(t, ok)
}

// conflictOnce cancels the first TransactWriteItems for a conflict, as
// DynamoDB does when a lease renewal lands on the lock item meanwhile.
type conflictOnce struct {
	awsstate.DynamoDB
	calls atomic.Int32
}

func (c *conflictOnce) TransactWriteItems(ctx context.Context, in *dynamodb.TransactWriteItemsInput, opts ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error) {
	if c.calls.Add(1) == 1 {
		reasons := make([]types.CancellationReason, len(in.TransactItems))
		for i := range reasons {
			reasons[i].Code = aws.String("None")
		}
		reasons[0].Code = aws.String("TransactionConflict")
		return nil, &types.TransactionCanceledException{Message: aws.String("Transaction cancelled"), CancellationReasons: reasons}
	}
	return c.DynamoDB.TransactWriteItems(ctx, in, opts...)
}

func TestJournalWriteRetriesAConflict(t *testing.T) {
	st, _ := open(t)
	ctx := t.Context()
	db := &conflictOnce{DynamoDB: client(t)}
	flaky, err := awsstate.Open(ctx, db, st.Table())
	require.NoError(t, err)
	lock, err := flaky.App("prod", "shop").Acquire(ctx, alice, 0, 0)
	require.NoError(t, err)
	defer lock.Release(ctx)
	require.NoError(t, lock.PutOp(ctx, awsstate.Op{Kind: "deploy"}))
	assert.Equal(t, int32(2), db.calls.Load())
	op, ok, err := st.App("prod", "shop").Op(ctx)
	require.NoError(t, err)
	require.True(t, ok)
	assert.Equal(t, "deploy", op.Kind)
}

func TestCurrentHolder(t *testing.T) {
	h := awsstate.CurrentHolder("deploy")
	assert.Equal(t, os.Getpid(), h.PID)
	assert.Equal(t, "deploy", h.Op)
	assert.NotEmpty(t, h.Host)
}
