package awsstate_test

import (
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berth-dev/berth/internal/aws/awsstate"
)

// Ten berths allocating at once get 1..10, each once; another service
// counts on its own.
func TestNextRevisionIsGapFreeAndUnique(t *testing.T) {
	_, teammate := open(t)
	ctx := t.Context()
	const n = 10
	got := make([]int, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		shop := teammate().App("prod", "shop")
		wg.Go(func() { got[i], errs[i] = shop.NextRevision(ctx, "web") })
	}
	wg.Wait()
	for _, err := range errs {
		require.NoError(t, err)
	}
	slices.Sort(got)
	assert.Equal(t, []int{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, got)

	first, err := teammate().App("prod", "shop").NextRevision(ctx, "worker")
	require.NoError(t, err)
	assert.Equal(t, 1, first)
	next, err := teammate().App("prod", "shop").NextRevision(ctx, "web")
	require.NoError(t, err)
	assert.Equal(t, 11, next)
}

func TestRevisionsNewestFirst(t *testing.T) {
	st, _ := open(t)
	ctx := t.Context()
	shop := st.App("prod", "shop")
	// 9 and 10 and 100 sort as numbers; "web" is not a prefix of "web2".
	for _, n := range []int{9, 100, 1, 10} {
		require.NoError(t, shop.PutRevision(ctx, awsstate.Revision{Number: n, Service: "web", State: awsstate.StateRetired}))
	}
	require.NoError(t, shop.PutRevision(ctx, awsstate.Revision{Number: 3, Service: "web2", State: awsstate.StateActive}))

	revs, err := shop.Revisions(ctx, "web")
	require.NoError(t, err)
	var numbers []int
	for _, r := range revs {
		numbers = append(numbers, r.Number)
		assert.Equal(t, "web", r.Service)
	}
	assert.Equal(t, []int{100, 10, 9, 1}, numbers)

	all, err := shop.Revisions(ctx, "")
	require.NoError(t, err)
	require.Len(t, all, 5)
	assert.Equal(t, "web", all[0].Service)
	assert.Equal(t, "web2", all[4].Service)

	_, err = shop.Revision(ctx, "web", 2)
	require.ErrorIs(t, err, awsstate.ErrNotFound)
	assert.Contains(t, err.Error(), "read revision 2 of shop/web (prod)")
}

// A move whose `from` is stale fails, says what the state was, and
// changes nothing.
func TestUpdateRevisionStateChecksTheCurrentState(t *testing.T) {
	st, teammate := open(t)
	ctx := t.Context()
	shop := st.App("prod", "shop")
	rev := awsstate.Revision{Number: 1, Service: "web", State: awsstate.StateDeploying, Image: "web@sha256:1", Created: time.Now().UTC()}
	require.NoError(t, shop.PutRevision(ctx, rev))

	require.NoError(t, shop.UpdateRevisionState(ctx, "web", 1, awsstate.StateDeploying, awsstate.StateActive))

	// A teammate that still saw it deploying loses the race.
	err := teammate().App("prod", "shop").UpdateRevisionState(ctx, "web", 1, awsstate.StateDeploying, awsstate.StateFailed)
	var se *awsstate.StateError
	require.ErrorAs(t, err, &se)
	assert.Equal(t, awsstate.StateActive, se.Got)
	assert.Equal(t, awsstate.StateDeploying, se.Want)
	assert.Equal(t, "revision 1 of shop/web (prod) is active, not deploying: another berth changed it; see berth revisions --env prod web", err.Error())
	got, err := shop.Revision(ctx, "web", 1)
	require.NoError(t, err)
	assert.Equal(t, awsstate.StateActive, got.State)

	err = shop.UpdateRevisionState(ctx, "web", 7, awsstate.StateActive, awsstate.StatePrevious)
	require.ErrorIs(t, err, awsstate.ErrNotFound)
	_, err = shop.Revision(ctx, "web", 7)
	require.ErrorIs(t, err, awsstate.ErrNotFound, "a failed move created no revision")
}

// A switch moves two revisions together or not at all.
func TestUpdateRevisionStatesIsAllOrNothing(t *testing.T) {
	st, _ := open(t)
	ctx := t.Context()
	shop := st.App("prod", "shop")
	require.NoError(t, shop.PutRevision(ctx, awsstate.Revision{Number: 1, Service: "web", State: awsstate.StateActive}))
	require.NoError(t, shop.PutRevision(ctx, awsstate.Revision{Number: 2, Service: "web", State: awsstate.StateDeploying}))
	warm := time.Date(2026, 12, 6, 12, 13, 4, 0, time.UTC)

	err := shop.UpdateRevisionStates(ctx,
		awsstate.StateChange{Service: "web", Number: 2, From: awsstate.StateDeploying, To: awsstate.StateActive},
		awsstate.StateChange{Service: "web", Number: 1, From: awsstate.StatePrevious, To: awsstate.StateRetired},
	)
	var se *awsstate.StateError
	require.ErrorAs(t, err, &se)
	assert.Equal(t, 1, se.Number)
	assert.Equal(t, awsstate.StateActive, se.Got)
	states := func() []awsstate.State {
		revs, err := shop.Revisions(ctx, "web")
		require.NoError(t, err)
		var out []awsstate.State
		for _, r := range revs {
			out = append(out, r.State)
		}
		return out
	}
	assert.Equal(t, []awsstate.State{awsstate.StateDeploying, awsstate.StateActive}, states(), "half a switch was applied")

	require.NoError(t, shop.UpdateRevisionStates(ctx,
		awsstate.StateChange{Service: "web", Number: 2, From: awsstate.StateDeploying, To: awsstate.StateActive},
		awsstate.StateChange{Service: "web", Number: 1, From: awsstate.StateActive, To: awsstate.StatePrevious, WarmUntil: warm, Reason: "replaced by 2"},
	))
	assert.Equal(t, []awsstate.State{awsstate.StateActive, awsstate.StatePrevious}, states())
	prev, err := shop.Revision(ctx, "web", 1)
	require.NoError(t, err)
	assert.True(t, warm.Equal(prev.WarmUntil), "warm until %s", prev.WarmUntil)
	assert.Equal(t, "replaced by 2", prev.Reason)
}
