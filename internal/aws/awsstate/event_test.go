package awsstate_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berth-dev/berth/internal/aws/awsstate"
)

func TestEventsOldestFirst(t *testing.T) {
	st, teammate := open(t)
	ctx := t.Context()
	shop := st.App("prod", "shop")
	base := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	// Written out of order; 12:00:00 and 12:00:00.5 would sort wrongly as
	// RFC3339Nano strings.
	for _, at := range []time.Duration{2 * time.Second, 0, 500 * time.Millisecond, time.Second, 250 * time.Millisecond} {
		_, err := shop.AddEvent(ctx, awsstate.Event{Time: base.Add(at), Kind: "deploy", Message: at.String()})
		require.NoError(t, err)
	}
	_, err := st.App("prod", "blog").AddEvent(ctx, awsstate.Event{Time: base, Kind: "deploy", Message: "other app"})
	require.NoError(t, err)

	messages := func(events []awsstate.Event) []string {
		var out []string
		for _, e := range events {
			out = append(out, e.Message)
		}
		return out
	}
	theirs := teammate().App("prod", "shop")
	all, err := theirs.Events(ctx, time.Time{}, 0)
	require.NoError(t, err)
	assert.Equal(t, []string{"0s", "250ms", "500ms", "1s", "2s"}, messages(all))
	assert.NotEmpty(t, all[0].ID)
	assert.True(t, base.Equal(all[0].Time))

	last2, err := theirs.Events(ctx, time.Time{}, 2)
	require.NoError(t, err)
	assert.Equal(t, []string{"1s", "2s"}, messages(last2), "a limit keeps the newest, oldest first")

	since, err := theirs.Events(ctx, base.Add(500*time.Millisecond), 0)
	require.NoError(t, err)
	assert.Equal(t, []string{"500ms", "1s", "2s"}, messages(since))
}

func TestTasks(t *testing.T) {
	st, teammate := open(t)
	ctx := t.Context()
	shop := st.App("prod", "shop")
	base := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	one := 1
	require.NoError(t, shop.PutTask(ctx, awsstate.Task{ID: "abcd1111", Name: "migrate", State: "running", Started: base}))
	require.NoError(t, shop.PutTask(ctx, awsstate.Task{ID: "abcd2222", State: "failed", ExitCode: &one, Started: base.Add(time.Minute), Ended: base.Add(2 * time.Minute)}))
	require.NoError(t, shop.PutTask(ctx, awsstate.Task{ID: "0000ffff", State: "running", Started: base.Add(2 * time.Minute)}))

	theirs := teammate().App("prod", "shop")
	tasks, err := theirs.Tasks(ctx, 0)
	require.NoError(t, err)
	var ids []string
	for _, tk := range tasks {
		ids = append(ids, tk.ID)
	}
	assert.Equal(t, []string{"0000ffff", "abcd2222", "abcd1111"}, ids)
	assert.Nil(t, tasks[0].ExitCode, "a running task has no exit code")
	require.NotNil(t, tasks[1].ExitCode)
	assert.Equal(t, 1, *tasks[1].ExitCode)
	newest, err := theirs.Tasks(ctx, 1)
	require.NoError(t, err)
	require.Len(t, newest, 1)
	assert.Equal(t, "0000ffff", newest[0].ID)

	// Finishing a task replaces its record.
	zero := 0
	require.NoError(t, shop.PutTask(ctx, awsstate.Task{ID: "abcd1111", Name: "migrate", State: "succeeded", ExitCode: &zero, Started: base, Ended: base.Add(time.Second)}))
	got, err := theirs.Task(ctx, "abcd1111")
	require.NoError(t, err)
	assert.Equal(t, "succeeded", got.State)
	require.NotNil(t, got.ExitCode)
	assert.Equal(t, 0, *got.ExitCode)

	got, err = theirs.Task(ctx, "0000")
	require.NoError(t, err, "a unique prefix finds the task")
	assert.Equal(t, "0000ffff", got.ID)
	_, err = theirs.Task(ctx, "abcd")
	assert.ErrorContains(t, err, "ambiguous")
	_, err = theirs.Task(ctx, "zzzz")
	assert.ErrorIs(t, err, awsstate.ErrNotFound)
}
