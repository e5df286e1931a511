package controlplane_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/image"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berth-dev/berth/internal/client"
	"github.com/berth-dev/berth/internal/runtime/docker"
	"github.com/berth-dev/berth/internal/testutil"
)

// arm64Context writes a build context holding the test app built for
// linux/arm64 (static, FROM scratch), once per test binary.
var arm64Context = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "berth-arm64-")
	if err != nil {
		return "", err
	}
	cmd := exec.Command("go", "build", "-trimpath", "-buildvcs=false", "-ldflags=-s -w", "-o", filepath.Join(dir, "testapp"),
		"github.com/berth-dev/berth/internal/testutil/testapp")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=arm64")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build testapp for arm64: %w\n%s", err, out)
	}
	df := "FROM scratch\nCOPY testapp /testapp\nENV PORT=8080\nCMD [\"/testapp\"]\n"
	return dir, os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(df), 0o644)
})

// canEmulateArm64 reports whether the kernel runs arm64 binaries through
// qemu binfmt emulation.
func canEmulateArm64() bool {
	data, err := os.ReadFile("/proc/sys/fs/binfmt_misc/qemu-aarch64")
	return err == nil && strings.HasPrefix(string(data), "enabled")
}

func TestArm64Image(t *testing.T) {
	t.Parallel()
	testutil.RequireDocker(t)
	dir, err := arm64Context()
	require.NoError(t, err)
	t.Cleanup(func() { _ = os.RemoveAll(dir) })

	// An arm64 image, built with the platform, as a user would.
	tag := testutil.UniqueName(t, "arm64") + ":1"
	eng, err := docker.New(nil)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	_, err = eng.BuildForPlatform(ctx, dir, "", tag, "linux/arm64", nil, nil)
	require.NoError(t, err)
	t.Cleanup(func() {
		_, _ = testutil.DockerClient(t).ImageRemove(context.Background(), tag, image.RemoveOptions{Force: true})
	})
	info, _, err := testutil.DockerClient(t).ImageInspectWithRaw(ctx, tag)
	require.NoError(t, err)
	require.Equal(t, "arm64", info.Architecture, "the engine built an arm64 image")

	app := testutil.UniqueName(t, "arm")
	leaveNothing(t, app)
	d := startDaemon(t, "")
	d.destroyOnCleanup(app)
	withImage := fmt.Sprintf("app: %s\nservices:\n  web:\n    image: %s\n    port: 8080\n    platform: linux/arm64\n", app, tag)
	withBuild := fmt.Sprintf("app: %s\nservices:\n  web:\n    build: %s\n    port: 8080\n    platform: linux/arm64\n", app, dir)

	if !canEmulateArm64() {
		t.Log("no qemu binfmt emulation for arm64 on this host: checking that the deploy is refused; the run step is skipped")
		_, _, err := d.deploy(withImage)
		var re *client.ResultError
		require.ErrorAs(t, err, &re)
		assert.Equal(t, "platform", re.Result.Code)
		assert.Contains(t, re.Result.Error, "linux/arm64")
		assert.Contains(t, re.Result.Error, "emulation")
		assert.Contains(t, re.Result.Error, "qemu")
		assert.NotContains(t, re.Result.Error, "\n")
		apps, err := d.client.Apps(context.Background())
		require.NoError(t, err)
		assert.Empty(t, apps, "a refused deploy records nothing")

		// Built by berth for the platform: refused when it would start.
		_, _, err = d.deploy(withBuild)
		require.ErrorAs(t, err, &re)
		assert.Equal(t, "platform", re.Result.Code)
		assert.Contains(t, re.Result.Error, "arm64")
		assert.Empty(t, containersOf(t, app), "nothing was left running")
		return
	}
	t.Log("qemu binfmt emulation for arm64 is present: running the arm64 image")
	d.mustDeploy(withImage)
	code, body, err := d.get(app, "web", "/")
	require.NoError(t, err)
	assert.Equal(t, 200, code)
	assert.Equal(t, "hello from v1\n", body)
	d.mustDeploy(withBuild)
}
