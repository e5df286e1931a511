package store

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func BenchmarkPutInstance(b *testing.B) {
	s := newStore(b)
	ctx := context.Background()
	putApp(b, s, "shop")
	i := Instance{ID: "i-1", App: "shop", Service: "web", Revision: 1, Role: "instance", State: "healthy",
		HostAddr: "127.0.0.1:40000", CreatedAt: t0}
	n := 0
	for b.Loop() {
		n++
		i.Restarts = n
		i.UpdatedAt = t0.Add(time.Duration(n))
		if err := s.PutInstance(ctx, i); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkListInstances(b *testing.B) {
	s := newStore(b)
	ctx := context.Background()
	putApp(b, s, "shop")
	for n := range 50 {
		svc := fmt.Sprintf("svc-%d", n%5)
		require.NoError(b, s.PutInstance(ctx, Instance{ID: fmt.Sprintf("i-%03d", n), App: "shop", Service: svc,
			Revision: 1, Role: "instance", State: "healthy", CreatedAt: t0}))
	}
	for b.Loop() {
		got, err := s.ListInstances(ctx, "shop", "svc-1")
		if err != nil || len(got) != 10 {
			b.Fatal(len(got), err)
		}
	}
}

// bigState is a closed data directory whose berth.db holds n events of
// about 250 bytes each (n=100,000 makes a file of about 30 MB).
func bigState(b *testing.B, n int) string {
	b.Helper()
	dir := b.TempDir()
	s, err := Open(dir)
	require.NoError(b, err)
	ctx := context.Background()
	require.NoError(b, s.withTx(ctx, func(tx *sql.Tx) error {
		for i := range n {
			if _, err := tx.ExecContext(ctx, `INSERT INTO events (time, app, service, kind, message) VALUES (?, 'shop', 'web', 'deploy', ?)`,
				t0.UnixNano(), fmt.Sprintf("event %d %0230d", i, i)); err != nil {
				return err
			}
		}
		return nil
	}))
	require.NoError(b, s.Close())
	return dir
}

// BenchmarkOpenLarge is the start-up cost of the checks (the integrity
// check reads every page) on a large state.
func BenchmarkOpenLarge(b *testing.B) {
	dir := bigState(b, 100_000)
	fi, err := os.Stat(filepath.Join(dir, DBFile))
	require.NoError(b, err)
	for b.Loop() {
		s, err := Open(dir)
		if err != nil {
			b.Fatal(err)
		}
		s.Close()
	}
	b.ReportMetric(float64(fi.Size())/1e6, "MB")
}

// BenchmarkBackupLarge is one backup (VACUUM INTO, integrity check, fsync,
// rename) of a large state.
func BenchmarkBackupLarge(b *testing.B) {
	dir := bigState(b, 100_000)
	s := openStore(b, dir)
	n := 0
	for b.Loop() {
		n++
		if _, err := s.Backup(context.Background(), t0.Add(time.Duration(n)), 2); err != nil {
			b.Fatal(err)
		}
	}
}
