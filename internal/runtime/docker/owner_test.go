package docker_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berth-dev/berth/internal/runtime"
	"github.com/berth-dev/berth/internal/runtime/docker"
	"github.com/berth-dev/berth/internal/testutil"
)

// Two berth servers on one engine: each sees, and may remove, only what it
// made (and what a berth without owners made); a network the other holds
// is refused by name, with the other's data directory.
func TestOwnersKeepToTheirOwn(t *testing.T) {
	a, b, plain := newEngine(t), newEngine(t), newEngine(t)
	a.SetOwner(runtime.Owner{ID: "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", Dir: "/srv/berth-a"})
	b.SetOwner(runtime.Owner{ID: "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb", Dir: "/srv/berth-b"})
	appName := app(t)

	mine := create(t, a, appName, runtime.ContainerSpec{Labels: map[string]string{runtime.LabelRole: "mine"}})
	old := create(t, plain, appName, runtime.ContainerSpec{Labels: map[string]string{runtime.LabelRole: "old"}})
	assert.Equal(t, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", mine.Labels[runtime.LabelOwner])
	assert.Equal(t, "/srv/berth-a", mine.Labels[runtime.LabelOwnerDir])

	ids := func(cs []docker.Container, err error) []string {
		require.NoError(t, err)
		var out []string
		for _, c := range cs {
			out = append(out, c.ID)
		}
		return out
	}
	only := map[string]string{runtime.LabelApp: appName}
	assert.ElementsMatch(t, []string{mine.ID, old.ID}, ids(a.List(ctx(t), only)), "a sees its own and the unlabelled")
	assert.ElementsMatch(t, []string{old.ID}, ids(b.List(ctx(t), only)), "b sees only the unlabelled")
	assert.ElementsMatch(t, []string{mine.ID, old.ID}, ids(plain.List(ctx(t), only)), "an engine with no owner sees all")

	// Networks: a's is refused to b, by name and with a's data directory.
	netName := testutil.UniqueName(t, "net")
	require.NoError(t, a.EnsureNetwork(ctx(t), netName, map[string]string{"berth.test": "1"}))
	t.Cleanup(func() { _ = a.RemoveNetwork(context.Background(), netName) })
	err := b.EnsureNetwork(ctx(t), netName, map[string]string{"berth.test": "1"})
	require.ErrorIs(t, err, runtime.ErrNetworkHeld)
	assert.Contains(t, err.Error(), "/srv/berth-a")
	require.ErrorIs(t, b.NetworkHeld(ctx(t), netName), runtime.ErrNetworkHeld)
	require.ErrorIs(t, b.RemoveNetwork(ctx(t), netName), runtime.ErrNetworkHeld)
	_, _, err = a.NetworkAddrs(ctx(t), netName)
	require.NoError(t, err, "b's remove left a's network")
	require.NoError(t, a.EnsureNetwork(ctx(t), netName, nil), "a's own network is fine to a")
	require.NoError(t, a.NetworkHeld(ctx(t), netName))
	require.NoError(t, a.RemoveNetwork(ctx(t), netName))
	_, _, err = a.NetworkAddrs(ctx(t), netName)
	require.ErrorIs(t, err, runtime.ErrNetworkNotFound)
}
