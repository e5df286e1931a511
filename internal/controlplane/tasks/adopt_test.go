package tasks

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berth-dev/berth/internal/api"
	"github.com/berth-dev/berth/internal/runtime"
	"github.com/berth-dev/berth/internal/spec"
	"github.com/berth-dev/berth/internal/store"
)

// A daemon that stops leaves its tasks running; the next one takes them
// back: a running task is followed to its end (its --timeout still
// counted), one recorded over meanwhile has its pod removed, and one whose
// pod is gone is recorded lost.
func TestAdoptTakesBackTasks(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	first, stopFirst := w.runner()
	follow, err := first.Start(ctx, w.spec("/testapp", "sleep", "1h"), Hooks{})
	require.NoError(t, err)
	timed := w.spec("/testapp", "sleep", "1h")
	timed.timeout = 500 * time.Millisecond
	timesOut, err := first.Start(ctx, timed, Hooks{})
	require.NoError(t, err)
	over, err := first.Start(ctx, w.spec("/testapp", "sleep", "1h"), Hooks{})
	require.NoError(t, err)
	stopFirst()

	// Meanwhile: one recorded over (its daemon died before removing its
	// pod), one running whose pod went.
	rec := over.Record()
	rec.Status, rec.FinishedAt = api.TaskSucceeded, time.Now().UTC()
	require.NoError(t, w.st.PutTask(ctx, rec))
	gone := store.Task{ID: "0123456789", App: testApp, Service: "web", Kind: "oneoff", Command: []string{"/testapp", "echo"},
		Status: api.TaskRunning, StartedAt: time.Now().UTC()}
	require.NoError(t, w.st.PutTask(ctx, gone))
	overPod, err := w.eng.InspectPod(ctx, over.pod)
	require.NoError(t, err)

	second, _ := w.runner()
	assert.True(t, second.Leftover(ctx, overPod), "a pod of a task recorded over is a leftover")
	apps, err := w.st.ListApps(ctx)
	require.NoError(t, err)
	require.NoError(t, second.Adopt(ctx, apps))

	_, err = w.eng.InspectPod(ctx, over.pod)
	require.ErrorIs(t, err, runtime.ErrNotFound, "the pod of the task recorded over is removed")
	lostRec := w.recorded(gone.ID)
	assert.Equal(t, api.TaskLost, lostRec.Status)
	assert.Equal(t, "its container disappeared while the daemon was down", lostRec.Message)
	assert.Contains(t, w.eventsSaid(), fmt.Sprintf("task: task %s (/testapp echo) lost: its container disappeared while the daemon was down", gone.ID))

	run := second.Running(timesOut.id)
	require.NotNil(t, run, "the task with a timeout is followed")
	assert.Equal(t, api.TaskTimeout, wait(t, run).Status)
	assert.Equal(t, "timed out after 500ms", run.Record().Message)

	run = second.Running(follow.id)
	require.NotNil(t, run, "the running task is followed")
	followPod, err := w.eng.InspectPod(ctx, follow.pod)
	require.NoError(t, err)
	assert.False(t, second.Leftover(ctx, followPod), "a running task's pod is no leftover")
	rec, err = second.StopWait(ctx, run)
	require.NoError(t, err)
	assert.Equal(t, api.TaskStopped, rec.Status)
	eventually(t, "every task pod is removed", func() bool { return len(w.taskPods()) == 0 })
}

// A scheduled task runs when due, as a task of kind "scheduled"; a run due
// while the last one goes on is recorded skipped.
func TestSchedules(t *testing.T) {
	w := newWorld(t)
	r, _ := w.runner()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r.StartSchedules(ctx, nil)
	// Every second (CronSeconds), a run of 1.5s.
	yaml := testSpec + `  tick: {service: web, command: ["/testapp", "sleep", "1500ms"], schedule: "* * * * *"}` + "\n"
	sp, err := spec.Parse("berth.yaml", []byte(yaml))
	require.NoError(t, err)
	now := time.Now().UTC()
	require.NoError(t, w.st.PutApp(context.Background(), store.App{Name: testApp, SpecYAML: yaml, SpecFile: "berth.yaml", CreatedAt: now, UpdatedAt: now}))
	r.InstallSchedules(sp)

	var tasks []store.Task
	eventually(t, "a run and a skipped one", func() bool {
		tasks, err = w.st.ListTasks(context.Background(), testApp, 0)
		require.NoError(t, err)
		statuses := map[string]bool{}
		for _, tk := range tasks {
			statuses[tk.Status] = true
		}
		return statuses[api.TaskSkipped] && (statuses[api.TaskRunning] || statuses[api.TaskSucceeded])
	})
	for _, tk := range tasks {
		assert.Equal(t, "scheduled", tk.Kind)
		assert.Equal(t, "tick", tk.Name)
		if tk.Status == api.TaskSkipped {
			assert.Regexp(t, `^skipped: the previous run \(task [0-9a-f]{10}\) was still going$`, tk.Message)
		}
	}

	r.RemoveSchedules(testApp)
	time.Sleep(100 * time.Millisecond) // a run due as they were removed
	before, err := w.st.ListTasks(context.Background(), testApp, 0)
	require.NoError(t, err)
	time.Sleep(2 * time.Second)
	after, err := w.st.ListTasks(context.Background(), testApp, 0)
	require.NoError(t, err)
	assert.Len(t, after, len(before), "no run once the schedules are removed")
}
