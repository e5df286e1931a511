package docker_test

import (
	"io"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berth-dev/berth/internal/runtime"
)

// readAll reads a stream's stdout and stderr concurrently, as Stream asks.
func readAll(t *testing.T, s runtime.Stream) (stdout, stderr string) {
	t.Helper()
	errc := make(chan string, 1)
	go func() {
		b, _ := io.ReadAll(s.Stderr())
		errc <- string(b)
	}()
	out, err := io.ReadAll(s.Stdout())
	require.NoError(t, err)
	select {
	case stderr = <-errc:
	case <-time.After(30 * time.Second):
		t.Fatal("stderr did not end")
	}
	return string(out), stderr
}

func TestAttach(t *testing.T) {
	t.Parallel()
	e := newEngine(t)
	appName := app(t)

	tests := []struct {
		name     string
		tty      bool
		command  []string
		input    string
		wantOut  []string
		wantErr  string
		wantCode int
	}{
		{
			name:    "stdin to stdout, no tty",
			command: []string{"/testapp", "cat"},
			input:   "hello\nworld\n",
			wantOut: []string{"hello\nworld\n"},
		},
		{
			name:     "stderr is separate without a tty",
			command:  []string{"/testapp", "env", "NOPE"},
			wantErr:  "NOPE is not set\n",
			wantCode: 1,
		},
		{
			// With a TTY, input is echoed and ^D ends it; output is raw.
			name:    "tty",
			tty:     true,
			command: []string{"/testapp", "cat"},
			input:   "hello\n\x04",
			wantOut: []string{"hello\r\n"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := create(t, e, appName, runtime.ContainerSpec{Command: tt.command, TTY: tt.tty, OpenStdin: true})
			s, err := e.Attach(ctx(t), c.ID)
			require.NoError(t, err)
			defer s.Close()
			_, err = e.Start(ctx(t), c.ID)
			require.NoError(t, err)
			if tt.tty {
				require.NoError(t, e.Resize(ctx(t), c.ID, 40, 120))
			}
			if tt.input != "" {
				_, err = io.WriteString(s.Stdin(), tt.input)
				require.NoError(t, err)
			}
			if !tt.tty {
				// With a TTY, closing stdin would detach; ^D ends the input.
				require.NoError(t, s.Stdin().Close())
			}

			out, errOut := readAll(t, s)
			for _, want := range tt.wantOut {
				assert.Contains(t, out, want)
			}
			if tt.wantOut == nil {
				assert.Empty(t, out)
			}
			assert.Equal(t, tt.wantErr, errOut)
			code, err := e.Wait(ctx(t), c.ID)
			require.NoError(t, err)
			assert.Equal(t, tt.wantCode, code)
		})
	}
}

func TestExec(t *testing.T) {
	t.Parallel()
	e := newEngine(t)
	c := create(t, e, app(t), runtime.ContainerSpec{Port: 8080, Env: map[string]string{"SECRET": "s3"}})
	start(t, e, c.ID)

	tests := []struct {
		name     string
		cmd      []string
		tty      bool
		input    string
		wantOut  string
		wantErr  string
		wantCode int
	}{
		{"output", []string{"/testapp", "echo", "hi", "there"}, false, "", "hi there\n", "", 0},
		{"container env", []string{"/testapp", "env", "SECRET"}, false, "", "s3\n", "", 0},
		{"exit code", []string{"/testapp", "exit", "7"}, false, "", "", "", 7},
		{"stderr", []string{"/testapp", "env", "NOPE"}, false, "", "", "NOPE is not set\n", 1},
		{"stdin", []string{"/testapp", "cat"}, false, "piped\n", "piped\n", "", 0},
		{"tty", []string{"/testapp", "cat"}, true, "typed\n\x04", "typed\r\ntyped\r\n", "", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, err := e.Exec(ctx(t), c.ID, tt.cmd, tt.tty)
			require.NoError(t, err)
			defer s.Close()
			if tt.tty {
				require.NoError(t, s.Resize(ctx(t), 24, 80))
			}
			if tt.input != "" {
				_, err := io.WriteString(s.Stdin(), tt.input)
				require.NoError(t, err)
			}
			if !tt.tty {
				require.NoError(t, s.Stdin().Close())
			}
			out, errOut := readAll(t, s)
			if tt.tty {
				// The terminal echoes the input, then cat writes it.
				assert.Contains(t, out, "typed\r\n")
			} else {
				assert.Equal(t, tt.wantOut, out)
			}
			assert.Equal(t, tt.wantErr, errOut)
			code, err := s.Wait(ctx(t))
			require.NoError(t, err)
			assert.Equal(t, tt.wantCode, code)
		})
	}

	t.Run("command not found", func(t *testing.T) {
		t.Parallel()
		s, err := e.Exec(ctx(t), c.ID, []string{"/no/such/binary"}, false)
		if err != nil {
			return // some engines refuse at create time
		}
		defer s.Close()
		require.NoError(t, s.Stdin().Close())
		out, errOut := readAll(t, s)
		t.Logf("stdout %q stderr %q", out, errOut)
		code, err := s.Wait(ctx(t))
		require.NoError(t, err)
		assert.NotEqual(t, 0, code)
	})

	t.Run("wait without reading", func(t *testing.T) {
		t.Parallel()
		s, err := e.Exec(ctx(t), c.ID, []string{"/testapp", "sleep", "300ms"}, false)
		require.NoError(t, err)
		defer s.Close()
		code, err := s.Wait(ctx(t))
		require.NoError(t, err)
		assert.Equal(t, 0, code)
	})
}
