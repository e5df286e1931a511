package ssmexec

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Message types of the data channel.
const (
	TypeInput         = "input_stream_data"
	TypeOutput        = "output_stream_data"
	TypeAcknowledge   = "acknowledge"
	TypeChannelClosed = "channel_closed"
	TypeStartPublish  = "start_publication"
	TypePausePublish  = "pause_publication"
)

// PayloadType says what a stream message's payload is.
type PayloadType uint32

// Payload types of stream messages.
const (
	PayloadOutput            PayloadType = 1 // bytes: the keys typed, or the command's output
	PayloadError             PayloadType = 2
	PayloadSize              PayloadType = 3 // JSON {"cols","rows"}, client to agent
	PayloadParameter         PayloadType = 4
	PayloadHandshakeRequest  PayloadType = 5 // JSON, agent to client
	PayloadHandshakeResponse PayloadType = 6 // JSON, client to agent
	PayloadHandshakeComplete PayloadType = 7 // JSON, agent to client
	PayloadEncChallengeReq   PayloadType = 8
	PayloadEncChallengeResp  PayloadType = 9
	PayloadFlag              PayloadType = 10 // 4-byte big-endian flag, client to agent
	PayloadStdErr            PayloadType = 11
	PayloadExitCode          PayloadType = 12
)

// FlagTerminateSession is the Flag payload asking the agent to end the
// session.
const FlagTerminateSession uint32 = 2

// Frame layout: field offsets in the header. The header length field
// counts the bytes up to the payload length field (116).
const (
	offType        = 4
	typeLen        = 32
	offVersion     = offType + typeLen
	offCreated     = offVersion + 4
	offSeq         = offCreated + 8
	offFlags       = offSeq + 8
	offID          = offFlags + 8
	offDigest      = offID + 16
	offPayloadType = offDigest + 32
	offPayloadLen  = offPayloadType + 4
	headerLen      = offPayloadLen // the value of the header length field
	offPayload     = offPayloadLen + 4
)

// Flags of a stream message: SYN on the first message of a stream, FIN on
// its last. Acknowledgements carry both, as the plugin sends them.
const (
	FlagSYN uint64 = 1
	FlagFIN uint64 = 2
)

// ErrBadMessage is a binary message that is not a valid AgentMessage.
var ErrBadMessage = errors.New("ssm data channel: malformed message")

// UUID is a message ID, in its usual byte order (as printed).
type UUID [16]byte

// NewUUID is a random (version 4) UUID.
func NewUUID() UUID {
	var u UUID
	_, _ = rand.Read(u[:])
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	return u
}

// String is the UUID in its hyphenated form.
func (u UUID) String() string {
	h := hex.EncodeToString(u[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// Message is one AgentMessage of the data channel.
type Message struct {
	Type          string
	SchemaVersion uint32
	Created       time.Time // milliseconds on the wire
	Seq           int64
	Flags         uint64
	ID            UUID
	PayloadType   PayloadType
	Payload       []byte
}

// Marshal encodes m. The message ID goes on the wire as the plugin puts it:
// the UUID's last 8 bytes first, then its first 8.
func (m Message) Marshal() []byte {
	b := make([]byte, offPayload+len(m.Payload))
	binary.BigEndian.PutUint32(b, headerLen)
	t := b[offType : offType+typeLen]
	for i := range t {
		t[i] = ' '
	}
	copy(t, m.Type)
	binary.BigEndian.PutUint32(b[offVersion:], m.SchemaVersion)
	binary.BigEndian.PutUint64(b[offCreated:], uint64(m.Created.UnixMilli()))
	binary.BigEndian.PutUint64(b[offSeq:], uint64(m.Seq))
	binary.BigEndian.PutUint64(b[offFlags:], m.Flags)
	copy(b[offID:], m.ID[8:])
	copy(b[offID+8:], m.ID[:8])
	sum := sha256.Sum256(m.Payload)
	copy(b[offDigest:], sum[:])
	binary.BigEndian.PutUint32(b[offPayloadType:], uint32(m.PayloadType))
	binary.BigEndian.PutUint32(b[offPayloadLen:], uint32(len(m.Payload)))
	copy(b[offPayload:], m.Payload)
	return b
}

// Unmarshal decodes a binary message, checking its lengths and, for a
// message with a payload, its digest.
func Unmarshal(b []byte) (Message, error) {
	if len(b) < offPayload {
		return Message{}, fmt.Errorf("%w: %d bytes, shorter than a header", ErrBadMessage, len(b))
	}
	hl := binary.BigEndian.Uint32(b)
	if hl < offPayloadLen || int(hl)+4 > len(b) {
		return Message{}, fmt.Errorf("%w: header length %d in a message of %d bytes", ErrBadMessage, hl, len(b))
	}
	m := Message{
		Type:          strings.TrimSpace(string(bytes.Trim(b[offType:offType+typeLen], "\x00"))),
		SchemaVersion: binary.BigEndian.Uint32(b[offVersion:]),
		Created:       time.UnixMilli(int64(binary.BigEndian.Uint64(b[offCreated:]))),
		Seq:           int64(binary.BigEndian.Uint64(b[offSeq:])),
		Flags:         binary.BigEndian.Uint64(b[offFlags:]),
		PayloadType:   PayloadType(binary.BigEndian.Uint32(b[offPayloadType:])),
	}
	copy(m.ID[8:], b[offID:offID+8])
	copy(m.ID[:8], b[offID+8:offID+16])
	n := binary.BigEndian.Uint32(b[hl:])
	payload := b[hl+4:]
	if uint64(n) != uint64(len(payload)) {
		return Message{}, fmt.Errorf("%w: payload length %d, %d bytes follow", ErrBadMessage, n, len(payload))
	}
	if n > 0 {
		if sum := sha256.Sum256(payload); !bytes.Equal(sum[:], b[offDigest:offDigest+32]) {
			return Message{}, fmt.Errorf("%w: payload digest does not match", ErrBadMessage)
		}
	}
	m.Payload = append([]byte(nil), payload...)
	return m, nil
}
