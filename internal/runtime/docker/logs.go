package docker

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"

	"github.com/berth-dev/berth/internal/runtime"
)

// containerLogs streams a container's output lines, oldest first, to fn. Without
// Follow it returns when the log ends; with Follow it returns nil when ctx
// ends (or the log ends because the container was removed).
func (e *Engine) containerLogs(ctx context.Context, id string, opts runtime.LogOptions, fn func(runtime.LogLine)) error {
	info, err := e.cli.ContainerInspect(ctx, id)
	if err != nil {
		if cerrdefs.IsNotFound(err) {
			return fmt.Errorf("%w: %s", runtime.ErrNotFound, id)
		}
		return fmt.Errorf("logs of %s: %w", shortID(id), err)
	}
	return e.logs(ctx, info.ID, info.Config != nil && info.Config.Tty, opts, fn)
}

// logs is containerLogs of a container whose TTY setting the caller read.
func (e *Engine) logs(ctx context.Context, id string, tty bool, opts runtime.LogOptions, fn func(runtime.LogLine)) error {
	lo := container.LogsOptions{
		ShowStdout: true,
		ShowStderr: true,
		Timestamps: true,
		Follow:     opts.Follow,
		Tail:       "all",
	}
	if opts.Tail > 0 {
		lo.Tail = strconv.Itoa(opts.Tail)
	}
	if !opts.Since.IsZero() {
		lo.Since = fmt.Sprintf("%d.%09d", opts.Since.Unix(), opts.Since.Nanosecond())
	}
	rc, err := e.cli.ContainerLogs(ctx, id, lo)
	if err != nil {
		if cerrdefs.IsNotFound(err) {
			return fmt.Errorf("%w: %s", runtime.ErrNotFound, id)
		}
		return fmt.Errorf("logs of %s: %w", shortID(id), err)
	}
	defer rc.Close()
	err = readLogs(rc, tty, fn)
	if err != nil && ctx.Err() != nil {
		if opts.Follow {
			return nil
		}
		return ctx.Err()
	}
	if err != nil {
		return fmt.Errorf("logs of %s: %w", shortID(id), err)
	}
	return nil
}

// readLogs splits the engine's log stream into lines. Without a TTY the
// stream is multiplexed: frames of an 8-byte header (stream type, 3 zero
// bytes, big-endian payload length) and a payload. With a TTY it is raw and
// everything is stdout. With timestamps on, every log message (one line, or
// a 16 KiB piece of a longer one) starts with "RFC3339Nano ".
func readLogs(r io.Reader, tty bool, fn func(runtime.LogLine)) error {
	lines := lineSplitter{fn: fn}
	if tty {
		br := bufio.NewReaderSize(r, 64<<10)
		for {
			chunk, err := br.ReadBytes('\n')
			if len(chunk) > 0 {
				lines.message("stdout", chunk)
			}
			if errors.Is(err, io.EOF) {
				lines.flush()
				return nil
			}
			if err != nil {
				return err
			}
		}
	}
	br := bufio.NewReaderSize(r, 32<<10)
	var (
		hdr     [8]byte
		payload []byte
	)
	for {
		if _, err := io.ReadFull(br, hdr[:]); err != nil {
			if errors.Is(err, io.EOF) {
				lines.flush()
				return nil
			}
			return err
		}
		size := binary.BigEndian.Uint32(hdr[4:])
		if cap(payload) < int(size) {
			payload = make([]byte, size)
		}
		payload = payload[:size]
		if _, err := io.ReadFull(br, payload); err != nil {
			return err
		}
		switch hdr[0] {
		case 1:
			lines.message("stdout", payload)
		case 2:
			lines.message("stderr", payload)
		case 3: // the engine's own error, in band
			return fmt.Errorf("engine: %s", bytes.TrimSpace(payload))
		}
	}
}

// lineSplitter joins partial messages of each stream back into lines.
type lineSplitter struct {
	fn      func(runtime.LogLine)
	pending map[string]*pendingLine
}

type pendingLine struct {
	time time.Time
	text []byte
}

// message takes one timestamped log message of a stream.
func (s *lineSplitter) message(stream string, msg []byte) {
	ts, rest := splitTimestamp(msg)
	if s.pending == nil {
		s.pending = make(map[string]*pendingLine)
	}
	p := s.pending[stream]
	if p == nil {
		p = &pendingLine{time: ts}
		s.pending[stream] = p
	}
	for {
		i := bytes.IndexByte(rest, '\n')
		if i < 0 {
			p.text = append(p.text, rest...)
			return
		}
		p.text = append(p.text, rest[:i]...)
		s.emit(stream, p)
		rest = rest[i+1:]
		p.time = ts
		if len(rest) == 0 {
			delete(s.pending, stream)
			return
		}
	}
}

func (s *lineSplitter) emit(stream string, p *pendingLine) {
	text := strings.TrimSuffix(string(p.text), "\r") // TTYs end lines with \r\n
	s.fn(runtime.LogLine{Time: p.time, Stream: stream, Text: text})
	p.text = p.text[:0]
}

// flush emits lines left without a final newline.
func (s *lineSplitter) flush() {
	for _, stream := range []string{"stdout", "stderr"} {
		if p := s.pending[stream]; p != nil && len(p.text) > 0 {
			s.emit(stream, p)
		}
	}
	s.pending = nil
}

// splitTimestamp cuts the engine's "2006-01-02T15:04:05.999999999Z " prefix.
func splitTimestamp(msg []byte) (time.Time, []byte) {
	i := bytes.IndexByte(msg, ' ')
	if i < 0 || i > 40 {
		return time.Time{}, msg
	}
	t, err := time.Parse(time.RFC3339Nano, string(msg[:i]))
	if err != nil {
		return time.Time{}, msg
	}
	return t, msg[i+1:]
}
