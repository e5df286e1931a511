package attach

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
)

// Protocol is the Upgrade token of a session.
const Protocol = "berth-attach"

// MaxPayload bounds one frame's payload; larger writes are split.
const MaxPayload = 1 << 20

// Type is what a frame carries.
type Type byte

// Frame types.
const (
	// Stdin is input for the process (client to daemon).
	Stdin Type = 1
	// Stdout and Stderr are the process's output (daemon to client); with a
	// TTY everything is Stdout.
	Stdout Type = 2
	Stderr Type = 3
	// Resize is a new window size (client to daemon): height then width, two
	// big-endian uint16.
	Resize Type = 4
	// CloseStdin ends the input (client to daemon): the process sees EOF.
	CloseStdin Type = 5
	// Exit is the last frame of a session that ran (daemon to client): the
	// exit code as a big-endian int32, then an optional UTF-8 note ("timed
	// out after 5s").
	Exit Type = 6
	// Error is the last frame of a session that could not run (daemon to
	// client): a one-line UTF-8 reason.
	Error Type = 7
	// Started is the first frame (daemon to client): the ID of the task or
	// of the instance the command runs in.
	Started Type = 8
)

func (t Type) String() string {
	switch t {
	case Stdin:
		return "stdin"
	case Stdout:
		return "stdout"
	case Stderr:
		return "stderr"
	case Resize:
		return "resize"
	case CloseStdin:
		return "close-stdin"
	case Exit:
		return "exit"
	case Error:
		return "error"
	case Started:
		return "started"
	}
	return fmt.Sprintf("type(%d)", byte(t))
}

// ErrFrameTooLarge is a frame whose length exceeds MaxPayload.
var ErrFrameTooLarge = errors.New("attach: frame too large")

// ErrBadFrame is a frame whose payload does not fit its type.
var ErrBadFrame = errors.New("attach: malformed frame")

// Frame is one message of a session.
type Frame struct {
	Type    Type
	Payload []byte
}

const headerSize = 5

// WriteFrame writes one frame in a single Write, so concurrent writers
// serialised by the caller never interleave partial frames.
func WriteFrame(w io.Writer, t Type, payload []byte) error {
	if len(payload) > MaxPayload {
		return ErrFrameTooLarge
	}
	b := make([]byte, headerSize+len(payload))
	b[0] = byte(t)
	binary.BigEndian.PutUint32(b[1:], uint32(len(payload)))
	copy(b[headerSize:], payload)
	_, err := w.Write(b)
	return err
}

// ReadFrame reads one frame.
func ReadFrame(r io.Reader) (Frame, error) {
	var hdr [headerSize]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return Frame{}, err
	}
	n := binary.BigEndian.Uint32(hdr[1:])
	if n > MaxPayload {
		return Frame{}, ErrFrameTooLarge
	}
	f := Frame{Type: Type(hdr[0]), Payload: make([]byte, n)}
	if _, err := io.ReadFull(r, f.Payload); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return Frame{}, err
	}
	return f, nil
}

// Size is a terminal window size in character cells.
type Size struct {
	Height, Width uint16
}

// EncodeResize is a Resize payload.
func EncodeResize(s Size) []byte {
	b := make([]byte, 4)
	binary.BigEndian.PutUint16(b, s.Height)
	binary.BigEndian.PutUint16(b[2:], s.Width)
	return b
}

// DecodeResize reads a Resize payload.
func DecodeResize(p []byte) (Size, error) {
	if len(p) != 4 {
		return Size{}, fmt.Errorf("%w: resize payload of %d bytes", ErrBadFrame, len(p))
	}
	return Size{Height: binary.BigEndian.Uint16(p), Width: binary.BigEndian.Uint16(p[2:])}, nil
}

// EncodeExit is an Exit payload.
func EncodeExit(code int, note string) []byte {
	b := make([]byte, 4, 4+len(note))
	binary.BigEndian.PutUint32(b, uint32(int32(code)))
	return append(b, note...)
}

// DecodeExit reads an Exit payload.
func DecodeExit(p []byte) (code int, note string, err error) {
	if len(p) < 4 {
		return 0, "", fmt.Errorf("%w: exit payload of %d bytes", ErrBadFrame, len(p))
	}
	return int(int32(binary.BigEndian.Uint32(p))), string(p[4:]), nil
}

// Conn is one end of a session on an upgraded connection. Write is safe for
// concurrent use; Read is for one reader at a time.
type Conn struct {
	nc net.Conn
	r  io.Reader
	wm sync.Mutex
}

// NewConn wraps an upgraded connection. br, when not nil, is the reader that
// read the HTTP exchange: it may hold the first frames already.
func NewConn(nc net.Conn, br *bufio.Reader) *Conn {
	c := &Conn{nc: nc, r: nc}
	if br != nil {
		c.r = br
	}
	return c
}

// Write sends one frame, splitting payloads larger than MaxPayload.
func (c *Conn) Write(t Type, payload []byte) error {
	c.wm.Lock()
	defer c.wm.Unlock()
	for {
		n := min(len(payload), MaxPayload)
		if err := WriteFrame(c.nc, t, payload[:n]); err != nil {
			return err
		}
		payload = payload[n:]
		if len(payload) == 0 {
			return nil
		}
	}
}

// Read returns the next frame.
func (c *Conn) Read() (Frame, error) { return ReadFrame(c.r) }

// Close closes the connection; a blocked Read returns an error.
func (c *Conn) Close() error { return c.nc.Close() }

// Result is how a session ended, from the client's side.
type Result struct {
	// ID is what the Started frame named (a task ID, an instance ID).
	ID string
	// Code is the process's exit code; Note says why when berth ended it
	// (a timeout, a stop).
	Code int
	Note string
}

// RemoteError is a session the daemon could not run (an Error frame).
type RemoteError struct{ Message string }

func (e *RemoteError) Error() string { return e.Message }

// ErrBroken is a session whose connection ended before its Exit frame.
var ErrBroken = errors.New("the session with the berth daemon ended without an exit code")

// Pump runs the client side of a session until its Exit frame: it copies
// stdin to the daemon (nil: none, the input is closed at once), sends each
// size from resizes (may be nil), and writes the output to stdout and
// stderr. When ctx ends first the connection is closed, which tells the
// daemon the client is gone, and Pump returns the context's cause.
//
// With tty, the end of stdin is not sent as CloseStdin (a terminal ends
// input with ^D, and the engine would take the close as a detach).
func (c *Conn) Pump(ctx context.Context, stdin io.Reader, tty bool, stdout, stderr io.Writer, resizes <-chan Size) (Result, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stopClose := context.AfterFunc(ctx, func() { c.Close() })
	defer stopClose()

	// Writers run beside the reader: a daemon that is busy writing output
	// must never wait for this side to finish writing input.
	if stdin == nil {
		go func() { _ = c.Write(CloseStdin, nil) }()
	} else {
		go func() {
			buf := make([]byte, 32<<10)
			for {
				n, err := stdin.Read(buf)
				if n > 0 {
					if c.Write(Stdin, buf[:n]) != nil {
						return
					}
				}
				if err != nil {
					if !tty {
						_ = c.Write(CloseStdin, nil)
					}
					return
				}
			}
		}()
	}
	if resizes != nil {
		go func() {
			for {
				select {
				case <-ctx.Done():
					return
				case s, ok := <-resizes:
					if !ok {
						return
					}
					if c.Write(Resize, EncodeResize(s)) != nil {
						return
					}
				}
			}
		}()
	}

	var res Result
	for {
		f, err := c.Read()
		if err != nil {
			return res, c.broken(ctx, err)
		}
		switch f.Type {
		case Started:
			res.ID = string(f.Payload)
		case Stdout:
			if _, err := stdout.Write(f.Payload); err != nil {
				return res, fmt.Errorf("write output: %w", err)
			}
		case Stderr:
			if _, err := stderr.Write(f.Payload); err != nil {
				return res, fmt.Errorf("write output: %w", err)
			}
		case Exit:
			code, note, err := DecodeExit(f.Payload)
			if err != nil {
				return res, err
			}
			res.Code, res.Note = code, note
			return res, nil
		case Error:
			return res, &RemoteError{Message: string(f.Payload)}
		default:
			// A newer daemon's frame this client does not know: skip it.
		}
	}
}

func (c *Conn) broken(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return context.Cause(ctx)
	}
	return fmt.Errorf("%w: %v", ErrBroken, err)
}
