package tasks

import (
	"bytes"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/berth-dev/berth/internal/store"
)

func TestLineSplitter(t *testing.T) {
	type line struct{ stream, text string }
	var got []line
	s := &LineSplitter{Emit: func(stream, text string) { got = append(got, line{stream, text}) }}
	s.Write("stdout", []byte("one\r\ntw"))
	s.Write("stderr", []byte("err"))
	s.Write("stdout", []byte("o\n"))
	s.Write("stderr", []byte("or\nlast"))
	long := strings.Repeat("x", maxLine+10)
	s.Write("stdout", []byte(long))
	s.Flush()
	assert.Equal(t, []line{
		{"stdout", "one"}, {"stdout", "two"}, {"stderr", "error"},
		{"stdout", long[:maxLine]},
		{"stdout", long[maxLine:]}, {"stderr", "last"},
	}, got)
}

func TestTailBuffer(t *testing.T) {
	const max = store.MaxTaskOutput
	var b tailBuffer
	b.Write([]byte("head"))
	for range 3 {
		b.Write(bytes.Repeat([]byte("a"), max/2))
	}
	b.Write([]byte("tail"))
	out := b.Bytes()
	assert.Len(t, out, max)
	assert.True(t, bytes.HasSuffix(out, []byte("atail")))

	b.Write(bytes.Repeat([]byte("b"), max+1))
	assert.Equal(t, bytes.Repeat([]byte("b"), max), b.Bytes(), "a write longer than the tail keeps its end")
}

func TestLastLines(t *testing.T) {
	assert.Nil(t, lastLines(nil, 3))
	assert.Equal(t, []string{"b", "c"}, lastLines([]byte("a\r\nb\r\nc\n\n"), 2))
}

func TestQuoteCommand(t *testing.T) {
	tests := []struct {
		argv []string
		want string
	}{
		{[]string{"./server", "migrate"}, "./server migrate"},
		{[]string{"sh", "-c", "echo $HOME; ls"}, `sh -c 'echo $HOME; ls'`},
		{[]string{"echo", "it's", ""}, `echo 'it'\''s' ''`},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, quoteCommand(tt.argv))
	}
}
