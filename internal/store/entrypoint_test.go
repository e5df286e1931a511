package store

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestEntrypoints(t *testing.T) {
	ctx := context.Background()
	ep := func(name, app, state string) Entrypoint {
		return Entrypoint{Name: name, App: app, Config: []byte(`{"hosts":["` + name + `.example.com"]}`), State: []byte(state), UpdatedAt: t0}
	}

	t.Run("put get list delete", func(t *testing.T) {
		s := newStore(t)
		putApp(t, s, "shop")
		putApp(t, s, "blog")
		require.NoError(t, s.PutEntrypoint(ctx, ep("www", "shop", `{"origin":"web"}`)))
		require.NoError(t, s.PutEntrypoint(ctx, ep("api", "shop", "")))
		require.NoError(t, s.PutEntrypoint(ctx, ep("news", "blog", "")))
		got, err := s.GetEntrypoint(ctx, "www")
		require.NoError(t, err)
		assert.Equal(t, ep("www", "shop", `{"origin":"web"}`), got)
		empty, err := s.GetEntrypoint(ctx, "api")
		require.NoError(t, err)
		assert.Nil(t, empty.State)

		names := func(app string) []string {
			eps, err := s.ListEntrypoints(ctx, app)
			require.NoError(t, err)
			var out []string
			for _, e := range eps {
				out = append(out, e.Name)
			}
			return out
		}
		assert.Equal(t, []string{"api", "news", "www"}, names(""))
		assert.Equal(t, []string{"api", "www"}, names("shop"))

		updated := ep("www", "shop", `{"origin":"https://x.example.com"}`)
		require.NoError(t, s.PutEntrypoint(ctx, updated))
		got, err = s.GetEntrypoint(ctx, "www")
		require.NoError(t, err)
		assert.Equal(t, updated, got)

		require.NoError(t, s.DeleteEntrypoint(ctx, "api"))
		require.NoError(t, s.DeleteEntrypoint(ctx, "api"))
		_, err = s.GetEntrypoint(ctx, "api")
		require.ErrorIs(t, err, ErrNotFound)
	})

	t.Run("a name belongs to one app", func(t *testing.T) {
		s := newStore(t)
		putApp(t, s, "shop")
		putApp(t, s, "blog")
		require.NoError(t, s.PutEntrypoint(ctx, ep("www", "shop", "")))
		require.ErrorIs(t, s.PutEntrypoint(ctx, ep("www", "blog", "")), ErrConflict)
		require.ErrorIs(t, s.ReplaceEntrypoints(ctx, "blog", []Entrypoint{ep("news", "blog", ""), ep("www", "blog", "")}), ErrConflict)
		eps, err := s.ListEntrypoints(ctx, "blog")
		require.NoError(t, err)
		assert.Empty(t, eps, "nothing changed")
	})

	t.Run("unknown app", func(t *testing.T) {
		s := newStore(t)
		require.ErrorIs(t, s.PutEntrypoint(ctx, ep("www", "nope", "")), ErrNotFound)
		require.ErrorIs(t, s.PutEntrypoint(ctx, Entrypoint{Name: "x"}), ErrInvalid)
	})

	t.Run("replace", func(t *testing.T) {
		s := newStore(t)
		putApp(t, s, "shop")
		putApp(t, s, "blog")
		require.NoError(t, s.ReplaceEntrypoints(ctx, "shop", []Entrypoint{ep("a", "shop", "1"), ep("b", "shop", "")}))
		require.NoError(t, s.PutEntrypoint(ctx, ep("news", "blog", "")))
		require.NoError(t, s.ReplaceEntrypoints(ctx, "shop", []Entrypoint{ep("b", "shop", "2"), ep("c", "shop", "")}))
		eps, err := s.ListEntrypoints(ctx, "")
		require.NoError(t, err)
		require.Len(t, eps, 3)
		assert.Equal(t, []string{"b", "c", "news"}, []string{eps[0].Name, eps[1].Name, eps[2].Name})
		assert.Equal(t, "2", string(eps[0].State))
		require.NoError(t, s.ReplaceEntrypoints(ctx, "shop", nil))
		eps, err = s.ListEntrypoints(ctx, "")
		require.NoError(t, err)
		assert.Len(t, eps, 1)
	})

	t.Run("deleted with the app, kept across reopen", func(t *testing.T) {
		dir := t.TempDir()
		s, err := Open(dir)
		require.NoError(t, err)
		putApp(t, s, "shop")
		putApp(t, s, "blog")
		require.NoError(t, s.PutEntrypoint(ctx, ep("www", "shop", "x")))
		require.NoError(t, s.PutEntrypoint(ctx, ep("news", "blog", "")))
		require.NoError(t, s.DeleteApp(ctx, "blog"))
		require.NoError(t, s.Close())

		s, err = Open(dir)
		require.NoError(t, err)
		defer s.Close()
		eps, err := s.ListEntrypoints(ctx, "")
		require.NoError(t, err)
		require.Len(t, eps, 1)
		assert.Equal(t, "x", string(eps[0].State))
	})
}

// TestMigrationFromVersion1 opens a database made by a berth that knew only
// the first schema: the entrypoints table is added, nothing else changes.
func TestMigrationFromVersion1(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	db, err := sql.Open("sqlite", dsn(filepath.Join(dir, DBFile)))
	require.NoError(t, err)
	_, err = db.ExecContext(ctx, `CREATE TABLE schema_version (version INTEGER NOT NULL); INSERT INTO schema_version VALUES (1);`+migrations[0]+
		`INSERT INTO apps (name, spec_yaml, spec_file) VALUES ('shop', 'app: shop', 'berth.yaml');`)
	require.NoError(t, err)
	require.NoError(t, db.Close())

	s, err := Open(dir)
	require.NoError(t, err)
	defer s.Close()
	var v int
	require.NoError(t, s.db.QueryRowContext(ctx, `SELECT version FROM schema_version`).Scan(&v))
	assert.Equal(t, len(migrations), v)
	_, err = s.GetApp(ctx, "shop")
	require.NoError(t, err)
	require.NoError(t, s.PutEntrypoint(ctx, Entrypoint{Name: "www", App: "shop", UpdatedAt: t0}))
}
