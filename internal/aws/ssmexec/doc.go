// Package ssmexec runs a command in a container of an ECS task, as `aws ecs
// execute-command` does, without the session-manager-plugin binary: berth
// calls ECS ExecuteCommand, which answers with a Session Manager session
// (a WebSocket stream URL and a token), and speaks the session's data
// channel itself.
//
// The data channel, as the plugin and the agent speak it:
//
//   - The client dials the stream URL and sends, as its first (text)
//     message, the open_data_channel handshake: a JSON object with the
//     session's TokenValue, a RequestId and a ClientId.
//   - Every later message is a binary AgentMessage (frame.go): a 116-byte
//     header (header length, message type padded to 32 bytes, schema
//     version, created date, sequence number, flags, message ID, SHA-256
//     digest of the payload, payload type), the payload length, the payload.
//   - Each side numbers its own input_stream_data / output_stream_data
//     messages from 0, acknowledges every stream message it receives with an
//     acknowledge message naming its sequence number, and sends again the
//     messages the other side has not acknowledged after a timeout; the
//     receiver hands the messages over in sequence order and drops
//     duplicates.
//   - The agent opens with a handshake request (payload type 5) asking the
//     client to accept a session type (Standard_Stream for ECS exec); the
//     client answers with a handshake response (6); the agent ends with
//     handshake complete (7). Then input (payload type 1, the keys typed)
//     and terminal sizes (3, {"cols","rows"}) flow from the client, output
//     (1) from the agent, until the agent sends channel_closed.
//
// ECS does not return the command's exit code. Exec wraps the command in
// sh -c, which prints the code after it as a marker the client strips from
// the output (see Request.NoShell for images without sh).
package ssmexec
