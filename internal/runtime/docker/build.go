package docker

import (
	"archive/tar"
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/docker/docker/api/types/build"
)

// Build builds contextDir into tag with the classic builder (BuildKit is not
// assumed on old engines) and returns the image ID. dockerfile is relative to
// contextDir, "" for "Dockerfile". Progress lines ("Step 1/4 : FROM
// scratch", ...) go to progress as they come; a nil progress discards them.
//
// A base image that is not on the engine fails the build: berth images are
// FROM scratch or FROM an image built or loaded before.
//
// platform ("os/arch[/variant]", "" for the engine's own) is for services
// whose spec names one. The classic builder honours it for FROM scratch
// images; running the result on another architecture needs binfmt
// emulation (see createContainer).
func (e *Engine) Build(ctx context.Context, contextDir, dockerfile, tag, platform string, args map[string]string, progress io.Writer) (string, error) {
	return e.build(ctx, contextDir, dockerfile, tag, platform, args, progress)
}

// BuildForPlatform is Build, under the name callers from before the pod
// contract know it by.
func (e *Engine) BuildForPlatform(ctx context.Context, contextDir, dockerfile, tag, platform string, args map[string]string, progress io.Writer) (string, error) {
	return e.build(ctx, contextDir, dockerfile, tag, platform, args, progress)
}

func (e *Engine) build(ctx context.Context, contextDir, dockerfile, tag, plat string, args map[string]string, progress io.Writer) (string, error) {
	if progress == nil {
		progress = io.Discard
	}
	if dockerfile == "" {
		dockerfile = "Dockerfile"
	}
	if _, err := os.Stat(filepath.Join(contextDir, dockerfile)); err != nil {
		return "", fmt.Errorf("build %s: %w", tag, err)
	}
	ignore, err := readDockerignore(contextDir)
	if err != nil {
		return "", fmt.Errorf("build %s: %w", tag, err)
	}

	// Stream the context: a large one is never held in memory.
	pr, pw := io.Pipe()
	go func() {
		pw.CloseWithError(writeContext(pw, contextDir, filepath.ToSlash(filepath.Clean(dockerfile)), ignore))
	}()
	defer pr.Close()

	buildArgs := make(map[string]*string, len(args))
	for k, v := range args {
		buildArgs[k] = &v
	}
	opts := build.ImageBuildOptions{
		Tags:        []string{tag},
		Dockerfile:  filepath.ToSlash(dockerfile),
		BuildArgs:   buildArgs,
		Remove:      true,
		ForceRemove: true,
		Version:     build.BuilderV1,
	}
	if plat != "" {
		p, err := parsePlatform(plat)
		if err != nil {
			return "", err
		}
		opts.Platform = p.String()
	}
	resp, err := e.cli.ImageBuild(ctx, pr, opts)
	if err != nil {
		return "", fmt.Errorf("build %s: %w", tag, err)
	}
	defer resp.Body.Close()
	id, err := decodeBuild(resp.Body, progress)
	if err != nil {
		return "", fmt.Errorf("build %s: %w", tag, err)
	}
	if id == "" {
		// Engines that send no aux ID message: ask for the tag.
		if id, err = e.ImageID(ctx, tag); err != nil {
			return "", fmt.Errorf("build %s: %w", tag, err)
		}
	}
	e.log.Info("image built", "tag", tag, "id", shortID(strings.TrimPrefix(id, "sha256:")))
	return id, nil
}

// buildMessage is one JSON message of the engine's build stream.
type buildMessage struct {
	Stream   string `json:"stream"`
	Status   string `json:"status"`
	ID       string `json:"id"`
	Progress string `json:"progress"`
	Error    string `json:"error"`
	Detail   *struct {
		Message string `json:"message"`
	} `json:"errorDetail"`
	Aux json.RawMessage `json:"aux"`
}

// decodeBuild writes the stream's text to progress and returns the built
// image ID, or the build's error.
func decodeBuild(r io.Reader, progress io.Writer) (string, error) {
	dec := json.NewDecoder(bufio.NewReader(r))
	var id string
	for {
		var m buildMessage
		if err := dec.Decode(&m); errors.Is(err, io.EOF) {
			return id, nil
		} else if err != nil {
			return "", fmt.Errorf("reading build output: %w", err)
		}
		if m.Detail != nil || m.Error != "" {
			msg := m.Error
			if m.Detail != nil && m.Detail.Message != "" {
				msg = m.Detail.Message
			}
			return "", errors.New(strings.TrimSpace(msg))
		}
		switch {
		case m.Stream != "":
			io.WriteString(progress, m.Stream)
		case m.Status != "":
			line := m.Status
			if m.ID != "" {
				line = m.ID + ": " + line
			}
			if m.Progress != "" {
				line += " " + m.Progress
			}
			io.WriteString(progress, line+"\n")
		}
		if len(m.Aux) > 0 {
			var aux struct{ ID string }
			if json.Unmarshal(m.Aux, &aux) == nil && aux.ID != "" {
				id = aux.ID
			}
		}
	}
}

// readDockerignore reads the context's .dockerignore patterns. Only plain
// filepath.Match patterns are honoured ("!" exceptions and "**" are not).
func readDockerignore(dir string) ([]string, error) {
	data, err := os.ReadFile(filepath.Join(dir, ".dockerignore"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var patterns []string
	for _, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, "!") {
			continue
		}
		p := strings.Trim(filepath.ToSlash(filepath.Clean(line)), "/")
		if p != "" && p != "." {
			patterns = append(patterns, p)
		}
	}
	return patterns, nil
}

// ignored reports whether rel (slash-separated, relative to the context) or
// one of its parent directories matches a pattern.
func ignored(rel string, patterns []string) bool {
	for p := rel; p != "." && p != "/" && p != ""; p = pathDir(p) {
		for _, pat := range patterns {
			if ok, _ := filepath.Match(pat, p); ok {
				return true
			}
		}
	}
	return false
}

func pathDir(p string) string {
	if i := strings.LastIndexByte(p, '/'); i >= 0 {
		return p[:i]
	}
	return "."
}

// writeContext tars dir for the engine, skipping .git and ignored paths.
// The Dockerfile and .dockerignore are always sent, as the engine expects.
func writeContext(w io.Writer, dir, dockerfile string, ignore []string) error {
	tw := tar.NewWriter(w)
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil {
			return err
		}
		if rel == "." {
			return nil
		}
		rel = filepath.ToSlash(rel)
		keep := rel == dockerfile || rel == ".dockerignore"
		if d.IsDir() && (d.Name() == ".git" || (ignored(rel, ignore) && !strings.HasPrefix(dockerfile, rel+"/"))) {
			return filepath.SkipDir
		}
		if !keep && ignored(rel, ignore) {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		link := ""
		if info.Mode()&fs.ModeSymlink != 0 {
			if link, err = os.Readlink(path); err != nil {
				return err
			}
		} else if !info.Mode().IsRegular() && !info.IsDir() {
			return nil // sockets, devices, fifos: not build context material
		}
		hdr, err := tar.FileInfoHeader(info, link)
		if err != nil {
			return err
		}
		hdr.Name = rel
		if info.IsDir() {
			hdr.Name += "/"
		}
		// Ownership on the builder's side is root's whatever it is here.
		hdr.Uid, hdr.Gid, hdr.Uname, hdr.Gname = 0, 0, "", ""
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if !info.Mode().IsRegular() {
			return nil
		}
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = io.Copy(tw, f)
		return err
	})
	if err != nil {
		return fmt.Errorf("build context %s: %w", dir, err)
	}
	return tw.Close()
}
