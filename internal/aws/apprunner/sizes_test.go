package apprunner

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// App Runner writes sizes two ways (botocore's Cpu and Memory patterns);
// both read as berth's units, and berth's units are written back only as
// App Runner sells them.
func TestSizes(t *testing.T) {
	for in, want := range map[string]float64{"0.25 vCPU": 0.25, "1 vCPU": 1, "4 vCPU": 4, "256": 0.25, "2048": 2} {
		got, err := parseCPU(in)
		require.NoError(t, err, in)
		assert.Equal(t, want, got, in)
	}
	for in, want := range map[string]int64{"0.5 GB": 512 << 20, "2 GB": 2 << 30, "12 GB": 12 << 30, "3072": 3 << 30} {
		got, err := parseMemory(in)
		require.NoError(t, err, in)
		assert.Equal(t, want, got, in)
	}
	_, err := parseCPU("lots")
	assert.Error(t, err)

	cases := []struct {
		cpu      float64
		mem      int64
		wantCPU  string
		wantMem  string
		wantFail string
	}{
		{0.25, 512 << 20, "0.25 vCPU", "0.5 GB", ""},
		{1, 3 << 30, "1 vCPU", "3 GB", ""},
		{4, 12 << 30, "4 vCPU", "12 GB", ""},
		{0.5, 2 << 30, "", "", "App Runner sells 1GiB with 0.5 vCPU"},
		{8, 16 << 30, "", "", "cpu 8: App Runner sells 0.25, 0.5, 1, 2 or 4 vCPU"},
	}
	for _, tc := range cases {
		c, m, err := instanceSize(tc.cpu, tc.mem)
		if tc.wantFail != "" {
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.wantFail)
			continue
		}
		require.NoError(t, err)
		assert.Equal(t, tc.wantCPU, c)
		assert.Equal(t, tc.wantMem, m)
		// What is written reads back the same.
		cpu, _ := parseCPU(c)
		mem, _ := parseMemory(m)
		assert.Equal(t, tc.cpu, cpu)
		assert.Equal(t, tc.mem, mem)
	}
}

// A start command splits into berth's command list and joins back to one
// App Runner runs the same.
func TestCommand(t *testing.T) {
	cases := map[string][]string{
		"./server":                          {"./server"},
		`./server --listen ":8080"`:         {"./server", "--listen", ":8080"},
		`sh -c 'echo "hi there" && exec x'`: {"sh", "-c", `echo "hi there" && exec x`},
		`  a   b `:                          {"a", "b"},
		`say "it's"`:                        {"say", "it's"},
		`run ""`:                            {"run", ""},
	}
	for in, want := range cases {
		got := splitCommand(in)
		assert.Equal(t, want, got, in)
		assert.Equal(t, want, splitCommand(joinCommand(got)), "round trip of %q", in)
	}
}

// App Runner's log groups are named after the service's name and ID.
func TestLogGroups(t *testing.T) {
	app, svc, err := LogGroups("arn:aws:apprunner:eu-west-1:123456789012:service/shop-web/0123456789abcdef0123456789abcdef")
	require.NoError(t, err)
	assert.Equal(t, "/aws/apprunner/shop-web/0123456789abcdef0123456789abcdef/application", app)
	assert.Equal(t, "/aws/apprunner/shop-web/0123456789abcdef0123456789abcdef/service", svc)
	for _, bad := range []string{"", "arn:aws:ecs:eu-west-1:123456789012:service/c/s", "arn:aws:apprunner:eu-west-1:123456789012:autoscalingconfiguration/x/1/abc"} {
		_, _, err := LogGroups(bad)
		assert.Error(t, err, bad)
	}
}
