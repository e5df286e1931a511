// Package attach is the wire protocol of berth's interactive sessions
// (`berth task run -i/-t`, `berth exec`). The client sends an HTTP request
// with "Connection: Upgrade" and "Upgrade: berth-attach"; the daemon answers
// "101 Switching Protocols" and from then on both ends exchange frames on the
// raw connection:
//
//	+--------+--------------------------+-------------------+
//	| type   | length (uint32, big end) | payload (length)  |
//	| 1 byte | 4 bytes                  | 0..MaxPayload     |
//	+--------+--------------------------+-------------------+
//
// Client to daemon: Stdin, CloseStdin, Resize. Daemon to client: Started
// (first), Stdout, Stderr, then exactly one Exit or Error (last). Closing the
// connection before the Exit frame means "the client is gone": the daemon
// stops a task it started for this session.
//
// The package owns the framing and the client's side of a session (Pump);
// it must not know what runs (the daemon's business) nor touch a terminal
// (the CLI's).
package attach
