package docker_test

import (
	"context"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestMemTotal: the engine's memory is this machine's (berth assumes a
// local engine), as /proc/meminfo says, to within what the two round.
func TestMemTotal(t *testing.T) {
	t.Parallel()
	e := newEngine(t)
	got, err := e.MemTotal(context.Background())
	require.NoError(t, err)
	require.Positive(t, got)
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		t.Skip("no /proc/meminfo to compare with")
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "MemTotal:" {
			kib, err := strconv.ParseInt(f[1], 10, 64)
			require.NoError(t, err)
			assert.InEpsilon(t, kib<<10, got, 0.01)
		}
	}
}
