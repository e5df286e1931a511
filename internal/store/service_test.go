package store

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestServices(t *testing.T) {
	ctx := context.Background()

	t.Run("put get list by name", func(t *testing.T) {
		s := newStore(t)
		putApp(t, s, "shop")
		putApp(t, s, "blog")
		for _, name := range []string{"worker", "api", "web"} {
			require.NoError(t, s.PutService(ctx, Service{App: "shop", Name: name, UpdatedAt: t0}))
		}
		require.NoError(t, s.PutService(ctx, Service{App: "blog", Name: "web", UpdatedAt: t0}))

		got, err := s.GetService(ctx, "shop", "api")
		require.NoError(t, err)
		assert.Equal(t, Service{App: "shop", Name: "api", UpdatedAt: t0}, got)

		svcs, err := s.ListServices(ctx, "shop")
		require.NoError(t, err)
		var names []string
		for _, sv := range svcs {
			names = append(names, sv.Name)
		}
		assert.Equal(t, []string{"api", "web", "worker"}, names)
	})

	t.Run("upsert", func(t *testing.T) {
		s := newStore(t)
		putApp(t, s, "shop")
		require.NoError(t, s.PutService(ctx, Service{App: "shop", Name: "web", CurrentRevision: 1, UpdatedAt: t0}))
		want := Service{App: "shop", Name: "web", CurrentRevision: 2, Paused: true, Instances: 5, UpdatedAt: t0.Add(time.Minute)}
		require.NoError(t, s.PutService(ctx, want))
		got, err := s.GetService(ctx, "shop", "web")
		require.NoError(t, err)
		assert.Equal(t, want, got)
	})

	t.Run("errors", func(t *testing.T) {
		s := newStore(t)
		putApp(t, s, "shop")
		tests := []struct {
			name string
			run  func() error
			want error
		}{
			{name: "get missing service", run: func() error { _, err := s.GetService(ctx, "shop", "nope"); return err }, want: ErrNotFound},
			{name: "get in missing app", run: func() error { _, err := s.GetService(ctx, "nope", "web"); return err }, want: ErrNotFound},
			{name: "put in missing app", run: func() error { return s.PutService(ctx, Service{App: "nope", Name: "web"}) }, want: ErrNotFound},
			{name: "put without name", run: func() error { return s.PutService(ctx, Service{App: "shop"}) }, want: ErrInvalid},
			{name: "put without app", run: func() error { return s.PutService(ctx, Service{Name: "web"}) }, want: ErrInvalid},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				require.ErrorIs(t, tt.run(), tt.want)
			})
		}
	})

	t.Run("delete removes revisions and instances, keeps secrets and tasks", func(t *testing.T) {
		s := newStore(t)
		putApp(t, s, "shop")
		for _, name := range []string{"web", "api"} {
			require.NoError(t, s.PutService(ctx, Service{App: "shop", Name: name, CurrentRevision: 1}))
			require.NoError(t, s.PutRevision(ctx, Revision{App: "shop", Service: name, Number: 1, Status: RevisionActive}))
			require.NoError(t, s.PutInstance(ctx, Instance{ID: name + "-1", App: "shop", Service: name, Revision: 1}))
			require.NoError(t, s.SetSecrets(ctx, "shop", name, map[string]string{"K": "v"}, t0))
			require.NoError(t, s.PutTask(ctx, Task{ID: name + "-task", App: "shop", Service: name, StartedAt: t0}))
		}

		require.NoError(t, s.DeleteService(ctx, "shop", "web"))
		require.NoError(t, s.DeleteService(ctx, "shop", "web"), "deleting again is fine")

		_, err := s.GetService(ctx, "shop", "web")
		require.ErrorIs(t, err, ErrNotFound)
		_, err = s.GetRevision(ctx, "shop", "web", 1)
		require.ErrorIs(t, err, ErrNotFound)
		_, err = s.GetInstance(ctx, "web-1")
		require.ErrorIs(t, err, ErrNotFound)
		keys, err := s.ListSecrets(ctx, "shop", "web")
		require.NoError(t, err)
		assert.Len(t, keys, 1)
		_, err = s.GetTask(ctx, "web-task")
		require.NoError(t, err)
		n, err := s.NextRevisionNumber(ctx, "shop", "web")
		require.NoError(t, err)
		assert.Equal(t, 2, n, "numbers are not reused after the service is deleted")

		svcs, err := s.ListServices(ctx, "shop")
		require.NoError(t, err)
		require.Len(t, svcs, 1)
		assert.Equal(t, "api", svcs[0].Name)
		_, err = s.GetInstance(ctx, "api-1")
		require.NoError(t, err)
	})
}
