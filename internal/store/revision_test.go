package store

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRevisionStatus(t *testing.T) {
	tests := []struct {
		status RevisionStatus
		valid  bool
	}{
		{status: RevisionDeploying, valid: true},
		{status: RevisionActive, valid: true},
		{status: RevisionPrevious, valid: true},
		{status: RevisionRetired, valid: true},
		{status: RevisionFailed, valid: true},
		{status: "", valid: false},
		{status: "Active", valid: false},
	}
	for _, tt := range tests {
		t.Run(string(tt.status), func(t *testing.T) {
			assert.Equal(t, string(tt.status), tt.status.String())
			assert.Equal(t, tt.valid, tt.status.Valid())
		})
	}
}

func TestRevisions(t *testing.T) {
	ctx := context.Background()

	t.Run("put get list newest first", func(t *testing.T) {
		s := newStore(t)
		putApp(t, s, "shop")
		for n := 1; n <= 3; n++ {
			require.NoError(t, s.PutRevision(ctx, Revision{App: "shop", Service: "web", Number: n,
				Spec: []byte(`{"name":"web"}`), Image: "img", Status: RevisionRetired, CreatedAt: t0.Add(time.Duration(n) * time.Minute)}))
		}
		require.NoError(t, s.PutRevision(ctx, Revision{App: "shop", Service: "api", Number: 1, Status: RevisionActive}))

		got, err := s.GetRevision(ctx, "shop", "web", 2)
		require.NoError(t, err)
		assert.Equal(t, Revision{App: "shop", Service: "web", Number: 2, Spec: []byte(`{"name":"web"}`), Image: "img",
			Status: RevisionRetired, CreatedAt: t0.Add(2 * time.Minute)}, got)

		revs, err := s.ListRevisions(ctx, "shop", "web")
		require.NoError(t, err)
		var numbers []int
		for _, r := range revs {
			numbers = append(numbers, r.Number)
		}
		assert.Equal(t, []int{3, 2, 1}, numbers)
	})

	t.Run("upsert updates status and keeps created at", func(t *testing.T) {
		s := newStore(t)
		putApp(t, s, "shop")
		r := Revision{App: "shop", Service: "web", Number: 1, Spec: []byte(`{}`), Image: "img:1", Status: RevisionDeploying, CreatedAt: t0}
		require.NoError(t, s.PutRevision(ctx, r))
		r.Status, r.Message, r.ImageID, r.CreatedAt = RevisionFailed, "release failed: exit 1", "sha256:1", t0.Add(time.Hour)
		require.NoError(t, s.PutRevision(ctx, r))
		got, err := s.GetRevision(ctx, "shop", "web", 1)
		require.NoError(t, err)
		r.CreatedAt = t0
		assert.Equal(t, r, got)
	})

	t.Run("errors", func(t *testing.T) {
		s := newStore(t)
		putApp(t, s, "shop")
		tests := []struct {
			name string
			run  func() error
			want error
		}{
			{name: "get missing", run: func() error { _, err := s.GetRevision(ctx, "shop", "web", 1); return err }, want: ErrNotFound},
			{name: "put in missing app", run: func() error {
				return s.PutRevision(ctx, Revision{App: "nope", Service: "web", Number: 1, Status: RevisionActive})
			}, want: ErrNotFound},
			{name: "unknown status", run: func() error {
				return s.PutRevision(ctx, Revision{App: "shop", Service: "web", Number: 1, Status: "running"})
			}, want: ErrInvalid},
			{name: "empty status", run: func() error {
				return s.PutRevision(ctx, Revision{App: "shop", Service: "web", Number: 1})
			}, want: ErrInvalid},
			{name: "number zero", run: func() error {
				return s.PutRevision(ctx, Revision{App: "shop", Service: "web", Status: RevisionActive})
			}, want: ErrInvalid},
			{name: "no service", run: func() error {
				return s.PutRevision(ctx, Revision{App: "shop", Number: 1, Status: RevisionActive})
			}, want: ErrInvalid},
			{name: "next without service", run: func() error { _, err := s.NextRevisionNumber(ctx, "shop", ""); return err }, want: ErrInvalid},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				require.ErrorIs(t, tt.run(), tt.want)
			})
		}
	})
}

func TestNextRevisionNumber(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	putApp(t, s, "shop")
	next := func(service string) int {
		t.Helper()
		n, err := s.NextRevisionNumber(ctx, "shop", service)
		require.NoError(t, err)
		return n
	}

	put := func(n int, status RevisionStatus) func() {
		return func() {
			require.NoError(t, s.PutRevision(ctx, Revision{App: "shop", Service: "web", Number: n, Status: status}))
		}
	}
	// The steps run in order on one service: what a deploy did, then the
	// number the next deploy gets.
	steps := []struct {
		name   string
		before func()
		want   int
	}{
		{name: "first is 1", want: 1},
		{name: "after a stored revision", before: put(1, RevisionActive), want: 2},
		{name: "a failed revision's number is not reused", before: put(2, RevisionFailed), want: 3},
		{name: "a number allocated but never stored is not reused", want: 4},
		{name: "a revision stored ahead of the counter", before: put(10, RevisionActive), want: 11},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			if st.before != nil {
				st.before()
			}
			assert.Equal(t, st.want, next("web"))
		})
	}

	t.Run("per service", func(t *testing.T) {
		assert.Equal(t, 1, next("api"))
	})
}
