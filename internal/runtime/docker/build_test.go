package docker_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/image"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berth-dev/berth/internal/runtime"
	"github.com/berth-dev/berth/internal/testutil"
)

// removeImage deletes tag when the test ends.
func removeImage(tb testing.TB, tag string) {
	tb.Cleanup(func() {
		c, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_, err := testutil.DockerClient(tb).ImageRemove(c, tag, image.RemoveOptions{Force: true, PruneChildren: true})
		if err != nil && !cerrdefs.IsNotFound(err) {
			tb.Logf("cleanup: %v", err)
		}
	})
}

func writeFiles(tb testing.TB, dir string, files map[string]string) {
	tb.Helper()
	for name, body := range files {
		path := filepath.Join(dir, name)
		require.NoError(tb, os.MkdirAll(filepath.Dir(path), 0o755))
		require.NoError(tb, os.WriteFile(path, []byte(body), 0o644))
	}
}

func TestBuild(t *testing.T) {
	t.Parallel()
	e := newEngine(t)
	appName := app(t)
	busybox := testutil.BusyboxImage(t)

	t.Run("context, dockerignore, args, progress", func(t *testing.T) {
		dir := t.TempDir()
		writeFiles(t, dir, map[string]string{
			"Dockerfile": "FROM " + busybox + "\n" +
				"ARG GREETING=unset\n" +
				"ENV GREETING=$GREETING\n" +
				"COPY . /ctx/\n" +
				`CMD ["sh", "-c", "cd /ctx && find . -type f | sort && echo $GREETING"]` + "\n",
			".dockerignore":     "# comment\n*.log\nsecrets\n",
			"app.txt":           "app",
			"debug.log":         "ignored",
			"sub/keep.txt":      "kept",
			"secrets/token":     "ignored",
			".git/HEAD":         "never sent",
			"sub/nested/x.conf": "kept",
		})
		tag := testutil.UniqueName(t, "build") + ":1"
		removeImage(t, tag)

		var progress strings.Builder
		id, err := e.Build(ctx(t), dir, "", tag, "", map[string]string{"GREETING": "bonjour"}, &progress)
		require.NoError(t, err)
		assert.True(t, strings.HasPrefix(id, "sha256:"), id)
		assert.Contains(t, progress.String(), "Step 1/5 : FROM "+busybox)
		t.Logf("progress:\n%s", progress.String())

		got, err := e.ImageID(ctx(t), tag)
		require.NoError(t, err)
		assert.Equal(t, id, got)

		c := create(t, e, appName, runtime.ContainerSpec{Image: tag})
		_, err = e.Start(ctx(t), c.ID)
		require.NoError(t, err)
		code, err := e.Wait(ctx(t), c.ID)
		require.NoError(t, err)
		require.Equal(t, 0, code)
		assert.Equal(t, []string{
			"stdout: ./.dockerignore",
			"stdout: ./Dockerfile",
			"stdout: ./app.txt",
			"stdout: ./sub/keep.txt",
			"stdout: ./sub/nested/x.conf",
			"stdout: bonjour",
		}, logs(t, e, c.ID, runtime.LogOptions{}))
	})

	t.Run("dockerfile elsewhere", func(t *testing.T) {
		dir := t.TempDir()
		writeFiles(t, dir, map[string]string{
			"deploy/web.Dockerfile": "FROM " + busybox + "\nLABEL built=yes\n",
		})
		tag := testutil.UniqueName(t, "build") + ":1"
		removeImage(t, tag)
		_, err := e.Build(ctx(t), dir, "deploy/web.Dockerfile", tag, "", nil, nil)
		require.NoError(t, err)
		img, err := testutil.DockerClient(t).ImageInspect(ctx(t), tag)
		require.NoError(t, err)
		assert.Equal(t, "yes", img.Config.Labels["built"])
	})

	t.Run("errors", func(t *testing.T) {
		tests := []struct {
			name       string
			dockerfile string
			want       string
		}{
			{"missing file", "FROM " + busybox + "\nCOPY nope /nope\n", "nope"},
			{"bad instruction", "FROM " + busybox + "\nFROBNICATE\n", "FROBNICATE"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				dir := t.TempDir()
				writeFiles(t, dir, map[string]string{"Dockerfile": tt.dockerfile})
				tag := testutil.UniqueName(t, "build") + ":1"
				removeImage(t, tag)
				_, err := e.Build(ctx(t), dir, "", tag, "", nil, nil)
				require.Error(t, err)
				assert.Contains(t, strings.ToLower(err.Error()), strings.ToLower(tt.want))
			})
		}
	})

	t.Run("no dockerfile", func(t *testing.T) {
		_, err := e.Build(ctx(t), t.TempDir(), "", testutil.UniqueName(t, "build"), "", nil, nil)
		require.Error(t, err)
	})
}

// TestPlatform builds an arm64 image (the classic builder can, FROM scratch)
// and checks that running it on a host without emulation is refused with
// ErrPlatform and advice, rather than an "exec format error" at run time.
func TestPlatform(t *testing.T) {
	t.Parallel()
	e := newEngine(t)
	host, err := testutil.DockerClient(t).Info(ctx(t))
	require.NoError(t, err)
	foreign, foreignQemu := "linux/arm64", "aarch64"
	if host.Architecture == "aarch64" {
		foreign, foreignQemu = "linux/amd64", "x86_64"
	}

	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"Dockerfile": "FROM scratch\nCOPY f /f\nCMD [\"/f\"]\n", "f": "not a binary"})
	tag := testutil.UniqueName(t, "foreign") + ":1"
	removeImage(t, tag)
	_, err = e.Build(ctx(t), dir, "", tag, foreign, nil, nil)
	require.NoError(t, err)

	if _, err := os.Stat("/proc/sys/fs/binfmt_misc/qemu-" + foreignQemu); err != nil {
		t.Run("foreign image without emulation", func(t *testing.T) {
			_, err := e.Create(ctx(t), runtime.ContainerSpec{Name: testutil.UniqueName(t, "x"), Image: tag})
			require.ErrorIs(t, err, runtime.ErrPlatform)
			assert.Contains(t, err.Error(), foreign)
			assert.Contains(t, err.Error(), "install qemu-user-static / binfmt to enable emulation")
		})
	}
	t.Run("requested platform differs from the image's", func(t *testing.T) {
		_, err := e.Create(ctx(t), runtime.ContainerSpec{
			Name: testutil.UniqueName(t, "x"), Image: testutil.TestAppImage(t), Platform: foreign,
		})
		require.ErrorIs(t, err, runtime.ErrPlatform)
		assert.Contains(t, err.Error(), foreign)
	})
	t.Run("requested platform is the host's", func(t *testing.T) {
		c := create(t, e, app(t), runtime.ContainerSpec{
			Command: []string{"/testapp", "exit", "0"}, Platform: host.OSType + "/" + map[string]string{"x86_64": "amd64", "aarch64": "arm64"}[host.Architecture],
		})
		assert.Equal(t, "created", c.State)
	})
}
