package docker

import (
	"bytes"
	"debug/elf"
	"testing"

	"github.com/stretchr/testify/require"
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
