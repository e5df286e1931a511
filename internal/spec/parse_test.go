package spec

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// goldenName is the file name every test spec is parsed under, so golden
// errors read exactly as a user would see them.
const goldenName = "berth.yaml"

// specFiles lists testdata/DIR/*.yaml.
func specFiles(tb testing.TB, dir string) []string {
	tb.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", dir, "*.yaml"))
	require.NoError(tb, err)
	require.NotEmpty(tb, files)
	return files
}

// golden compares got with the golden file, or rewrites it under -update.
func golden(tb testing.TB, path string, got []byte) {
	tb.Helper()
	if *update {
		require.NoError(tb, os.WriteFile(path, got, 0o644))
		return
	}
	want, err := os.ReadFile(path)
	require.NoError(tb, err, "missing golden file; run go test ./internal/spec/ -update")
	assert.Equal(tb, string(want), string(got))
}

func TestParseValid(t *testing.T) {
	for _, file := range specFiles(t, "valid") {
		name := strings.TrimSuffix(filepath.Base(file), ".yaml")
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(file)
			require.NoError(t, err)
			s, err := Parse(goldenName, data)
			require.NoError(t, err)
			require.NoError(t, s.Validate(), "a parsed spec must validate again")

			got, err := json.MarshalIndent(s, "", "  ")
			require.NoError(t, err)
			golden(t, strings.TrimSuffix(file, ".yaml")+".golden.json", append(got, '\n'))
		})
	}
}

func TestParseInvalid(t *testing.T) {
	files := specFiles(t, "invalid")
	require.GreaterOrEqual(t, len(files), 40)
	for _, file := range files {
		name := strings.TrimSuffix(filepath.Base(file), ".yaml")
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(file)
			require.NoError(t, err)
			s, err := Parse(goldenName, data)
			require.Error(t, err)
			assert.Nil(t, s)

			var perr *Error
			require.ErrorAs(t, err, &perr)
			assert.Equal(t, goldenName, perr.File)
			assert.Positive(t, perr.Line, "every error names a line")
			assert.NotContains(t, err.Error(), "\n")
			golden(t, strings.TrimSuffix(file, ".yaml")+".golden.txt", []byte(err.Error()+"\n"))
		})
	}
}

func TestParseDefaults(t *testing.T) {
	s, err := Parse(goldenName, []byte(`
app: shop
services:
  web:
    build: .
    port: 8080
    sidecars:
      proxy: {build: {context: proxy}}
  auto:
    image: auto:1
    port: 8080
    scale: {}
`))
	require.NoError(t, err)
	assert.Equal(t, goldenName, s.File)

	web := s.Services["web"]
	assert.Equal(t, "web", web.Name)
	assert.Equal(t, Health{Interval: time.Second, Timeout: 2 * time.Second, Healthy: 1, Unhealthy: 3}, web.Health)
	assert.Equal(t, 300*time.Second, web.Timeout)
	assert.Equal(t, 1, web.Instances)
	assert.Equal(t, &Build{Context: ".", Dockerfile: "Dockerfile"}, web.Build)
	assert.True(t, web.Sidecars["proxy"].Essential)
	assert.Equal(t, "proxy", web.Sidecars["proxy"].Name)
	assert.Equal(t, "Dockerfile", web.Sidecars["proxy"].Build.Dockerfile)
	assert.Equal(t, 1, web.DesiredInstances())

	auto := s.Services["auto"]
	assert.Zero(t, auto.Instances, "instances stays unset under scale")
	assert.Equal(t, &Scale{Min: 1, Max: 25, Concurrency: 100}, auto.Scale)
	assert.Equal(t, []string{"web", "auto"}, s.ServiceOrder)
}

func TestParseFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "berth.yaml")
	require.NoError(t, os.WriteFile(path, []byte("app: shop\nservices:\n  web:\n    image: web:1\n    port: 0\n"), 0o644))

	_, err := ParseFile(path)
	var perr *Error
	require.ErrorAs(t, err, &perr)
	assert.Equal(t, path, perr.File, "errors name the path as given")
	assert.Equal(t, 5, perr.Line)
	assert.Equal(t, "services.web.port", perr.Field)

	require.NoError(t, os.WriteFile(path, []byte("app: shop\nservices:\n  web: {image: web:1}\n"), 0o644))
	s, err := ParseFile(path)
	require.NoError(t, err)
	assert.Equal(t, path, s.File)

	_, err = ParseFile(filepath.Join(dir, "missing.yaml"))
	require.ErrorIs(t, err, os.ErrNotExist)
}

func TestErrorUnwrap(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		is   error
	}{
		{"size without unit", "app: a\nservices:\n  w: {image: w:1, memory: \"512\"}\n", ErrSizeNoUnit},
		{"unknown size unit", "app: a\nservices:\n  w: {image: w:1, memory: 5XB}\n", ErrSizeUnit},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(goldenName, []byte(tt.yaml))
			require.ErrorIs(t, err, tt.is)
		})
	}

	_, err := Parse(goldenName, []byte("app: a\nservices:\n  w: {image: w:1}\ntasks:\n  t: {service: w, command: [x], schedule: \"99 * * * *\"}\n"))
	var perr *Error
	require.ErrorAs(t, err, &perr)
	require.Error(t, errors.Unwrap(err), "a cron error keeps its cause")
}

func TestErrorString(t *testing.T) {
	tests := []struct {
		name string
		err  Error
		want string
	}{
		{"full", Error{File: "berth.yaml", Line: 7, Field: "services.web.memory", Msg: "needs a unit, e.g. 512MiB"}, "berth.yaml:7: services.web.memory: needs a unit, e.g. 512MiB"},
		{"no field", Error{File: "berth.yaml", Line: 2, Msg: "unknown key"}, "berth.yaml:2: unknown key"},
		{"no line", Error{File: "berth.yaml", Field: "app", Msg: "bad"}, "berth.yaml: app: bad"},
		{"no file", Error{Line: 3, Field: "app", Msg: "bad"}, "line 3: app: bad"},
		{"nothing but a message", Error{Msg: "bad"}, "bad"},
		{"multi-line message", Error{File: "f", Line: 1, Msg: "a\n  b"}, "f:1: a b"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, tt.err.Error())
		})
	}
}

func TestParseTooLarge(t *testing.T) {
	data := []byte("app: shop\nservices:\n  web: {image: web:1}\n" + strings.Repeat("# padding\n", MaxSize/10))
	_, err := Parse(goldenName, data)
	require.EqualError(t, err, fmt.Sprintf("berth.yaml: the spec is %d bytes; the limit is 1MiB", len(data)))
}

// apprunner: names an existing App Runner service by its ARN; anything
// else is refused at its line, saying what an ARN looks like.
func TestAppRunnerKey(t *testing.T) {
	const arn = "arn:aws:apprunner:eu-west-1:123456789012:service/shop-web/0123456789abcdef0123456789abcdef"
	sp, err := Parse("berth.yaml", []byte("app: shop\nservices:\n  web:\n    image: web:1\n    port: 8080\n    apprunner: "+arn+"\n"))
	require.NoError(t, err)
	assert.Equal(t, arn, sp.Services["web"].AppRunner)

	_, err = Parse("berth.yaml", []byte("app: shop\nservices:\n  web:\n    image: web:1\n    apprunner: shop-web\n"))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "berth.yaml:5: services.web.apprunner: must be an App Runner service ARN")
}
