package awstest

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// SSMAgent is a fake of the SSM agent's side of a Session Manager data
// channel, for ECS exec (moto 5.2.1 has no ExecuteCommand). Its
// ExecuteCommand hook answers ecs:ExecuteCommand on a Proxy with a session
// whose stream URL is the agent's WebSocket endpoint on loopback; on that
// endpoint the agent checks the open_data_channel token, does the
// handshake (session type Standard_Stream), runs the session's command as
// a real process on this machine (split as a POSIX shell would, run
// without a shell), sends its output, feeds it the input, records the
// terminal sizes, and closes the channel when the process ends.
//
// A pipe is not a terminal: the agent plays the part of the terminal's
// line discipline only for ^D (0x04), which ends the process's input, and
// it echoes nothing.
//
// The agent speaks the binary framing with code of its own, not
// ssmexec's, so that a test checks one against the other. It is test code
// only.
type SSMAgent struct {
	// URL is the endpoint, ws://127.0.0.1:PORT.
	URL string

	// DropAcks is how many of the client's input messages the agent
	// leaves unacknowledged the first time it receives them, so that the
	// client must send them again.
	DropAcks int
	// Reorder makes the agent send each pair of output messages in
	// reverse order (sequence numbers kept), as a network may deliver
	// them after a reconnect.
	Reorder bool
	// KMS makes the handshake ask for KMS encryption.
	KMS bool

	t        testing.TB
	mu       sync.Mutex
	sessions map[string]*SSMSession // by token
	order    []*SSMSession
}

// SSMSession is what the agent saw of one session.
type SSMSession struct {
	ID        string
	Cluster   string
	Task      string
	Container string
	Command   string // as ExecuteCommand received it

	token string

	mu         sync.Mutex
	opened     bool
	input      []byte
	sizes      []SSMSize
	duplicates int
	terminated bool
	done       bool
}

// SSMSize is a terminal size a client sent.
type SSMSize struct {
	Cols int `json:"cols"`
	Rows int `json:"rows"`
}

// StartSSMAgent starts an SSMAgent, stopped when the test ends.
func StartSSMAgent(t testing.TB) *SSMAgent {
	t.Helper()
	a := &SSMAgent{t: t, sessions: map[string]*SSMSession{}}
	srv := httptest.NewServer(http.HandlerFunc(a.serve))
	t.Cleanup(srv.Close)
	a.URL = "ws" + strings.TrimPrefix(srv.URL, "http")
	return a
}

// ExecuteCommand is a Proxy hook for "ecs:ExecuteCommand": it opens a
// session for the call's command and answers as ECS does.
func (a *SSMAgent) ExecuteCommand(c *Call) *Response {
	var in struct {
		Cluster, Task, Container, Command string
		Interactive                       bool
	}
	if err := json.Unmarshal(c.Body, &in); err != nil {
		return c.Error(400, "InvalidParameterException", err.Error())
	}
	if !in.Interactive {
		return c.Error(400, "InvalidParameterException", "Interactive is the only mode supported currently.")
	}
	if in.Command == "" || in.Task == "" {
		return c.Error(400, "InvalidParameterException", "command and task are required")
	}
	s := &SSMSession{ID: "ecs-execute-command-" + randHex(8), Cluster: in.Cluster, Task: in.Task,
		Container: in.Container, Command: in.Command, token: randHex(16)}
	a.mu.Lock()
	a.sessions[s.token] = s
	a.order = append(a.order, s)
	a.mu.Unlock()
	h := http.Header{}
	h.Set("Content-Type", "application/x-amz-json-1.1")
	body, _ := json.Marshal(map[string]any{
		"clusterArn": in.Cluster, "containerName": in.Container, "interactive": true, "taskArn": in.Task,
		"containerArn": in.Task + "/" + in.Container,
		"session": map[string]string{
			"sessionId": s.ID, "tokenValue": s.token,
			"streamUrl": a.URL + "/v1/data-channel/" + s.ID + "?role=publish_subscribe",
		},
	})
	return &Response{StatusCode: 200, Header: h, Body: body}
}

// Sessions are the sessions opened so far, in order.
func (a *SSMAgent) Sessions() []*SSMSession {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]*SSMSession(nil), a.order...)
}

// Input is the input the process was given (each message once).
func (s *SSMSession) Input() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return bytes.Clone(s.input)
}

// Sizes are the terminal sizes received, in order.
func (s *SSMSession) Sizes() []SSMSize {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]SSMSize(nil), s.sizes...)
}

// Duplicates counts input messages received again after being handed over.
func (s *SSMSession) Duplicates() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.duplicates
}

// Opened says a client opened the data channel with the session's token.
func (s *SSMSession) Opened() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.opened
}

// Terminated says the client asked to terminate the session (Flag 2).
func (s *SSMSession) Terminated() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.terminated
}

// Done says the session's process ended and its channel was closed.
func (s *SSMSession) Done() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.done
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// agentMsg is one AgentMessage, in the agent's own encoding.
type agentMsg struct {
	typ         string
	seq         int64
	flags       uint64
	id          [16]byte // wire order
	payloadType uint32
	payload     []byte
}

func (m agentMsg) encode() []byte {
	var b bytes.Buffer
	w := func(v any) { _ = binary.Write(&b, binary.BigEndian, v) }
	w(uint32(116))
	b.WriteString(fmt.Sprintf("%-32s", m.typ))
	w(uint32(1))
	w(uint64(time.Now().UnixMilli()))
	w(m.seq)
	w(m.flags)
	b.Write(m.id[:])
	d := sha256.Sum256(m.payload)
	b.Write(d[:])
	w(m.payloadType)
	w(uint32(len(m.payload)))
	b.Write(m.payload)
	return b.Bytes()
}

func decodeAgentMsg(b []byte) (agentMsg, error) {
	if len(b) < 120 || binary.BigEndian.Uint32(b) != 116 {
		return agentMsg{}, errors.New("bad header")
	}
	m := agentMsg{
		typ:         strings.TrimRight(string(b[4:36]), " \x00"),
		seq:         int64(binary.BigEndian.Uint64(b[48:])),
		flags:       binary.BigEndian.Uint64(b[56:]),
		payloadType: binary.BigEndian.Uint32(b[112:]),
		payload:     b[120:],
	}
	copy(m.id[:], b[64:80])
	if n := binary.BigEndian.Uint32(b[116:]); int(n) != len(m.payload) {
		return agentMsg{}, fmt.Errorf("payload length %d, %d bytes", n, len(m.payload))
	}
	if d := sha256.Sum256(m.payload); len(m.payload) > 0 && !bytes.Equal(d[:], b[80:112]) {
		return agentMsg{}, errors.New("payload digest does not match")
	}
	return m, nil
}

// idString prints a wire-order message ID as the UUID it stands for: the
// second 8 bytes are the UUID's first.
func idString(id [16]byte) string {
	h := hex.EncodeToString(append(bytes.Clone(id[8:]), id[:8]...))
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// agentConn is the agent's end of one data channel.
type agentConn struct {
	a   *SSMAgent
	s   *SSMSession
	ws  *websocket.Conn
	ctx context.Context

	wmu     sync.Mutex
	seq     int64
	pending []agentMsg // held back by Reorder

	expected int64
	dropped  int
}

func (a *SSMAgent) serve(w http.ResponseWriter, r *http.Request) {
	ws, err := websocket.Accept(w, r, nil)
	if err != nil {
		return
	}
	defer ws.CloseNow()
	ctx := r.Context()
	typ, b, err := ws.Read(ctx)
	if err != nil || typ != websocket.MessageText {
		return
	}
	var open struct{ MessageSchemaVersion, RequestId, TokenValue, ClientId string }
	_ = json.Unmarshal(b, &open)
	a.mu.Lock()
	s := a.sessions[open.TokenValue]
	a.mu.Unlock()
	if s == nil || open.MessageSchemaVersion != "1.0" || open.RequestId == "" || open.ClientId == "" ||
		!strings.HasSuffix(r.URL.Path, "/"+s.ID) {
		_ = ws.Close(websocket.StatusPolicyViolation, "invalid token")
		return
	}
	s.mu.Lock()
	s.opened = true
	s.mu.Unlock()
	c := &agentConn{a: a, s: s, ws: ws, ctx: ctx}
	c.run()
}

func (c *agentConn) send(payloadType uint32, payload []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	var id [16]byte
	_, _ = rand.Read(id[:])
	m := agentMsg{typ: "output_stream_data", seq: c.seq, id: id, payloadType: payloadType, payload: payload}
	c.seq++
	write := func(m agentMsg) error { return c.ws.Write(c.ctx, websocket.MessageBinary, m.encode()) }
	if c.a.Reorder && payloadType == 1 {
		if len(c.pending) == 0 {
			c.pending = []agentMsg{m}
			return nil
		}
		first := c.pending[0]
		c.pending = nil
		if err := write(m); err != nil {
			return err
		}
		return write(first)
	}
	return write(m)
}

// flushPending sends a message Reorder held back, unpaired.
func (c *agentConn) flushPending() {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	for _, p := range c.pending {
		_ = c.ws.Write(c.ctx, websocket.MessageBinary, p.encode())
	}
	c.pending = nil
}

func (c *agentConn) ack(m agentMsg) error {
	p, _ := json.Marshal(map[string]any{"AcknowledgedMessageType": m.typ, "AcknowledgedMessageId": idString(m.id),
		"AcknowledgedMessageSequenceNumber": m.seq, "IsSequentialMessage": true})
	var id [16]byte
	_, _ = rand.Read(id[:])
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.ws.Write(c.ctx, websocket.MessageBinary, agentMsg{typ: "acknowledge", flags: 3, id: id, payload: p}.encode())
}

func (c *agentConn) run() {
	t := c.a.t
	actions := []map[string]any{{"ActionType": "SessionType", "ActionParameters": map[string]any{"SessionType": "Standard_Stream", "Properties": nil}}}
	if c.a.KMS {
		actions = append(actions, map[string]any{"ActionType": "KMSEncryption", "ActionParameters": map[string]string{"KMSKeyId": "alias/test"}})
	}
	req, _ := json.Marshal(map[string]any{"AgentVersion": "3.3.0.0", "RequestedClientActions": actions})
	if c.send(5, req) != nil {
		return
	}
	// Messages from the client, in sequence order, handed to the session.
	in := make(chan agentMsg, 64)
	readErr := make(chan error, 1)
	go func() {
		defer close(in)
		readErr <- c.readLoop(in)
	}()

	var resp agentMsg
	select {
	case m, ok := <-in:
		if !ok {
			return
		}
		resp = m
	case <-time.After(10 * time.Second):
		t.Errorf("ssm agent: no handshake response")
		return
	}
	var hr struct {
		ClientVersion          string
		ProcessedClientActions []struct {
			ActionType   string
			ActionStatus int
		}
		Errors []string
	}
	if resp.payloadType != 6 || json.Unmarshal(resp.payload, &hr) != nil || len(hr.ProcessedClientActions) != len(actions) {
		t.Errorf("ssm agent: bad handshake response: type %d %s", resp.payloadType, resp.payload)
		return
	}
	for _, pa := range hr.ProcessedClientActions {
		if pa.ActionStatus != 1 {
			_ = c.ws.Close(websocket.StatusNormalClosure, "handshake failed")
			return
		}
	}
	complete, _ := json.Marshal(map[string]any{"HandshakeTimeToComplete": 1000000, "CustomerMessage": ""})
	if c.send(7, complete) != nil {
		return
	}

	argv, err := splitWords(c.s.Command)
	if err != nil || len(argv) == 0 {
		c.closeChannel(fmt.Sprintf("cannot parse the command %q", c.s.Command))
		return
	}
	cmd := exec.CommandContext(c.ctx, argv[0], argv[1:]...)
	ownGroup(cmd)
	cmd.Cancel = func() error { killGroup(cmd); return nil }
	cmd.WaitDelay = time.Second
	stdin, _ := cmd.StdinPipe()
	outR, outW := io.Pipe()
	cmd.Stdout, cmd.Stderr = outW, outW
	if err := cmd.Start(); err != nil {
		c.closeChannel(fmt.Sprintf("Unable to start command: %v", err))
		return
	}
	waited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		outW.Close()
		close(waited)
	}()
	outDone := make(chan struct{})
	go func() {
		defer close(outDone)
		buf := make([]byte, 1024)
		for {
			n, err := outR.Read(buf)
			if n > 0 && c.send(1, bytes.Clone(buf[:n])) != nil {
				return
			}
			if err != nil {
				c.flushPending()
				return
			}
		}
	}()
	go func() {
		for m := range in {
			switch m.payloadType {
			case 1:
				data := m.payload
				if i := bytes.IndexByte(data, 4); i >= 0 {
					_, _ = stdin.Write(data[:i])
					_ = stdin.Close()
					continue
				}
				_, _ = stdin.Write(data)
			case 3:
				var sz SSMSize
				_ = json.Unmarshal(m.payload, &sz)
				c.s.mu.Lock()
				c.s.sizes = append(c.s.sizes, sz)
				c.s.mu.Unlock()
			case 10:
				if len(m.payload) == 4 && binary.BigEndian.Uint32(m.payload) == 2 {
					c.s.mu.Lock()
					c.s.terminated = true
					c.s.mu.Unlock()
					killGroup(cmd)
				}
			}
		}
		// The client went away: end the command, as the agent does.
		killGroup(cmd)
	}()
	<-waited
	<-outDone
	c.closeChannel("")
}

// readLoop reads the client's messages: acknowledges input (but the
// first DropAcks), drops duplicates, and hands input over in order.
func (c *agentConn) readLoop(in chan<- agentMsg) error {
	early := map[int64]agentMsg{}
	for {
		typ, b, err := c.ws.Read(c.ctx)
		if err != nil {
			return err
		}
		if typ != websocket.MessageBinary {
			continue
		}
		m, err := decodeAgentMsg(b)
		if err != nil {
			c.a.t.Errorf("ssm agent: bad message from the client: %v", err)
			return err
		}
		switch m.typ {
		case "acknowledge":
			continue
		case "input_stream_data":
		default:
			c.a.t.Errorf("ssm agent: unexpected message type %q", m.typ)
			continue
		}
		if m.seq >= c.expected && c.dropped < c.a.DropAcks {
			if _, seen := early[m.seq]; !seen {
				c.dropped++
				early[m.seq] = agentMsg{} // remembered as seen, not kept
				continue
			}
		}
		if err := c.ack(m); err != nil {
			return err
		}
		if m.seq < c.expected {
			c.s.mu.Lock()
			c.s.duplicates++
			c.s.mu.Unlock()
			continue
		}
		early[m.seq] = m
		for {
			next, ok := early[c.expected]
			if !ok || next.typ == "" {
				break
			}
			delete(early, c.expected)
			c.expected++
			if next.payloadType == 1 {
				c.s.mu.Lock()
				c.s.input = append(c.s.input, next.payload...)
				c.s.mu.Unlock()
			}
			in <- next
		}
	}
}

func (c *agentConn) closeChannel(output string) {
	p, _ := json.Marshal(map[string]any{"MessageId": randHex(16), "CreatedDate": time.Now().UTC().Format(time.RFC3339),
		"DestinationId": c.s.Task, "SessionId": c.s.ID, "MessageType": "channel_closed", "SchemaVersion": 1, "Output": output})
	var id [16]byte
	_, _ = rand.Read(id[:])
	c.wmu.Lock()
	_ = c.ws.Write(c.ctx, websocket.MessageBinary, agentMsg{typ: "channel_closed", id: id, payload: p}.encode())
	c.wmu.Unlock()
	c.s.mu.Lock()
	c.s.done = true
	c.s.mu.Unlock()
	_ = c.ws.Close(websocket.StatusNormalClosure, "")
}

// splitWords splits a command line as a POSIX shell does (quotes and
// backslashes; no expansions).
func splitWords(s string) ([]string, error) {
	var (
		words []string
		cur   strings.Builder
		in    bool // a word has started
	)
	for i := 0; i < len(s); i++ {
		ch := s[i]
		switch {
		case ch == '\'':
			j := strings.IndexByte(s[i+1:], '\'')
			if j < 0 {
				return nil, errors.New("unterminated '")
			}
			cur.WriteString(s[i+1 : i+1+j])
			i += j + 1
			in = true
		case ch == '"':
			i++
			for ; i < len(s) && s[i] != '"'; i++ {
				if s[i] == '\\' && i+1 < len(s) && strings.IndexByte("\"\\$`\n", s[i+1]) >= 0 {
					i++
				}
				cur.WriteByte(s[i])
			}
			if i >= len(s) {
				return nil, errors.New(`unterminated "`)
			}
			in = true
		case ch == '\\' && i+1 < len(s):
			i++
			cur.WriteByte(s[i])
			in = true
		case ch == ' ' || ch == '\t' || ch == '\n':
			if in {
				words = append(words, cur.String())
				cur.Reset()
				in = false
			}
		default:
			cur.WriteByte(ch)
			in = true
		}
	}
	if in {
		words = append(words, cur.String())
	}
	return words, nil
}
