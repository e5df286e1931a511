package spec

import (
	"strconv"
	"strings"
)

// Error is a rejected spec: where the problem is and what to do about it.
// Parse and Validate return the first problem they meet as an *Error, so a
// caller can use errors.As to point at the line, and the CLI can print
// Error() as its one-line reason.
type Error struct {
	// File is the spec's name as the user gave it, e.g. "berth.yaml".
	File string
	// Line is 1-based; 0 when the problem has no place in a file (a spec
	// built in code, or an empty file).
	Line int
	// Field is the dotted path of the offending field, e.g.
	// "services.web.memory" or "services.web.routes[0].path"; empty for a
	// problem with the document as a whole.
	Field string
	// Msg says what is wrong and, where it helps, what is allowed.
	Msg string
	// Err is the underlying cause (a YAML, cron or size error), if any. Msg
	// already says everything the user needs; Err is for errors.Is.
	Err error
}

// Error renders the one-line form "FILE:LINE: FIELD: MSG", dropping the parts
// that are unknown.
func (e *Error) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		if e.Line > 0 {
			b.WriteString(":")
			b.WriteString(strconv.Itoa(e.Line))
		}
		b.WriteString(": ")
	} else if e.Line > 0 {
		b.WriteString("line ")
		b.WriteString(strconv.Itoa(e.Line))
		b.WriteString(": ")
	}
	if e.Field != "" {
		b.WriteString(e.Field)
		b.WriteString(": ")
	}
	b.WriteString(oneLine(e.Msg))
	return b.String()
}

// Unwrap returns the underlying cause, if any.
func (e *Error) Unwrap() error { return e.Err }

// oneLine keeps messages to one line whatever a dependency or a user value
// put in them, because the CLI prints exactly one line on failure.
func oneLine(s string) string {
	if !strings.ContainsAny(s, "\r\n\t") {
		return s
	}
	return strings.Join(strings.Fields(s), " ")
}
