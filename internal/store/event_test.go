package store

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestEvents(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	var ids []int64
	for i, app := range []string{"shop", "blog", "shop", "shop", "blog"} {
		id, err := s.AddEvent(ctx, Event{ID: 999, Time: t0.Add(time.Duration(i) * time.Second), App: app, Service: "web", Kind: "deploy", Message: app})
		require.NoError(t, err)
		ids = append(ids, id)
	}
	assert.Equal(t, []int64{1, 2, 3, 4, 5}, ids, "IDs are assigned in order; the caller's ID is ignored")

	tests := []struct {
		name    string
		app     string
		afterID int64
		limit   int
		want    []int64
	}{
		{name: "all", want: []int64{1, 2, 3, 4, 5}},
		{name: "one app", app: "shop", want: []int64{1, 3, 4}},
		{name: "after", afterID: 2, want: []int64{3, 4, 5}},
		{name: "app after", app: "blog", afterID: 2, want: []int64{5}},
		{name: "limit oldest first", limit: 2, want: []int64{1, 2}},
		{name: "after and limit", afterID: 3, limit: 1, want: []int64{4}},
		{name: "nothing newer", afterID: 5},
		{name: "unknown app", app: "nope"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.ListEvents(ctx, tt.app, tt.afterID, tt.limit)
			require.NoError(t, err)
			var gotIDs []int64
			for _, e := range got {
				gotIDs = append(gotIDs, e.ID)
			}
			assert.Equal(t, tt.want, gotIDs)
		})
	}

	t.Run("fields", func(t *testing.T) {
		got, err := s.ListEvents(ctx, "", 1, 1)
		require.NoError(t, err)
		assert.Equal(t, []Event{{ID: 2, Time: t0.Add(time.Second), App: "blog", Service: "web", Kind: "deploy", Message: "blog"}}, got)
	})
}

func TestTrimEvents(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name        string
		keep        int
		wantDeleted int64
		wantIDs     []int64
	}{
		{name: "keep two", keep: 2, wantDeleted: 3, wantIDs: []int64{4, 5}},
		{name: "keep more than there are", keep: 10, wantIDs: []int64{1, 2, 3, 4, 5}},
		{name: "keep none", keep: 0, wantDeleted: 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStore(t)
			for range 5 {
				_, err := s.AddEvent(ctx, Event{Time: t0, App: "shop", Kind: "k"})
				require.NoError(t, err)
			}
			n, err := s.TrimEvents(ctx, tt.keep)
			require.NoError(t, err)
			assert.Equal(t, tt.wantDeleted, n)
			got, err := s.ListEvents(ctx, "", 0, 0)
			require.NoError(t, err)
			var ids []int64
			for _, e := range got {
				ids = append(ids, e.ID)
			}
			assert.Equal(t, tt.wantIDs, ids)

			id, err := s.AddEvent(ctx, Event{Time: t0, App: "shop", Kind: "k"})
			require.NoError(t, err)
			assert.Equal(t, int64(6), id, "IDs are not reused after a trim")
		})
	}
}
