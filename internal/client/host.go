package client

import (
	"os"
	"path/filepath"
)

// rootDataDir is where a daemon run by root keeps its state.
const rootDataDir = "/var/lib/berth"

// SocketName is the API socket's file name inside the data directory.
const SocketName = "berth.sock"

// DefaultDataDir is the data directory of a daemon started without --data
// or BERTH_DATA: $XDG_DATA_HOME/berth (XDG default ~/.local/share), or
// /var/lib/berth for root.
func DefaultDataDir() string {
	if os.Geteuid() == 0 {
		return rootDataDir
	}
	// The XDG spec says relative values are invalid and must be ignored.
	if d := os.Getenv("XDG_DATA_HOME"); filepath.IsAbs(d) {
		return filepath.Join(d, "berth")
	}
	home, err := os.UserHomeDir()
	if err != nil || home == "" {
		return rootDataDir
	}
	return filepath.Join(home, ".local", "share", "berth")
}

// DefaultHost is where the CLI finds the daemon when --host is not given:
// BERTH_HOST, else the socket in BERTH_DATA, else the socket in
// DefaultDataDir.
func DefaultHost() string {
	if h := os.Getenv("BERTH_HOST"); h != "" {
		return h
	}
	dir := os.Getenv("BERTH_DATA")
	if dir == "" {
		dir = DefaultDataDir()
	}
	return "unix://" + filepath.Join(dir, SocketName)
}
