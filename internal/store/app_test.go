package store

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestApps(t *testing.T) {
	ctx := context.Background()

	t.Run("put get list", func(t *testing.T) {
		s := newStore(t)
		for _, name := range []string{"zeta", "alpha", "mid"} {
			putApp(t, s, name)
		}
		got, err := s.GetApp(ctx, "alpha")
		require.NoError(t, err)
		assert.Equal(t, App{Name: "alpha", SpecYAML: "app: alpha\n", SpecFile: "/src/alpha/berth.yaml", CreatedAt: t0, UpdatedAt: t0}, got)

		apps, err := s.ListApps(ctx)
		require.NoError(t, err)
		var names []string
		for _, a := range apps {
			names = append(names, a.Name)
		}
		assert.Equal(t, []string{"alpha", "mid", "zeta"}, names)
	})

	t.Run("upsert keeps created at", func(t *testing.T) {
		s := newStore(t)
		putApp(t, s, "shop")
		later := t0.Add(time.Hour)
		require.NoError(t, s.PutApp(ctx, App{Name: "shop", SpecYAML: "v2", SpecFile: "b.yaml", CreatedAt: later, UpdatedAt: later}))
		got, err := s.GetApp(ctx, "shop")
		require.NoError(t, err)
		assert.Equal(t, App{Name: "shop", SpecYAML: "v2", SpecFile: "b.yaml", CreatedAt: t0, UpdatedAt: later}, got)
	})

	t.Run("empty", func(t *testing.T) {
		s := newStore(t)
		apps, err := s.ListApps(ctx)
		require.NoError(t, err)
		assert.Empty(t, apps)
	})

	t.Run("not found", func(t *testing.T) {
		s := newStore(t)
		_, err := s.GetApp(ctx, "nope")
		require.ErrorIs(t, err, ErrNotFound)
		assert.Contains(t, err.Error(), `"nope"`)
	})

	t.Run("empty name is invalid", func(t *testing.T) {
		s := newStore(t)
		require.ErrorIs(t, s.PutApp(ctx, App{}), ErrInvalid)
	})

	t.Run("delete absent is fine", func(t *testing.T) {
		s := newStore(t)
		require.NoError(t, s.DeleteApp(ctx, "nope"))
	})
}

// TestDeleteAppCascades fills two apps, deletes one, and checks that
// everything of it went except its events and revision counter, and that
// the other app was not touched.
func TestDeleteAppCascades(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	for _, app := range []string{"shop", "blog"} {
		putApp(t, s, app)
		require.NoError(t, s.PutService(ctx, Service{App: app, Name: "web", CurrentRevision: 1, UpdatedAt: t0}))
		require.NoError(t, s.PutRevision(ctx, Revision{App: app, Service: "web", Number: 1, Status: RevisionActive, CreatedAt: t0}))
		require.NoError(t, s.PutInstance(ctx, Instance{ID: app + "-i1", App: app, Service: "web", Revision: 1, Role: "instance", CreatedAt: t0}))
		require.NoError(t, s.PutInstance(ctx, Instance{ID: app + "-s1", App: app, Service: "web", Revision: 1, Role: "sidecar", CreatedAt: t0}))
		require.NoError(t, s.SetSecrets(ctx, app, "web", map[string]string{"TOKEN": app + "-token"}, t0))
		require.NoError(t, s.PutTask(ctx, Task{ID: app + "-task", App: app, Service: "web", Kind: "oneoff", Status: "succeeded", StartedAt: t0}))
		_, err := s.AddEvent(ctx, Event{Time: t0, App: app, Kind: "deploy", Message: "deployed"})
		require.NoError(t, err)
	}

	require.NoError(t, s.DeleteApp(ctx, "shop"))

	t.Run("gone", func(t *testing.T) {
		_, err := s.GetApp(ctx, "shop")
		require.ErrorIs(t, err, ErrNotFound)
		_, err = s.GetService(ctx, "shop", "web")
		require.ErrorIs(t, err, ErrNotFound)
		svcs, err := s.ListServices(ctx, "shop")
		require.NoError(t, err)
		assert.Empty(t, svcs)
		revs, err := s.ListRevisions(ctx, "shop", "web")
		require.NoError(t, err)
		assert.Empty(t, revs)
		insts, err := s.ListInstances(ctx, "shop", "")
		require.NoError(t, err)
		assert.Empty(t, insts)
		_, err = s.GetInstance(ctx, "shop-s1")
		require.ErrorIs(t, err, ErrNotFound)
		keys, err := s.ListSecrets(ctx, "shop", "web")
		require.NoError(t, err)
		assert.Empty(t, keys)
		values, err := s.SecretValues(ctx, "shop", "web")
		require.NoError(t, err)
		assert.Empty(t, values)
		tasks, err := s.ListTasks(ctx, "shop", 0)
		require.NoError(t, err)
		assert.Empty(t, tasks)
		_, err = s.GetTask(ctx, "shop-task")
		require.ErrorIs(t, err, ErrNotFound)
	})

	t.Run("events kept", func(t *testing.T) {
		events, err := s.ListEvents(ctx, "shop", 0, 0)
		require.NoError(t, err)
		require.Len(t, events, 1)
		assert.Equal(t, "deployed", events[0].Message)
	})

	t.Run("revision numbers not reused", func(t *testing.T) {
		putApp(t, s, "shop")
		n, err := s.NextRevisionNumber(ctx, "shop", "web")
		require.NoError(t, err)
		assert.Equal(t, 2, n)
	})

	t.Run("other app untouched", func(t *testing.T) {
		_, err := s.GetApp(ctx, "blog")
		require.NoError(t, err)
		svcs, err := s.ListServices(ctx, "blog")
		require.NoError(t, err)
		assert.Len(t, svcs, 1)
		revs, err := s.ListRevisions(ctx, "blog", "web")
		require.NoError(t, err)
		assert.Len(t, revs, 1)
		insts, err := s.ListInstances(ctx, "blog", "")
		require.NoError(t, err)
		assert.Len(t, insts, 2)
		values, err := s.SecretValues(ctx, "blog", "web")
		require.NoError(t, err)
		assert.Equal(t, map[string]string{"TOKEN": "blog-token"}, values)
		tasks, err := s.ListTasks(ctx, "blog", 0)
		require.NoError(t, err)
		assert.Len(t, tasks, 1)
	})
}
