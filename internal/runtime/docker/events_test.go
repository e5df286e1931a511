package docker_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berth-dev/berth/internal/runtime"
)

func TestEvents(t *testing.T) {
	t.Parallel()
	e := newEngine(t)
	appName := app(t)

	ectx, cancel := context.WithCancel(ctx(t))
	events, errs := e.Events(ectx)

	c := create(t, e, appName, runtime.ContainerSpec{
		Command: []string{"/testapp", "exit", "5"},
		Labels:  map[string]string{runtime.LabelService: "web"},
	})
	_, err := e.Start(ctx(t), c.ID)
	require.NoError(t, err)

	var got []runtime.Event
	timeout := time.After(time.Minute)
	for len(got) < 2 {
		select {
		case ev := <-events:
			if ev.Labels[runtime.LabelApp] != appName {
				continue // another test's container
			}
			got = append(got, ev)
		case err := <-errs:
			t.Fatalf("events: %v", err)
		case <-timeout:
			t.Fatalf("got only %+v", got)
		}
	}
	assert.Equal(t, "start", got[0].Action)
	assert.Equal(t, "die", got[1].Action)
	assert.Equal(t, 5, got[1].ExitCode)
	assert.Equal(t, c.ID, got[1].ContainerID)
	assert.Equal(t, "web", got[1].Labels[runtime.LabelService])
	assert.NotContains(t, got[1].Labels, "exitCode", "engine attributes are not labels")

	cancel()
	select {
	case _, ok := <-events:
		for ok {
			_, ok = <-events
		}
	case <-time.After(10 * time.Second):
		t.Fatal("events channel not closed after ctx ended")
	}
	select {
	case err := <-errs:
		t.Fatalf("ending ctx is not an error: %v", err)
	default:
	}
}

func TestEventsOOM(t *testing.T) {
	t.Parallel()
	e := newEngine(t)
	appName := app(t)
	ectx, cancel := context.WithCancel(ctx(t))
	defer cancel()
	events, errs := e.Events(ectx)

	c := create(t, e, appName, runtime.ContainerSpec{Memory: 32 << 20, Env: map[string]string{"MEMHOG": "1"}})
	_, err := e.Start(ctx(t), c.ID)
	require.NoError(t, err)

	actions := map[string]runtime.Event{}
	timeout := time.After(time.Minute)
	for actions["die"].Action == "" {
		select {
		case ev := <-events:
			if ev.ContainerID == c.ID {
				actions[ev.Action] = ev
			}
		case err := <-errs:
			t.Fatalf("events: %v", err)
		case <-timeout:
			t.Fatalf("got only %+v", actions)
		}
	}
	assert.Contains(t, actions, "oom")
	assert.Equal(t, 137, actions["die"].ExitCode)
}
