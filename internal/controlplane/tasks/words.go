package tasks

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/berth-dev/berth/internal/api"
	"github.com/berth-dev/berth/internal/store"
)

// label names a task for messages: its spec name, else its command.
func label(t store.Task) string {
	if t.Name != "" {
		return t.Name
	}
	return quoteCommand(t.Command)
}

// outcome says how a finished task ended, for messages.
func outcome(t store.Task) string {
	switch t.Status {
	case api.TaskSucceeded:
		return "exited with code 0"
	case api.TaskFailed:
		if strings.HasPrefix(t.Message, "could not start") {
			return t.Message
		}
		return fmt.Sprintf("exited with code %d", t.ExitCode)
	case api.TaskStopped, api.TaskTimeout:
		return fmt.Sprintf("%s (exit code %d)", t.Message, t.ExitCode)
	}
	return t.Status + ": " + t.Message
}

// note says why berth ended a task, for a session's Exit frame.
func note(t store.Task) string {
	switch t.Status {
	case api.TaskStopped, api.TaskTimeout, api.TaskLost:
		return fmt.Sprintf("task %s %s", t.ID, strings.TrimSpace(t.Message))
	}
	return ""
}

// quoteCommand renders argv as a shell would read it back.
func quoteCommand(argv []string) string {
	parts := make([]string, len(argv))
	for i, a := range argv {
		if a == "" || strings.ContainsAny(a, " \t\n\"'\\$`;&|<>*?()[]{}#~") {
			parts[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		} else {
			parts[i] = a
		}
	}
	return strings.Join(parts, " ")
}

// newID is a task's ID: 10 hex digits, of which `berth task` takes a
// unique prefix.
func newID() string {
	b := make([]byte, 5)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// oneLine keeps an error message to one line.
func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
