package spec

import (
	"math"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseSize(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		err  error
	}{
		{"512MiB", 512 << 20, nil},
		{"512mib", 512 << 20, nil},
		{"512Mi", 512 << 20, nil},
		{"512M", 512 << 20, nil},
		{"512m", 512 << 20, nil},
		{"1GiB", 1 << 30, nil},
		{"1.5GiB", 3 << 29, nil},
		{"1G", 1 << 30, nil},
		{"2TiB", 2 << 40, nil},
		{"100MB", 100_000_000, nil},
		{"1GB", 1_000_000_000, nil},
		{"1.5KB", 1500, nil},
		{"64KiB", 64 << 10, nil},
		{"64K", 64 << 10, nil},
		{"100B", 100, nil},
		{" 256 MiB ", 256 << 20, nil},
		{"0.5B", 0, ErrSizeSyntax},
		{"1.0000001B", 1, nil},
		{"512", 0, ErrSizeNoUnit},
		{"1.5", 0, ErrSizeNoUnit},
		{"", 0, ErrSizeSyntax},
		{"MiB", 0, ErrSizeSyntax},
		{"-1MiB", 0, ErrSizeSyntax},
		{"+1MiB", 0, ErrSizeSyntax},
		{"0MiB", 0, ErrSizeSyntax},
		{"1..5MiB", 0, ErrSizeSyntax},
		{"1.MiB", 0, ErrSizeSyntax},
		{".5MiB", 0, ErrSizeSyntax},
		{"1e3MiB", 0, ErrSizeUnit},
		{"512XB", 0, ErrSizeUnit},
		{"512 MiB extra", 0, ErrSizeUnit},
		{"8EiB", 0, ErrSizeUnit},
		{"8388608TiB", 0, ErrSizeRange},
		{"8388607TiB", 8388607 << 40, nil},
		{"1000000000000000000000000000000000B", 0, ErrSizeRange},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseSize(tt.in)
			if tt.err != nil {
				require.ErrorIs(t, err, tt.err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestFormatSize(t *testing.T) {
	tests := []struct {
		in   int64
		want string
	}{
		{0, "0B"},
		{1, "1B"},
		{1023, "1023B"},
		{1000, "1000B"},
		{1024, "1KiB"},
		{1500, "1.4KiB"},
		{1536, "1.5KiB"},
		{2000, "2KB"},
		{6 << 20, "6MiB"},
		{512 << 20, "512MiB"},
		{1536 << 20, "1536MiB"},
		{1 << 30, "1GiB"},
		{1 << 40, "1TiB"},
		{1_000_000_000, "1GB"},
		{100_000_000, "100MB"},
		{123_456_789, "117.7MiB"},
		{-(512 << 20), "-512MiB"},
		{math.MinInt64, "-8EiB"},
		{math.MaxInt64, "8388607.9TiB"},
		{1<<20 - 1, "1023.9KiB"},
		{5121, "5.0KiB"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			assert.Equal(t, tt.want, FormatSize(tt.in))
		})
	}
}

func TestSizeRoundTrip(t *testing.T) {
	for _, n := range []int64{1, 999, 1024, 6 << 20, 512 << 20, 3 << 29, 1_000_000, 1_500_000, 7 << 40} {
		got, err := ParseSize(FormatSize(n))
		require.NoError(t, err, FormatSize(n))
		assert.Equal(t, n, got, FormatSize(n))
	}
}

// FuzzSize checks that ParseSize never panics and that whatever it
// accepts, FormatSize renders back faithfully. (Not named FuzzParseSize, so
// that -fuzz FuzzParse picks FuzzParse alone.)
func FuzzSize(f *testing.F) {
	for _, s := range []string{"512MiB", "1.5GB", "256m", "512", "-1K", "1e3MiB", "0.0001TiB", "8388607TiB"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := ParseSize(s)
		if err != nil {
			return
		}
		require.Positive(t, n)
		out := FormatSize(n)
		back, err := ParseSize(out)
		require.NoError(t, err, out)
		if !strings.Contains(out, ".") {
			require.Equal(t, n, back, "exact form %q must round-trip", out)
			return
		}
		// The one-decimal form never overstates and is off by under 10%.
		require.LessOrEqual(t, back, n, out)
		require.LessOrEqual(t, n-back, n/10, out)
	})
}
