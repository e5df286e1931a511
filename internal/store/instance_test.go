package store

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestInstances(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	putApp(t, s, "shop")
	putApp(t, s, "blog")
	for _, i := range []Instance{
		{ID: "shop-web-2", App: "shop", Service: "web", Revision: 2, Role: "instance", CreatedAt: t0},
		{ID: "shop-web-1b", App: "shop", Service: "web", Revision: 1, Role: "sidecar", CreatedAt: t0.Add(time.Second)},
		{ID: "shop-web-1a", App: "shop", Service: "web", Revision: 1, Role: "instance", CreatedAt: t0},
		{ID: "shop-api-1", App: "shop", Service: "api", Revision: 1, Role: "instance", CreatedAt: t0},
		{ID: "blog-web-1", App: "blog", Service: "web", Revision: 1, Role: "instance", CreatedAt: t0},
	} {
		require.NoError(t, s.PutInstance(ctx, i))
	}

	t.Run("list", func(t *testing.T) {
		tests := []struct {
			name         string
			app, service string
			want         []string
		}{
			{name: "one service", app: "shop", service: "web", want: []string{"shop-web-1a", "shop-web-1b", "shop-web-2"}},
			{name: "whole app", app: "shop", want: []string{"shop-api-1", "shop-web-1a", "shop-web-1b", "shop-web-2"}},
			{name: "every app", want: []string{"blog-web-1", "shop-api-1", "shop-web-1a", "shop-web-1b", "shop-web-2"}},
			{name: "missing app", app: "nope"},
			{name: "missing service", app: "shop", service: "nope"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				got, err := s.ListInstances(ctx, tt.app, tt.service)
				require.NoError(t, err)
				var ids []string
				for _, i := range got {
					ids = append(ids, i.ID)
				}
				assert.Equal(t, tt.want, ids)
			})
		}
	})

	t.Run("upsert every field", func(t *testing.T) {
		want := Instance{ID: "shop-web-2", App: "shop", Service: "web", Revision: 2, Role: "instance",
			ContainerID: "abc123", State: "unhealthy", HostAddr: "127.0.0.1:40000", Restarts: 4, LastExitCode: 137,
			OOMKilled: true, LastError: "killed", CreatedAt: t0, UpdatedAt: t0.Add(time.Minute)}
		changed := want
		changed.CreatedAt = t0.Add(time.Hour) // ignored: kept from the first put
		require.NoError(t, s.PutInstance(ctx, changed))
		got, err := s.GetInstance(ctx, "shop-web-2")
		require.NoError(t, err)
		assert.Equal(t, want, got)
	})

	t.Run("delete", func(t *testing.T) {
		require.NoError(t, s.DeleteInstance(ctx, "shop-api-1"))
		_, err := s.GetInstance(ctx, "shop-api-1")
		require.ErrorIs(t, err, ErrNotFound)
		require.NoError(t, s.DeleteInstance(ctx, "shop-api-1"), "deleting again is fine")
	})

	t.Run("errors", func(t *testing.T) {
		tests := []struct {
			name string
			run  func() error
			want error
		}{
			{name: "get missing", run: func() error { _, err := s.GetInstance(ctx, "nope"); return err }, want: ErrNotFound},
			{name: "put in missing app", run: func() error {
				return s.PutInstance(ctx, Instance{ID: "x", App: "nope", Service: "web"})
			}, want: ErrNotFound},
			{name: "put without id", run: func() error { return s.PutInstance(ctx, Instance{App: "shop", Service: "web"}) }, want: ErrInvalid},
			{name: "put without service", run: func() error { return s.PutInstance(ctx, Instance{ID: "x", App: "shop"}) }, want: ErrInvalid},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				require.ErrorIs(t, tt.run(), tt.want)
			})
		}
	})
}
