package spec

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strconv"

	"gopkg.in/yaml.v3"
)

// MaxSize is the largest spec Parse accepts. A real berth.yaml is a few
// kilobytes; the limit keeps a mistaken or hostile upload from tying up the
// daemon.
const MaxSize = 1 << 20

// ParseFile reads and parses the spec at path. Errors name path as the user
// gave it.
func ParseFile(path string) (*Spec, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read spec: %w", err)
	}
	return Parse(path, data)
}

// Parse parses and validates a berth.yaml. file is the name errors use
// (the path as the user wrote it, e.g. "berth.yaml"); nothing is read from
// disk. The result has defaults applied (see the Default constants) and
// passes Validate. On failure the error is an *Error for the first problem
// found, naming file, line and field on one line.
func Parse(file string, data []byte) (*Spec, error) {
	if len(data) > MaxSize {
		return nil, &Error{File: file, Msg: fmt.Sprintf("the spec is %d bytes; the limit is %s", len(data), FormatSize(MaxSize))}
	}
	root, err := parseYAML(file, data)
	if err != nil {
		return nil, err
	}
	d := &decoder{file: file, lines: map[string]int{}}
	s, err := d.spec(root)
	if err != nil {
		return nil, err
	}
	s.applyDefaults()
	if err := s.Validate(); err != nil {
		return nil, err
	}
	return s, nil
}

// parseYAML returns the root node of the one document in data.
func parseYAML(file string, data []byte) (*yaml.Node, error) {
	docs, err := decodeYAML(data)
	if err != nil {
		return nil, yamlError(file, data, err)
	}
	if len(docs) == 0 || len(docs[0].Content) == 0 || isNull(deref(docs[0].Content[0])) {
		return nil, &Error{File: file, Line: 1, Msg: msgEmpty}
	}
	for _, extra := range docs[1:] {
		// A stray "---" at the end is harmless; a second spec is not.
		if len(extra.Content) > 0 && !isNull(extra.Content[0]) {
			return nil, &Error{File: file, Line: extra.Line, Msg: "a spec is one YAML document; found a second one (after ---)"}
		}
	}
	return docs[0].Content[0], nil
}

// decodeYAML decodes every document in data.
func decodeYAML(data []byte) (docs []*yaml.Node, err error) {
	// yaml.v3 reports malformed input by panicking internally and
	// recovering; should a panic ever escape it, a bad spec must still be
	// an error, not a crashed daemon.
	defer func() {
		if r := recover(); r != nil {
			docs, err = nil, fmt.Errorf("yaml: %v", r)
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for {
		doc := &yaml.Node{}
		err := dec.Decode(doc)
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		if err != nil {
			return nil, err
		}
		docs = append(docs, doc)
	}
}

const msgEmpty = "the spec is empty; it needs app: and services:"

// yamlPrefixRE matches yaml.v3's "yaml: " and "line N: " at the start of a
// message.
var yamlPrefixRE = regexp.MustCompile(`^yaml: (?:line (\d+): )?`)

// maxLocateTries bounds the re-parses yamlError spends to find a line.
const maxLocateTries = 2000

// yamlError turns a yaml.v3 syntax error into a one-line *Error.
//
// yaml.v3's own line is often wrong: for parser errors it prints where the
// enclosing block began, 0-based, and some errors (an unknown anchor) have no
// line at all. So the line is found again: the first line L such that the
// first L lines of the file fail with the very same error, which is where the
// problem shows itself.
func yamlError(file string, data []byte, err error) *Error {
	msg := oneLine(err.Error())
	e := &Error{File: file, Err: err, Msg: "invalid YAML: " + yamlPrefixRE.ReplaceAllString(msg, "")}
	lines := bytes.SplitAfter(data, []byte("\n"))
	// The problem is no earlier than the (0-based) line yaml.v3 printed, so
	// the search starts there.
	start := 0
	if m := yamlPrefixRE.FindStringSubmatch(msg); m != nil && m[1] != "" {
		start, _ = strconv.Atoi(m[1])
		start = min(max(start-1, 0), len(lines))
	}
	end := 0
	for _, l := range lines[:start] {
		end += len(l)
	}
	for i := start; i < len(lines) && i < start+maxLocateTries; i++ {
		end += len(lines[i])
		if _, perr := decodeYAML(data[:end]); perr != nil && oneLine(perr.Error()) == msg {
			e.Line = i + 1
			break
		}
	}
	return e
}

// applyDefaults fills what the spec left out, so that callers never
// re-derive a default (see the Default constants).
func (s *Spec) applyDefaults() {
	for _, svc := range s.Services {
		if svc == nil {
			continue
		}
		h := &svc.Health
		if h.Interval == 0 {
			h.Interval = DefaultHealthInterval
		}
		if h.Timeout == 0 {
			h.Timeout = DefaultHealthTimeout
		}
		if h.Healthy == 0 {
			h.Healthy = DefaultHealthy
		}
		if h.Unhealthy == 0 {
			h.Unhealthy = DefaultUnhealthy
		}
		if svc.Timeout == 0 {
			svc.Timeout = DefaultRequestTimeout
		}
		if svc.Scale == nil && svc.Instances == 0 {
			svc.Instances = DefaultInstances
		}
		defaultBuild(svc.Build)
		for _, sc := range svc.Sidecars {
			if sc != nil {
				defaultBuild(sc.Build)
			}
		}
	}
}

func defaultBuild(b *Build) {
	if b != nil && b.Dockerfile == "" {
		b.Dockerfile = DefaultDockerfile
	}
}
