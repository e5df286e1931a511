package controlplane_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berth-dev/berth/internal/api"
	"github.com/berth-dev/berth/internal/client"
	"github.com/berth-dev/berth/internal/testutil"
)

// TestStopEndsFollowedLogs: a `berth logs -f` left open must not hold the
// daemon's stop. The state is released (and, under berth server's
// supervisor, the next daemon starts: a restart or an upgrade) only once
// the API's requests are done, while the edge already accepts no more
// connections: a follow that waited for the drain bound (25 s) kept every
// new request to the edge waiting that long in the accept queue.
func TestStopEndsFollowedLogs(t *testing.T) {
	t.Parallel()
	d := startFakeDaemon(t, "")
	img := d.image()
	app := testutil.UniqueName(t, "follow")
	d.mustDeploy(appSpec(app, img, ""))

	followed := make(chan error, 1)
	got := make(chan struct{}, 1)
	go func() {
		followed <- d.client.Logs(context.Background(), app, "web", client.LogsOptions{Follow: true}, func(api.Message) {
			select {
			case got <- struct{}{}:
			default:
			}
		})
	}()
	// The follow is open once the daemon streams (the app logs at start).
	select {
	case <-got:
	case err := <-followed:
		t.Fatalf("the follow ended before the stop: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("no log line in 10s")
	}

	start := time.Now()
	d.stop()
	took := time.Since(start)
	assert.Less(t, took, 10*time.Second, "the daemon waited for the open follow to stop")
	select {
	case <-followed:
	case <-time.After(5 * time.Second):
		require.Fail(t, "the follow did not end with the daemon")
	}
}
