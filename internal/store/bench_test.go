package store

import (
	"context"
	"fmt"
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
