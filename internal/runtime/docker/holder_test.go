package docker

import (
	"bytes"
	"context"
	"debug/elf"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berth-dev/berth/internal/runtime"
	"github.com/berth-dev/berth/internal/testutil"
)

func TestSleeperELF(t *testing.T) {
	for _, arch := range []string{"amd64", "arm64"} {
		t.Run(arch, func(t *testing.T) {
			b, err := sleeperELF(arch)
			require.NoError(t, err)
			f, err := elf.NewFile(bytes.NewReader(b))
			require.NoError(t, err)
			require.Equal(t, elf.ET_EXEC, f.Type)
			require.Len(t, f.Progs, 1)
			want := map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64}[arch]
			require.Equal(t, want, f.Machine)
			require.Equal(t, uint64(0x400000+120), f.Entry)
		})
	}
	_, err := sleeperELF("s390x")
	require.Error(t, err)
}

func TestSubnetPool(t *testing.T) {
	testutil.RequireDocker(t)
	e, err := New(nil)
	require.NoError(t, err)
	ctx := context.Background()
	name := testutil.UniqueName(t, "pool")
	require.NoError(t, e.createInPool(ctx, name, map[string]string{"berth.test": "1"}))
	t.Cleanup(func() { _ = e.RemoveNetwork(context.Background(), name) })
	gw, subnet, err := e.NetworkAddrs(ctx, name)
	require.NoError(t, err)
	p := netip.MustParsePrefix(subnet)
	assert.Equal(t, 24, p.Bits())
	assert.True(t, subnetPool.Contains(p.Addr()), "subnet %s in %s", subnet, subnetPool)
	assert.Equal(t, p.Addr().Next().String(), gw)

	// A second network takes another /24.
	other := testutil.UniqueName(t, "pool")
	require.NoError(t, e.createInPool(ctx, other, nil))
	t.Cleanup(func() { _ = e.RemoveNetwork(context.Background(), other) })
	_, subnet2, err := e.NetworkAddrs(ctx, other)
	require.NoError(t, err)
	assert.NotEqual(t, subnet, subnet2)
}

func TestHolderImageSleeps(t *testing.T) {
	testutil.RequireDocker(t)
	e, err := New(nil)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	img, err := e.HolderImage(ctx)
	require.NoError(t, err)
	c, err := e.Create(ctx, runtime.ContainerSpec{Name: testutil.UniqueName(t, "holder"), Image: img, StopGrace: time.Second})
	require.NoError(t, err)
	t.Cleanup(func() { _ = e.Remove(context.Background(), c.ID) })
	_, err = e.Start(ctx, c.ID)
	require.NoError(t, err)
	time.Sleep(300 * time.Millisecond)
	c, err = e.Inspect(ctx, c.ID)
	require.NoError(t, err)
	assert.True(t, c.Running, "the holder keeps running")
	start := time.Now()
	require.NoError(t, e.Stop(ctx, c.ID, 5*time.Second))
	assert.Less(t, time.Since(start), 3*time.Second, "and stops at once on SIGTERM")
}
