package store

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestTasks(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	putApp(t, s, "shop")
	putApp(t, s, "blog")
	tasks := []Task{
		{ID: "a1b2c3d4e5", App: "shop", Service: "web", Name: "migrate", Kind: "release", Command: []string{"./server", "migrate"},
			Revision: 3, ContainerID: "c1", Status: "succeeded", ExitCode: 0, Output: []byte("migrated\n"),
			StartedAt: t0, FinishedAt: t0.Add(time.Second), Message: ""},
		{ID: "a1b2ffff00", App: "shop", Service: "web", Kind: "oneoff", Command: []string{"sh", "-c", "exit 3"},
			Revision: 3, Status: "failed", ExitCode: 3, StartedAt: t0.Add(time.Minute), FinishedAt: t0.Add(2 * time.Minute)},
		{ID: "b0000000", App: "shop", Service: "web", Name: "nightly", Kind: "scheduled", Status: "running", StartedAt: t0.Add(time.Hour)},
		{ID: "c0000000", App: "blog", Service: "web", Kind: "oneoff", Status: "lost", StartedAt: t0.Add(30 * time.Minute)},
	}
	for _, tk := range tasks {
		require.NoError(t, s.PutTask(ctx, tk))
	}

	t.Run("get", func(t *testing.T) {
		tests := []struct {
			name   string
			id     string
			wantID string
			want   error
		}{
			{name: "full id", id: "a1b2c3d4e5", wantID: "a1b2c3d4e5"},
			{name: "unique prefix", id: "a1b2c", wantID: "a1b2c3d4e5"},
			{name: "four chars", id: "b000", wantID: "b0000000"},
			{name: "ambiguous prefix", id: "a1b2", want: ErrAmbiguous},
			{name: "prefix too short", id: "b00", want: ErrNotFound},
			{name: "unknown", id: "ffffffff", want: ErrNotFound},
			{name: "empty", id: "", want: ErrNotFound},
			{name: "longer than any id", id: "a1b2c3d4e5ff", want: ErrNotFound},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				got, err := s.GetTask(ctx, tt.id)
				if tt.want != nil {
					require.ErrorIs(t, err, tt.want)
					return
				}
				require.NoError(t, err)
				assert.Equal(t, tt.wantID, got.ID)
			})
		}
	})

	t.Run("round trip", func(t *testing.T) {
		for _, want := range tasks {
			got, err := s.GetTask(ctx, want.ID)
			require.NoError(t, err)
			assert.Equal(t, want, got)
		}
	})

	t.Run("list newest first", func(t *testing.T) {
		tests := []struct {
			name  string
			app   string
			limit int
			want  []string
		}{
			{name: "app", app: "shop", want: []string{"b0000000", "a1b2ffff00", "a1b2c3d4e5"}},
			{name: "app limit", app: "shop", limit: 1, want: []string{"b0000000"}},
			{name: "every app", want: []string{"b0000000", "c0000000", "a1b2ffff00", "a1b2c3d4e5"}},
			{name: "unknown app", app: "nope"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				got, err := s.ListTasks(ctx, tt.app, tt.limit)
				require.NoError(t, err)
				var ids []string
				for _, tk := range got {
					ids = append(ids, tk.ID)
				}
				assert.Equal(t, tt.want, ids)
			})
		}
	})

	t.Run("update finishes a task", func(t *testing.T) {
		tk := tasks[2]
		tk.Status, tk.ExitCode, tk.FinishedAt, tk.ContainerID, tk.Output = "timeout", 137, t0.Add(2*time.Hour), "c9", []byte("tail")
		require.NoError(t, s.PutTask(ctx, tk))
		got, err := s.GetTask(ctx, tk.ID)
		require.NoError(t, err)
		assert.Equal(t, tk, got)
	})

	t.Run("output keeps the tail", func(t *testing.T) {
		out := append(bytes.Repeat([]byte("x"), MaxTaskOutput), []byte("the end")...)
		require.NoError(t, s.PutTask(ctx, Task{ID: "big00000", App: "shop", Status: "succeeded", Output: out}))
		got, err := s.GetTask(ctx, "big00000")
		require.NoError(t, err)
		assert.Len(t, got.Output, MaxTaskOutput)
		assert.True(t, bytes.HasSuffix(got.Output, []byte("the end")))
	})

	t.Run("errors", func(t *testing.T) {
		tests := []struct {
			name string
			task Task
			want error
		}{
			{name: "missing app", task: Task{ID: "x0000000", App: "nope"}, want: ErrNotFound},
			{name: "no id", task: Task{App: "shop"}, want: ErrInvalid},
			{name: "no app", task: Task{ID: "x0000000"}, want: ErrInvalid},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				require.ErrorIs(t, s.PutTask(ctx, tt.task), tt.want)
			})
		}
	})
}
