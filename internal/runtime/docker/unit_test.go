package docker

import (
	"archive/tar"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/go-connections/nat"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berth-dev/berth/internal/runtime"
)

func frame(stream byte, payload string) []byte {
	hdr := make([]byte, 8)
	hdr[0] = stream
	binary.BigEndian.PutUint32(hdr[4:], uint32(len(payload)))
	return append(hdr, payload...)
}

func TestReadLogs(t *testing.T) {
	const t1, t2 = "2025-01-02T03:04:05.123456789Z", "2025-01-02T03:04:06Z"
	tests := []struct {
		name  string
		tty   bool
		input []byte
		want  []string
		err   bool
	}{
		{
			name:  "multiplexed",
			input: bytes.Join([][]byte{frame(1, t1+" out\n"), frame(2, t2+" err\n")}, nil),
			want:  []string{t1 + " stdout out", t2 + " stderr err"},
		},
		{
			name: "partial messages are joined, first timestamp kept",
			input: bytes.Join([][]byte{
				frame(1, t1+" aaa"), frame(2, t2+" interleaved\n"), frame(1, t2+" bbb\n"),
			}, nil),
			want: []string{t2 + " stderr interleaved", t1 + " stdout aaabbb"},
		},
		{
			name:  "last line without newline",
			input: frame(1, t1+" no newline"),
			want:  []string{t1 + " stdout no newline"},
		},
		{
			name:  "empty line",
			input: frame(1, t1+" \n"),
			want:  []string{t1 + " stdout "},
		},
		{
			name:  "tty raw stream",
			tty:   true,
			input: []byte(t1 + " one\r\n" + t2 + " two\r\n"),
			want:  []string{t1 + " stdout one", t2 + " stdout two"},
		},
		{
			name:  "engine error in band",
			input: frame(3, "something broke"),
			err:   true,
		},
		{
			name:  "truncated frame",
			input: frame(1, t1+" abc")[:10],
			err:   true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			err := readLogs(bytes.NewReader(tt.input), tt.tty, func(l runtime.LogLine) {
				got = append(got, l.Time.Format(time.RFC3339Nano)+" "+l.Stream+" "+l.Text)
			})
			if tt.err {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestContainerConfig(t *testing.T) {
	tests := []struct {
		name  string
		spec  runtime.ContainerSpec
		check func(t *testing.T, cfg *container.Config, host *container.HostConfig, hasNet bool)
	}{
		{
			name: "env sorted, command kept",
			spec: runtime.ContainerSpec{Image: "i", Env: map[string]string{"B": "2", "A": "1", "C": "x=y"}, Command: []string{"/app", "serve"}},
			check: func(t *testing.T, cfg *container.Config, _ *container.HostConfig, _ bool) {
				assert.Equal(t, []string{"A=1", "B=2", "C=x=y"}, cfg.Env)
				assert.Equal(t, []string{"/app", "serve"}, []string(cfg.Cmd))
			},
		},
		{
			name: "no command keeps the image CMD",
			spec: runtime.ContainerSpec{Image: "i"},
			check: func(t *testing.T, cfg *container.Config, host *container.HostConfig, hasNet bool) {
				assert.Nil(t, cfg.Cmd)
				assert.Nil(t, cfg.StopTimeout)
				assert.Empty(t, host.PortBindings)
				assert.False(t, hasNet)
			},
		},
		{
			name: "random loopback port",
			spec: runtime.ContainerSpec{Image: "i", Port: 8080},
			check: func(t *testing.T, cfg *container.Config, host *container.HostConfig, _ bool) {
				assert.Contains(t, cfg.ExposedPorts, nat.Port("8080/tcp"))
				assert.Equal(t, []nat.PortBinding{{HostIP: "127.0.0.1", HostPort: ""}}, host.PortBindings["8080/tcp"])
			},
		},
		{
			name: "fixed loopback port",
			spec: runtime.ContainerSpec{Image: "i", Port: 8080, HostPort: 18080},
			check: func(t *testing.T, _ *container.Config, host *container.HostConfig, _ bool) {
				assert.Equal(t, []nat.PortBinding{{HostIP: "127.0.0.1", HostPort: "18080"}}, host.PortBindings["8080/tcp"])
			},
		},
		{
			name: "network and aliases",
			spec: runtime.ContainerSpec{Image: "i", Network: "shop", Aliases: []string{"web"}},
			check: func(t *testing.T, _ *container.Config, host *container.HostConfig, hasNet bool) {
				assert.Equal(t, "shop", string(host.NetworkMode))
				assert.True(t, hasNet)
			},
		},
		{
			name: "join container ignores network and port",
			spec: runtime.ContainerSpec{Image: "i", JoinContainer: "abc", Network: "shop", Port: 8080},
			check: func(t *testing.T, cfg *container.Config, host *container.HostConfig, hasNet bool) {
				assert.Equal(t, "container:abc", string(host.NetworkMode))
				assert.Empty(t, host.PortBindings)
				assert.Empty(t, cfg.ExposedPorts)
				assert.False(t, hasNet)
			},
		},
		{
			name: "limits",
			spec: runtime.ContainerSpec{Image: "i", CPU: 1.5, Memory: 256 << 20, PidsLimit: 100, StopGrace: 30 * time.Second},
			check: func(t *testing.T, cfg *container.Config, host *container.HostConfig, _ bool) {
				assert.Equal(t, int64(1_500_000_000), host.NanoCPUs)
				assert.Equal(t, int64(256<<20), host.Memory)
				assert.Equal(t, int64(256<<20), host.MemorySwap)
				assert.Equal(t, int64(100), *host.PidsLimit)
				assert.Equal(t, 30, *cfg.StopTimeout)
			},
		},
		{
			name: "interactive",
			spec: runtime.ContainerSpec{Image: "i", TTY: true, OpenStdin: true},
			check: func(t *testing.T, cfg *container.Config, _ *container.HostConfig, _ bool) {
				assert.True(t, cfg.Tty)
				assert.True(t, cfg.OpenStdin)
				assert.True(t, cfg.StdinOnce)
			},
		},
		{
			name: "policy",
			spec: runtime.ContainerSpec{Image: "i"},
			check: func(t *testing.T, _ *container.Config, host *container.HostConfig, _ bool) {
				assert.True(t, *host.Init)
				assert.False(t, host.Privileged)
				assert.Equal(t, []string{"no-new-privileges"}, host.SecurityOpt)
				assert.Equal(t, container.RestartPolicyDisabled, host.RestartPolicy.Name)
				assert.Equal(t, "json-file", host.LogConfig.Type)
				assert.Empty(t, host.Binds)
				assert.Nil(t, host.PidsLimit)
				assert.Zero(t, host.MemorySwap)
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, host, netCfg := containerConfig(tt.spec)
			tt.check(t, cfg, host, netCfg != nil)
		})
	}
}

func TestCeilSeconds(t *testing.T) {
	for _, tt := range []struct {
		in   time.Duration
		want int
	}{{time.Millisecond, 1}, {time.Second, 1}, {1500 * time.Millisecond, 2}, {10 * time.Second, 10}} {
		assert.Equal(t, tt.want, ceilSeconds(tt.in), tt.in.String())
	}
}

func TestHostAddr(t *testing.T) {
	asked := nat.PortMap{"8080/tcp": {{HostIP: "127.0.0.1"}}}
	assert.Equal(t, "127.0.0.1:32768", hostAddr(asked, nat.PortMap{"8080/tcp": {{HostIP: "127.0.0.1", HostPort: "32768"}}}))
	assert.Equal(t, "", hostAddr(asked, nat.PortMap{}))
	assert.Equal(t, "", hostAddr(nil, nat.PortMap{"8080/tcp": {{HostIP: "127.0.0.1", HostPort: "1"}}}))
}

func TestPlatformChecks(t *testing.T) {
	amd := platform{OS: "linux", Arch: "amd64"}
	arm := platform{OS: "linux", Arch: "arm64"}
	img := func(arch string) image.InspectResponse { return image.InspectResponse{Os: "linux", Architecture: arch} }

	tests := []struct {
		name    string
		img     image.InspectResponse
		want    platform
		host    platform
		wantErr string
	}{
		{"native", img("amd64"), platform{}, amd, ""},
		{"requested native", img("amd64"), amd, amd, ""},
		{"foreign image", img("arm64"), platform{}, amd, "install qemu-user-static / binfmt"},
		{"requested other than the image", img("amd64"), arm, amd, "not the requested linux/arm64"},
		{"no metadata", image.InspectResponse{}, arm, amd, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.name == "foreign image" && canEmulate("arm64") {
				t.Skip("this host emulates arm64")
			}
			err := checkPlatform("ref", tt.img, tt.want, tt.host)
			if tt.wantErr == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, runtime.ErrPlatform)
			assert.Contains(t, err.Error(), tt.wantErr)
		})
	}

	for _, tt := range []struct {
		in   string
		want platform
		ok   bool
	}{
		{"linux/arm64", arm, true},
		{"linux/x86_64", amd, true},
		{"linux/arm/v7", platform{"linux", "arm", "v7"}, true},
		{"arm64", platform{}, false},
		{"linux/", platform{}, false},
		{"a/b/c/d", platform{}, false},
	} {
		got, err := parsePlatform(tt.in)
		if !tt.ok {
			assert.ErrorIs(t, err, runtime.ErrPlatform, tt.in)
			continue
		}
		require.NoError(t, err, tt.in)
		assert.Equal(t, tt.want, got)
	}
}

func TestWriteContext(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{
		"Dockerfile":        "FROM scratch",
		".dockerignore":     "*.log\nbuild\n# comment\n!keep.log\ndocs/*.md\n",
		"main.go":           "package main",
		"app.log":           "x",
		"build/out":         "x",
		"docs/a.md":         "x",
		"docs/img.png":      "x",
		".git/config":       "x",
		"vendor/lib/lib.go": "x",
	}
	for name, body := range files {
		p := filepath.Join(dir, name)
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, []byte(body), 0o644))
	}
	require.NoError(t, os.Symlink("main.go", filepath.Join(dir, "link.go")))

	ignore, err := readDockerignore(dir)
	require.NoError(t, err)
	var buf bytes.Buffer
	require.NoError(t, writeContext(&buf, dir, "Dockerfile", ignore))

	var names []string
	tr := tar.NewReader(&buf)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err)
		names = append(names, hdr.Name)
		if hdr.Name == "link.go" {
			assert.Equal(t, byte(tar.TypeSymlink), hdr.Typeflag)
			assert.Equal(t, "main.go", hdr.Linkname)
		}
		assert.Zero(t, hdr.Uid)
	}
	sort.Strings(names)
	assert.Equal(t, []string{
		".dockerignore", "Dockerfile", "docs/", "docs/img.png", "link.go", "main.go",
		"vendor/", "vendor/lib/", "vendor/lib/lib.go",
	}, names)
	assert.False(t, strings.Contains(strings.Join(names, " "), ".git"))
}

func TestDecodeBuild(t *testing.T) {
	stream := `{"stream":"Step 1/2 : FROM scratch\n"}
{"stream":" ---\u003e Running\n"}
{"aux":{"ID":"sha256:abc"}}
{"stream":"Successfully built abc\n"}
`
	var progress strings.Builder
	id, err := decodeBuild(strings.NewReader(stream), &progress)
	require.NoError(t, err)
	assert.Equal(t, "sha256:abc", id)
	assert.Equal(t, "Step 1/2 : FROM scratch\n ---> Running\nSuccessfully built abc\n", progress.String())

	_, err = decodeBuild(strings.NewReader(`{"stream":"Step 1/1\n"}
{"errorDetail":{"message":"COPY failed: no such file"},"error":"COPY failed: no such file"}
`), io.Discard)
	require.EqualError(t, err, "COPY failed: no such file")
}
