package tasks

import (
	"bytes"
	"strings"

	"github.com/berth-dev/berth/internal/store"
)

// tailBuffer keeps the last store.MaxTaskOutput bytes written to it: a
// task's output as the store keeps it, however much the task prints.
type tailBuffer struct {
	b []byte
}

func (t *tailBuffer) Write(p []byte) {
	const max = store.MaxTaskOutput
	if len(p) >= max {
		t.b = append(t.b[:0], p[len(p)-max:]...)
		return
	}
	t.b = append(t.b, p...)
	// Trim only once well past the bound, so a chatty task costs an
	// amortised copy, not one per write.
	if len(t.b) > max+max/2 {
		n := copy(t.b, t.b[len(t.b)-max:])
		t.b = t.b[:n]
	}
}

// Bytes returns a copy of the tail.
func (t *tailBuffer) Bytes() []byte {
	b := t.b
	if len(b) > store.MaxTaskOutput {
		b = b[len(b)-store.MaxTaskOutput:]
	}
	return bytes.Clone(b)
}

// lastLines returns up to n last lines of output.
func lastLines(output []byte, n int) []string {
	s := strings.TrimRight(string(output), "\n")
	if s == "" {
		return nil
	}
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	for i, l := range lines {
		lines[i] = strings.TrimRight(l, "\r")
	}
	return lines
}

// maxLine is the longest line a LineSplitter holds back; a longer one is
// passed on in pieces, so a task printing without newlines cannot grow the
// daemon's memory.
const maxLine = 64 << 10

// LineSplitter turns the output of several streams into lines, each
// stream's own, for Emit. It is not safe for concurrent use; a task's
// output (Hooks.Output) is already serialised.
type LineSplitter struct {
	Emit    func(stream, line string)
	pending map[string][]byte
}

// Write takes the next piece of a stream's output.
func (s *LineSplitter) Write(stream string, p []byte) {
	if s.pending == nil {
		s.pending = map[string][]byte{}
	}
	buf := append(s.pending[stream], p...) // never aliases p: pending owns its array
	for {
		i := bytes.IndexByte(buf, '\n')
		if i < 0 {
			break
		}
		s.Emit(stream, strings.TrimSuffix(string(buf[:i]), "\r"))
		buf = buf[i+1:]
	}
	for len(buf) >= maxLine {
		s.Emit(stream, string(buf[:maxLine]))
		buf = buf[maxLine:]
	}
	if len(buf) == 0 {
		delete(s.pending, stream)
		return
	}
	s.pending[stream] = buf
}

// Flush passes on what is left without a final newline.
func (s *LineSplitter) Flush() {
	for _, stream := range []string{"stdout", "stderr"} {
		if buf := s.pending[stream]; len(buf) > 0 {
			s.Emit(stream, strings.TrimSuffix(string(buf), "\r"))
		}
	}
	s.pending = nil
}
