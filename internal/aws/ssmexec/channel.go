package ssmexec

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"
)

// Size is a terminal window size in character cells.
type Size struct {
	Cols, Rows uint16
}

// Session is what ECS ExecuteCommand answers: where the data channel is.
type Session struct {
	ID        string
	StreamURL string
	Token     string
}

// Result is how a session ended.
type Result struct {
	// Code is the command's exit code, 0 when it is not Known.
	Code int
	// Known says the exit code was read back (the wrapper's marker, or an
	// exit code message from the agent).
	Known bool
	// Reason is the agent's closing message, if it gave one.
	Reason string
}

// Stream is one session's input, output and terminal.
type Stream struct {
	// Stdin is sent to the command; nil sends nothing.
	Stdin io.Reader
	// Stdout receives the command's output (stdout and stderr: the agent
	// runs the command on a terminal, which merges them).
	Stdout io.Writer
	// TTY is true when Stdin is the user's terminal (in raw mode). Without
	// it, the end of Stdin is sent as ^D, the end of input on the remote
	// terminal.
	TTY bool
	// Resize carries the local terminal's sizes, the first one included.
	Resize <-chan Size
	// Marker, when set, is the exit code marker's nonce (see wrap): the
	// marker is stripped from the output and read as the exit code.
	Marker string
}

// ClientVersion is the version berth announces to the agent.
const ClientVersion = "berth"

// Resend timing of unacknowledged input: first after resendAfter, then
// with the delay doubled up to resendMax.
var (
	resendAfter = 200 * time.Millisecond
	resendMax   = 2 * time.Second
	resendTick  = 100 * time.Millisecond
)

// ErrEncryption is a session that asks for KMS encryption of its data
// channel, which berth does not speak.
var ErrEncryption = errors.New("the session asks for KMS encryption of its data channel (the cluster's executeCommandConfiguration kmsKeyId), which berth exec does not support: remove kmsKeyId from the cluster's configuration")

// channel is one open data channel.
type channel struct {
	ws     *websocket.Conn
	stream Stream

	sendMu  sync.Mutex // orders numbering and writing of input
	mu      sync.Mutex // guards nextSeq and unacked
	nextSeq int64
	unacked map[int64]*pending

	expected int64 // the agent's next stream message to hand over
	early    map[int64]Message

	ready  chan struct{} // closed at handshake complete
	filter *exitFilter
	exit   *int // from an exit code message
}

type pending struct {
	frame    []byte
	sent     time.Time
	attempts int
}

// Run dials the session's data channel and runs it until the agent closes
// it or ctx ends. On ctx's end it asks the agent to terminate the session.
func Run(ctx context.Context, s Session, st Stream) (Result, error) {
	ws, _, err := websocket.Dial(ctx, s.StreamURL, nil)
	if err != nil {
		return Result{}, fmt.Errorf("open the session's data channel: %w", err)
	}
	ws.SetReadLimit(16 << 20)
	defer ws.CloseNow()
	open, _ := json.Marshal(map[string]string{
		"MessageSchemaVersion": "1.0",
		"RequestId":            NewUUID().String(),
		"TokenValue":           s.Token,
		"ClientId":             NewUUID().String(),
		"ClientVersion":        ClientVersion,
	})
	if err := ws.Write(ctx, websocket.MessageText, open); err != nil {
		return Result{}, fmt.Errorf("open the session's data channel: %w", err)
	}
	if st.Stdout == nil {
		st.Stdout = io.Discard
	}
	c := &channel{ws: ws, stream: st, unacked: map[int64]*pending{}, early: map[int64]Message{}, ready: make(chan struct{})}
	c.filter = &exitFilter{w: st.Stdout}
	if st.Marker != "" {
		c.filter.prefix = []byte(markerPrefix(st.Marker))
	}
	// The socket's reads and writes use a context of their own: a
	// cancelled context closes a coder/websocket connection, and the
	// terminate flag must still go out when ctx ends.
	life, end := context.WithCancel(context.WithoutCancel(ctx))
	defer end()
	go c.resend(life)
	go c.input(life)
	go c.sizes(life)

	type ending struct {
		res Result
		err error
	}
	done := make(chan ending, 1)
	go func() {
		res, err := c.read(life)
		done <- ending{res, err}
	}()
	select {
	case e := <-done:
		_ = ws.Close(websocket.StatusNormalClosure, "")
		return e.res, e.err
	case <-ctx.Done():
		// Best effort: the agent ends the command rather than waiting for
		// a client that has gone.
		flag := binary.BigEndian.AppendUint32(nil, FlagTerminateSession)
		wctx, cancel := context.WithTimeout(life, time.Second)
		_ = c.send(wctx, PayloadFlag, flag)
		cancel()
		return Result{}, context.Cause(ctx)
	}
}

// read handles the agent's messages until channel_closed.
func (c *channel) read(ctx context.Context) (Result, error) {
	for {
		typ, b, err := c.ws.Read(ctx)
		if err != nil {
			if c.filter.found || c.exit != nil {
				// The command ended and said how; the agent closed the
				// socket before (or instead of) channel_closed.
				return c.result(""), c.filter.flush()
			}
			if st := websocket.CloseStatus(err); st != -1 {
				return Result{}, fmt.Errorf("the session's data channel closed (%d) before the command ended", st)
			}
			return Result{}, fmt.Errorf("read the session's data channel: %w", err)
		}
		if typ != websocket.MessageBinary {
			continue
		}
		m, err := Unmarshal(b)
		if err != nil {
			return Result{}, err
		}
		switch m.Type {
		case TypeOutput:
			if err := c.output(ctx, m); err != nil {
				return Result{}, err
			}
		case TypeAcknowledge:
			var a ack
			if err := json.Unmarshal(m.Payload, &a); err != nil {
				return Result{}, fmt.Errorf("%w: acknowledge: %v", ErrBadMessage, err)
			}
			c.mu.Lock()
			delete(c.unacked, a.Seq)
			c.mu.Unlock()
		case TypeChannelClosed:
			var cl struct{ Output string }
			_ = json.Unmarshal(m.Payload, &cl)
			return c.result(strings.TrimSpace(cl.Output)), c.filter.flush()
		}
	}
}

func (c *channel) result(reason string) Result {
	r := Result{Reason: reason}
	switch {
	case c.filter.found:
		r.Code, r.Known = c.filter.code, true
	case c.exit != nil:
		r.Code, r.Known = *c.exit, true
	}
	return r
}

// output acknowledges a stream message and hands it and the ones buffered
// after it over in sequence order.
func (c *channel) output(ctx context.Context, m Message) error {
	if err := c.acknowledge(ctx, m); err != nil {
		return err
	}
	switch {
	case m.Seq < c.expected:
		return nil // a duplicate: its acknowledgement was lost
	case m.Seq > c.expected:
		c.early[m.Seq] = m
		return nil
	}
	for {
		if err := c.handle(ctx, m); err != nil {
			return err
		}
		c.expected++
		next, ok := c.early[c.expected]
		if !ok {
			return nil
		}
		delete(c.early, c.expected)
		m = next
	}
}

type ack struct {
	Type       string `json:"AcknowledgedMessageType"`
	ID         string `json:"AcknowledgedMessageId"`
	Seq        int64  `json:"AcknowledgedMessageSequenceNumber"`
	Sequential bool   `json:"IsSequentialMessage"`
}

func (c *channel) acknowledge(ctx context.Context, m Message) error {
	p, _ := json.Marshal(ack{Type: m.Type, ID: m.ID.String(), Seq: m.Seq, Sequential: true})
	a := Message{Type: TypeAcknowledge, SchemaVersion: 1, Created: time.Now(), Flags: FlagSYN | FlagFIN, ID: NewUUID(), Payload: p}
	return c.ws.Write(ctx, websocket.MessageBinary, a.Marshal())
}

// Handshake payloads.
type handshakeRequest struct {
	AgentVersion           string
	RequestedClientActions []struct {
		ActionType       string
		ActionParameters json.RawMessage
	}
}

type processedAction struct {
	ActionType   string
	ActionStatus int // 1 success, 2 failed, 3 unsupported
	ActionResult any
	Error        string
}

func (c *channel) handle(ctx context.Context, m Message) error {
	switch m.PayloadType {
	case PayloadHandshakeRequest:
		return c.handshake(ctx, m.Payload)
	case PayloadHandshakeComplete:
		select {
		case <-c.ready:
		default:
			close(c.ready)
		}
	case PayloadOutput, PayloadStdErr:
		if _, err := c.filter.Write(m.Payload); err != nil {
			return err
		}
	case PayloadExitCode:
		if code, ok := parseExitCode(m.Payload); ok {
			c.exit = &code
		}
	}
	return nil
}

// parseExitCode reads an exit code message: a 4-byte big-endian integer or
// the code in decimal.
func parseExitCode(p []byte) (int, bool) {
	if len(p) == 4 {
		return int(int32(binary.BigEndian.Uint32(p))), true
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(p)))
	return n, err == nil
}

func (c *channel) handshake(ctx context.Context, payload []byte) error {
	var req handshakeRequest
	if err := json.Unmarshal(payload, &req); err != nil {
		return fmt.Errorf("%w: handshake request: %v", ErrBadMessage, err)
	}
	resp := struct {
		ClientVersion          string
		ProcessedClientActions []processedAction
		Errors                 []string
	}{ClientVersion: ClientVersion, ProcessedClientActions: []processedAction{}}
	var fail error
	for _, a := range req.RequestedClientActions {
		pa := processedAction{ActionType: a.ActionType, ActionStatus: 1}
		switch a.ActionType {
		case "SessionType":
			var st struct{ SessionType string }
			_ = json.Unmarshal(a.ActionParameters, &st)
			switch st.SessionType {
			case "Standard_Stream", "InteractiveCommands", "NonInteractiveCommands":
			default:
				pa.ActionStatus, pa.Error = 2, "unsupported session type "+st.SessionType
				fail = fmt.Errorf("the agent opened a %s session; berth exec speaks only shell sessions", st.SessionType)
			}
		case "KMSEncryption":
			pa.ActionStatus, pa.Error = 2, "berth does not support KMS encryption"
			fail = ErrEncryption
		default:
			pa.ActionStatus, pa.Error = 3, "unsupported action "+a.ActionType
		}
		if pa.Error != "" {
			resp.Errors = append(resp.Errors, pa.Error)
		}
		resp.ProcessedClientActions = append(resp.ProcessedClientActions, pa)
	}
	b, _ := json.Marshal(resp)
	if err := c.send(ctx, PayloadHandshakeResponse, b); err != nil {
		return err
	}
	return fail
}

// inputMessage is the next input_stream_data message, numbered.
func (c *channel) inputMessage(pt PayloadType, payload []byte) []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	m := Message{Type: TypeInput, SchemaVersion: 1, Created: time.Now(), Seq: c.nextSeq, ID: NewUUID(), PayloadType: pt, Payload: payload}
	f := m.Marshal()
	c.unacked[m.Seq] = &pending{frame: f, sent: time.Now()}
	c.nextSeq++
	return f
}

// send sends an input message and keeps it until the agent acknowledges
// it. Messages are numbered and written under one lock so that they leave
// in sequence order.
func (c *channel) send(ctx context.Context, pt PayloadType, payload []byte) error {
	c.sendMu.Lock()
	defer c.sendMu.Unlock()
	return c.ws.Write(ctx, websocket.MessageBinary, c.inputMessage(pt, payload))
}

// resend sends again the input the agent has not acknowledged in time.
func (c *channel) resend(ctx context.Context) {
	t := time.NewTicker(resendTick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		c.mu.Lock()
		var due [][]byte
		now := time.Now()
		for _, p := range c.unacked {
			wait := min(resendAfter<<p.attempts, resendMax)
			if now.Sub(p.sent) >= wait {
				p.sent, p.attempts = now, p.attempts+1
				due = append(due, p.frame)
			}
		}
		c.mu.Unlock()
		for _, f := range due {
			if c.ws.Write(ctx, websocket.MessageBinary, f) != nil {
				return
			}
		}
	}
}

// StdinChunk bounds one input message, as the plugin's.
const StdinChunk = 1024

// input sends Stdin once the handshake is complete; at its end without a
// TTY, ^D (twice after a partial line) so that the command reads EOF.
func (c *channel) input(ctx context.Context) {
	if c.stream.Stdin == nil {
		return
	}
	select {
	case <-ctx.Done():
		return
	case <-c.ready:
	}
	buf := make([]byte, StdinChunk)
	last := byte('\n')
	for {
		n, err := c.stream.Stdin.Read(buf)
		if n > 0 {
			last = buf[n-1]
			if c.send(ctx, PayloadOutput, bytes.Clone(buf[:n])) != nil {
				return
			}
		}
		if err != nil {
			if c.stream.TTY || ctx.Err() != nil {
				return
			}
			eof := []byte{4}
			if last != '\n' {
				eof = []byte{4, 4}
			}
			_ = c.send(ctx, PayloadOutput, eof)
			return
		}
	}
}

// sizes sends the terminal's sizes once the handshake is complete.
func (c *channel) sizes(ctx context.Context) {
	if c.stream.Resize == nil {
		return
	}
	select {
	case <-ctx.Done():
		return
	case <-c.ready:
	}
	for {
		select {
		case <-ctx.Done():
			return
		case s, ok := <-c.stream.Resize:
			if !ok {
				return
			}
			b, _ := json.Marshal(map[string]uint16{"cols": s.Cols, "rows": s.Rows})
			if c.send(ctx, PayloadSize, b) != nil {
				return
			}
		}
	}
}
