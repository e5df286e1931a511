package awsstate_test

import (
	"encoding/json"
	"testing"
	"time"

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
