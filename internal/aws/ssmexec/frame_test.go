package ssmexec

import (
	"bytes"
	"encoding/hex"
	"strings"
	"testing"
	"time"
)

// TestMarshalLayout checks a frame byte by byte against the layout the
// session-manager-plugin documents and writes (src/message/clientmessage.go
// and messageparser.go): big-endian integers, the type padded with spaces
// to 32 bytes, the UUID's halves swapped, SHA-256 of the payload.
func TestMarshalLayout(t *testing.T) {
	id := UUID{0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff}
	m := Message{Type: TypeInput, SchemaVersion: 1, Created: time.UnixMilli(0x0102030405), Seq: 9, Flags: 0,
		ID: id, PayloadType: PayloadOutput, Payload: []byte("hi")}
	want := "00000074" + // header length 116
		hex.EncodeToString([]byte("input_stream_data"+strings.Repeat(" ", 15))) +
		"00000001" + // schema version
		"0000000102030405" + // created, ms
		"0000000000000009" + // sequence number
		"0000000000000000" + // flags
		"8899aabbccddeeff" + "0011223344556677" + // message ID: low half first
		"8f434346648f6b96df89dda901c5176b10a6d83961dd3c1ac88b59b2dc327aa4" + // sha256("hi")
		"00000001" + // payload type
		"00000002" + // payload length
		"6869"
	if got := hex.EncodeToString(m.Marshal()); got != want {
		t.Errorf("frame\n got %s\nwant %s", got, want)
	}
	if id.String() != "00112233-4455-6677-8899-aabbccddeeff" {
		t.Errorf("UUID prints as %s", id)
	}
}

func TestRoundTrip(t *testing.T) {
	for _, m := range []Message{
		{Type: TypeOutput, SchemaVersion: 1, Created: time.UnixMilli(1765000000123), Seq: 1 << 40, Flags: FlagSYN, ID: NewUUID(), PayloadType: PayloadStdErr, Payload: bytes.Repeat([]byte{0, 0xff}, 3000)},
		{Type: TypeAcknowledge, SchemaVersion: 1, Created: time.UnixMilli(1), Flags: FlagSYN | FlagFIN, ID: NewUUID(), Payload: []byte(`{}`)},
		{Type: TypeChannelClosed, SchemaVersion: 1, Created: time.UnixMilli(2), ID: NewUUID(), Payload: []byte{}},
	} {
		got, err := Unmarshal(m.Marshal())
		if err != nil {
			t.Fatalf("%s: %v", m.Type, err)
		}
		if got.Type != m.Type || got.Seq != m.Seq || got.Flags != m.Flags || got.ID != m.ID || got.PayloadType != m.PayloadType ||
			!got.Created.Equal(m.Created) || !bytes.Equal(got.Payload, m.Payload) {
			t.Errorf("%s: round trip gave %+v", m.Type, got)
		}
	}
}

func TestUnmarshalRejects(t *testing.T) {
	good := Message{Type: TypeOutput, SchemaVersion: 1, Created: time.Now(), ID: NewUUID(), PayloadType: PayloadOutput, Payload: []byte("hello")}.Marshal()
	corrupt := bytes.Clone(good)
	corrupt[len(corrupt)-1] ^= 1
	long := bytes.Clone(good)
	long[119]++ // payload length one more than the bytes that follow
	for name, b := range map[string][]byte{
		"short":          good[:100],
		"bad digest":     corrupt,
		"payload length": long,
	} {
		if _, err := Unmarshal(b); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestExitFilter(t *testing.T) {
	nonce := "abc123"
	stream := "line one\r\n\x1eberth-not-it\x1e and \x1eberth-exit-other:3\x1e end\r\n" + markerPrefix(nonce) + "42\x1e"
	// Whatever the chunking, the output is the stream minus its marker.
	for size := 1; size <= len(stream); size++ {
		var out bytes.Buffer
		f := &exitFilter{w: &out, prefix: []byte(markerPrefix(nonce))}
		for i := 0; i < len(stream); i += size {
			_, _ = f.Write([]byte(stream[i:min(i+size, len(stream))]))
		}
		_ = f.flush()
		if want := strings.TrimSuffix(stream, markerPrefix(nonce)+"42\x1e"); out.String() != want || !f.found || f.code != 42 {
			t.Fatalf("chunks of %d: output %q, found %v code %d", size, out.String(), f.found, f.code)
		}
	}
	// A stream cut inside a would-be marker keeps its bytes.
	var out bytes.Buffer
	f := &exitFilter{w: &out, prefix: []byte(markerPrefix(nonce))}
	_, _ = f.Write([]byte("tail\x1eberth-ex"))
	_ = f.flush()
	if out.String() != "tail\x1eberth-ex" || f.found {
		t.Errorf("cut stream: %q found %v", out.String(), f.found)
	}
}

func TestCommandLine(t *testing.T) {
	got := commandLine([]string{"psql", "-c", "select 'a' from t", "", "x=1"})
	if want := `psql -c 'select '\''a'\'' from t' '' x=1`; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
}
