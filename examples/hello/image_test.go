package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"

	"github.com/berth-dev/berth/internal/runtime"
	"github.com/berth-dev/berth/internal/runtime/docker"
	"github.com/berth-dev/berth/internal/testutil"
)

// TestImage builds the example the way its Dockerfile says (static binary,
// FROM scratch) and runs it: page, health, release step, graceful stop.
func TestImage(t *testing.T) {
	testutil.RequireDocker(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	dir := t.TempDir()
	build := exec.Command("go", "build", "-trimpath", "-o", filepath.Join(dir, "hello"), ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux")
	out, err := build.CombinedOutput()
	require.NoError(t, err, "%s", out)
	for _, name := range []string{"Dockerfile", ".dockerignore"} {
		data, err := os.ReadFile(name)
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), data, 0o644))
	}
	tag := testutil.UniqueName(t, "hello") + ":test"
	testutil.BuildImage(t, tag, dir)

	e, err := docker.New(nil)
	require.NoError(t, err)
	defer e.Close()
	appName := testutil.UniqueName(t, "hello")
	run := func(port int, main runtime.ContainerSpec) runtime.Pod {
		main.Name, main.Image = "web", tag
		p, err := e.CreatePod(ctx, runtime.PodSpec{
			Name:   testutil.UniqueName(t, "hello"),
			Labels: map[string]string{runtime.LabelApp: appName, "berth.test": "1"},
			Port:   port,
			Main:   main,
		})
		require.NoError(t, err)
		t.Cleanup(func() { _ = e.RemovePod(context.Background(), p.ID) })
		p, err = e.StartPod(ctx, p.ID, runtime.StartOptions{})
		require.NoError(t, err)
		return p
	}

	t.Run("release step", func(t *testing.T) {
		p := run(0, runtime.ContainerSpec{Command: []string{"/hello", "migrate"}, Env: map[string]string{"VERSION": "v9"}})
		code, err := e.WaitPod(ctx, p.ID)
		require.NoError(t, err)
		assert.Equal(t, 0, code)
		var lines []string
		require.NoError(t, e.Logs(ctx, p.ID, "", runtime.LogOptions{}, func(l runtime.LogLine) { lines = append(lines, l.Text) }))
		assert.Contains(t, lines, "hello v9: would migrate: create table greetings (id, message)")
	})

	t.Run("serves and stops gracefully", func(t *testing.T) {
		p := run(8080, runtime.ContainerSpec{Env: map[string]string{"VERSION": "v9", "APP_MESSAGE": "Ahoy"}})
		require.NotEmpty(t, p.Addr)
		assert.Equal(t, "ok\n", testutil.WaitHTTP(t, "http://"+p.Addr+"/healthz", 30*time.Second))
		assert.Equal(t, "Ahoy (version v9)\n", testutil.WaitHTTP(t, "http://"+p.Addr+"/", 5*time.Second))

		require.NoError(t, e.StopPod(ctx, p.ID, 10*time.Second))
		code, err := e.WaitPod(ctx, p.ID)
		require.NoError(t, err)
		assert.Equal(t, 0, code)
		var logs strings.Builder
		require.NoError(t, e.Logs(ctx, p.ID, "", runtime.LogOptions{}, func(l runtime.LogLine) { logs.WriteString(l.Text + "\n") }))
		assert.Contains(t, logs.String(), "shutting down")
	})
}

// TestSpecFile keeps berth.yaml saying what the README promises.
func TestSpecFile(t *testing.T) {
	data, err := os.ReadFile("berth.yaml")
	require.NoError(t, err)
	var spec struct {
		App      string `yaml:"app"`
		Services map[string]struct {
			Build     string                `yaml:"build"`
			Port      int                   `yaml:"port"`
			Health    struct{ Path string } `yaml:"health"`
			Release   []string              `yaml:"release"`
			Instances int                   `yaml:"instances"`
		} `yaml:"services"`
	}
	require.NoError(t, yaml.Unmarshal(data, &spec))
	assert.Equal(t, "hello", spec.App)
	web := spec.Services["web"]
	assert.Equal(t, ".", web.Build)
	assert.Equal(t, 8080, web.Port)
	assert.Equal(t, "/healthz", web.Health.Path)
	assert.Equal(t, []string{"/hello", "migrate"}, web.Release)
	assert.Equal(t, 2, web.Instances)
}
