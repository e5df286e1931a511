package testutil_test

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/pkg/stdcopy"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berth-dev/berth/internal/testutil"
)

func TestUniqueName(t *testing.T) {
	valid := regexp.MustCompile(`^[a-z0-9]([a-z0-9-]*[a-z0-9])?$`)
	tests := []struct {
		name   string
		prefix string
		start  string
	}{
		{"plain", "web", "bt-web-"},
		{"test name", "TestLogs/tail_and_since", "bt-testlogs-tail-and-since-"},
		{"long", strings.Repeat("abc", 30), "bt-abcabc"},
		{"nothing usable", "///", "bt-"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, b := testutil.UniqueName(t, tt.prefix), testutil.UniqueName(t, tt.prefix)
			assert.NotEqual(t, a, b)
			assert.True(t, strings.HasPrefix(a, tt.start), a)
			assert.LessOrEqual(t, len(a), 40, a)
			assert.Regexp(t, valid, a)
		})
	}
}

func TestFreePort(t *testing.T) {
	port := testutil.FreePort(t)
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	require.NoError(t, err, "the port is free to listen on")
	ln.Close()
}

func TestWaitHTTP(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) < 3 {
			http.Error(w, "starting", http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("ready"))
	}))
	defer srv.Close()
	assert.Equal(t, "ready", testutil.WaitHTTP(t, srv.URL, 10*time.Second))
	assert.GreaterOrEqual(t, calls.Load(), int32(3))
}

func TestImages(t *testing.T) {
	testutil.RequireDocker(t)
	cli := testutil.DockerClient(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	// run runs image with cmd to completion and returns its output.
	run := func(t *testing.T, image string, cmd ...string) (string, int64) {
		t.Helper()
		name := testutil.UniqueName(t, t.Name())
		created, err := cli.ContainerCreate(ctx, &container.Config{Image: image, Cmd: cmd, Labels: map[string]string{"berth.test": "1"}}, nil, nil, nil, name)
		require.NoError(t, err)
		t.Cleanup(func() {
			_ = cli.ContainerRemove(context.Background(), created.ID, container.RemoveOptions{Force: true})
		})
		waitC, errC := cli.ContainerWait(ctx, created.ID, container.WaitConditionNextExit)
		require.NoError(t, cli.ContainerStart(ctx, created.ID, container.StartOptions{}))
		var code int64
		select {
		case res := <-waitC:
			code = res.StatusCode
		case err := <-errC:
			t.Fatal(err)
		}
		rc, err := cli.ContainerLogs(ctx, created.ID, container.LogsOptions{ShowStdout: true, ShowStderr: true})
		require.NoError(t, err)
		defer rc.Close()
		var out bytes.Buffer
		_, err = stdcopy.StdCopy(&out, &out, rc)
		require.NoError(t, err)
		return out.String(), code
	}

	t.Run("testapp", func(t *testing.T) {
		tag := testutil.TestAppImage(t)
		assert.Equal(t, tag, testutil.TestAppImage(t), "built once per process")
		assert.True(t, strings.HasPrefix(tag, testutil.TestAppRepo+":"), tag)
		img, err := cli.ImageInspect(ctx, tag)
		require.NoError(t, err)
		assert.NotEmpty(t, img.Config.Labels[testutil.LabelTestHash])
		assert.Equal(t, []string{"/testapp"}, []string(img.Config.Cmd))

		out, code := run(t, tag, "/testapp", "lines", "2")
		assert.Equal(t, "line 1\nline 2\n", out)
		assert.Equal(t, int64(0), code)
		_, code = run(t, tag, "/testapp", "exit", "4")
		assert.Equal(t, int64(4), code)
	})

	t.Run("busybox", func(t *testing.T) {
		tag := testutil.BusyboxImage(t)
		out, code := run(t, tag, "sh", "-c", "echo $PATH; ls /bin/wget; exit 3")
		assert.Equal(t, "/bin\n/bin/wget\n", out)
		assert.Equal(t, int64(3), code)
	})

	t.Run("build image", func(t *testing.T) {
		dir := t.TempDir()
		busybox := testutil.BusyboxImage(t)
		for name, body := range map[string]string{
			"Dockerfile":    "FROM " + busybox + "\nCOPY . /ctx/\nCMD [\"ls\", \"-A\", \"/ctx\"]\n",
			".dockerignore": "*.tmp\n",
			"kept.txt":      "x",
			"scratch.tmp":   "x",
		} {
			require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644))
		}
		tag := testutil.UniqueName(t, "built") + ":1"
		t.Run("inner", func(t *testing.T) {
			id := testutil.BuildImage(t, tag, dir)
			assert.True(t, strings.HasPrefix(id, "sha256:"), id)
			out, _ := run(t, tag)
			assert.Equal(t, ".dockerignore\nDockerfile\nkept.txt\n", out)
		})
		_, err := cli.ImageInspect(ctx, tag)
		assert.True(t, cerrdefs.IsNotFound(err), "BuildImage removes the image when its test ends: %v", err)
	})
}
