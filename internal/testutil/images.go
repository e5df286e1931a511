package testutil

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/build"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/client"
)

// Image names and labels testutil uses. Images carrying LabelTest are test
// artefacts and may be deleted at any time.
const (
	TestAppRepo   = "berth-test/app"
	BusyboxRepo   = "berth-test/busybox"
	LabelTest     = "berth.test"
	LabelTestHash = "berth.test.hash"
)

// TestAppImage returns the tag of the testapp image (see
// internal/testutil/testapp), building it on first use in this process.
//
// The tag is content-addressed, "berth-test/app:<hash>" where hash is the
// SHA-256 of the static binary, so a concurrent test process that built a
// different testapp can never swap the image under this one; the image is
// also tagged "berth-test/app:dev" for humans. An image already present with
// the same hash is reused, so only the first run after a change builds.
//
// The binary is CMD ["/testapp"] (no ENTRYPOINT): a command override is a
// full argv such as ["/testapp", "exit", "3"].
func TestAppImage(tb testing.TB) string {
	tb.Helper()
	RequireDocker(tb)
	tag, err := testAppImage()
	if err != nil {
		tb.Fatalf("testapp image: %v", err)
	}
	return tag
}

var testAppImage = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "berth-testapp-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(dir)
	bin := filepath.Join(dir, "testapp")
	cmd := exec.Command("go", "build", "-trimpath", "-buildvcs=false", "-ldflags=-s -w", "-o", bin,
		"github.com/berth-dev/berth/internal/testutil/testapp")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+runtime.GOARCH)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build testapp: %w\n%s", err, out)
	}
	data, err := os.ReadFile(bin)
	if err != nil {
		return "", err
	}
	dockerfile := `FROM scratch
COPY testapp /testapp
ENV PORT=8080
EXPOSE 8080
CMD ["/testapp"]
`
	return cachedImage(TestAppRepo, data, dockerfile, []tarEntry{
		{name: "testapp", mode: 0o755, body: data},
	})
})

// BusyboxImage returns the tag of a FROM scratch image holding the host's
// static busybox as /bin/busybox, with every applet linked next to it
// (/bin/sh, /bin/ls, /bin/wget, ...) and PATH=/bin; CMD is /bin/sh. It needs
// the host's /bin/busybox to be static (Debian: apt-get install
// busybox-static). Built once per process, reused across runs like
// TestAppImage.
func BusyboxImage(tb testing.TB) string {
	tb.Helper()
	RequireDocker(tb)
	tag, err := busyboxImage()
	if err != nil {
		tb.Fatalf("busybox image: %v", err)
	}
	return tag
}

var busyboxImage = sync.OnceValues(func() (string, error) {
	const host = "/bin/busybox"
	data, err := os.ReadFile(host)
	if errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("%s is missing: apt-get install busybox-static", host)
	}
	if err != nil {
		return "", err
	}
	out, err := exec.Command(host, "--list").Output()
	if err != nil {
		return "", fmt.Errorf("%s --list: %w (is it busybox-static? apt-get install busybox-static)", host, err)
	}
	entries := []tarEntry{
		{name: "bin/", mode: 0o755, dir: true},
		{name: "bin/busybox", mode: 0o755, body: data},
	}
	for _, applet := range strings.Fields(string(out)) {
		if applet == "busybox" || strings.Contains(applet, "/") {
			continue
		}
		entries = append(entries, tarEntry{name: "bin/" + applet, mode: 0o777, link: "busybox"})
	}
	dockerfile := `FROM scratch
COPY bin/ /bin/
ENV PATH=/bin
CMD ["/bin/sh"]
`
	return cachedImage(BusyboxRepo, data, dockerfile, entries)
})

// cachedImage builds repo:<hash of content> from dockerfile and files unless
// an image with that tag exists already.
func cachedImage(repo string, content []byte, dockerfile string, files []tarEntry) (string, error) {
	cli, err := dockerClient()
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(append([]byte(dockerfile), content...))
	hash := hex.EncodeToString(sum[:])
	tag := repo + ":" + hash[:16]

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if img, err := cli.ImageInspect(ctx, tag); err == nil && img.Config != nil && img.Config.Labels[LabelTestHash] == hash {
		return tag, nil
	} else if err != nil && !cerrdefs.IsNotFound(err) {
		return "", err
	}

	dockerfile += fmt.Sprintf("LABEL %s=1 %s=%s\n", LabelTest, LabelTestHash, hash)
	files = append([]tarEntry{{name: "Dockerfile", mode: 0o644, body: []byte(dockerfile)}}, files...)
	var buf bytes.Buffer
	if err := writeTar(&buf, files); err != nil {
		return "", err
	}
	if _, err := buildImage(ctx, cli, &buf, []string{tag, repo + ":dev"}); err != nil {
		return "", err
	}
	return tag, nil
}

// BuildImage builds the context in dir (its Dockerfile, .dockerignore
// honoured by simple filepath.Match patterns, .git skipped) into tag with the
// classic builder, removes the image when the test ends, and returns the
// image ID. The tag should come from UniqueName.
func BuildImage(tb testing.TB, tag string, dir string) string {
	tb.Helper()
	cli := DockerClient(tb)
	files, err := dirEntries(dir)
	if err != nil {
		tb.Fatalf("build context %s: %v", dir, err)
	}
	var buf bytes.Buffer
	if err := writeTar(&buf, files); err != nil {
		tb.Fatalf("build context %s: %v", dir, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	id, err := buildImage(ctx, cli, &buf, []string{tag})
	if err != nil {
		tb.Fatalf("build %s from %s: %v", tag, dir, err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_, err := cli.ImageRemove(ctx, tag, image.RemoveOptions{Force: true, PruneChildren: true})
		if err != nil && !cerrdefs.IsNotFound(err) {
			tb.Logf("remove image %s: %v", tag, err)
		}
	})
	return id
}

// buildImage runs the classic builder (BuildKit is not assumed) and returns
// the image ID; the build output is included in any error.
func buildImage(ctx context.Context, cli *client.Client, buildContext io.Reader, tags []string) (string, error) {
	resp, err := cli.ImageBuild(ctx, buildContext, build.ImageBuildOptions{
		Tags:        tags,
		Remove:      true,
		ForceRemove: true,
		Version:     build.BuilderV1,
	})
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var (
		out strings.Builder
		id  string
	)
	dec := json.NewDecoder(resp.Body)
	for {
		var msg struct {
			Stream      string `json:"stream"`
			ErrorDetail *struct {
				Message string `json:"message"`
			} `json:"errorDetail"`
			Error string          `json:"error"`
			Aux   json.RawMessage `json:"aux"`
		}
		if err := dec.Decode(&msg); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return "", fmt.Errorf("reading build output: %w\n%s", err, out.String())
		}
		out.WriteString(msg.Stream)
		if msg.ErrorDetail != nil || msg.Error != "" {
			text := msg.Error
			if msg.ErrorDetail != nil && msg.ErrorDetail.Message != "" {
				text = msg.ErrorDetail.Message
			}
			return "", fmt.Errorf("%s\n%s", text, out.String())
		}
		if len(msg.Aux) > 0 {
			var aux struct{ ID string }
			if json.Unmarshal(msg.Aux, &aux) == nil && aux.ID != "" {
				id = aux.ID
			}
		}
	}
	if id == "" {
		img, err := cli.ImageInspect(ctx, tags[0])
		if err != nil {
			return "", fmt.Errorf("image %s after build: %w\n%s", tags[0], err, out.String())
		}
		id = img.ID
	}
	return id, nil
}

// tarEntry is one file of a generated build context.
type tarEntry struct {
	name string
	mode int64
	body []byte
	link string // symlink target
	dir  bool
}

func writeTar(w io.Writer, entries []tarEntry) error {
	tw := tar.NewWriter(w)
	mtime := time.Unix(0, 0)
	for _, e := range entries {
		hdr := &tar.Header{Name: e.name, Mode: e.mode, ModTime: mtime, Format: tar.FormatPAX}
		switch {
		case e.dir:
			hdr.Typeflag = tar.TypeDir
		case e.link != "":
			hdr.Typeflag = tar.TypeSymlink
			hdr.Linkname = e.link
		default:
			hdr.Typeflag = tar.TypeReg
			hdr.Size = int64(len(e.body))
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if hdr.Typeflag == tar.TypeReg {
			if _, err := tw.Write(e.body); err != nil {
				return err
			}
		}
	}
	return tw.Close()
}

// dirEntries reads a build context directory, skipping .git and paths that
// match a .dockerignore pattern (filepath.Match on the slash-separated
// relative path, or on any of its parent directories). The Dockerfile is
// always sent.
func dirEntries(dir string) ([]tarEntry, error) {
	var ignore []string
	if data, err := os.ReadFile(filepath.Join(dir, ".dockerignore")); err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			line = strings.TrimSpace(line)
			if line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, "!") {
				continue
			}
			ignore = append(ignore, strings.Trim(filepath.ToSlash(filepath.Clean(line)), "/"))
		}
	}
	ignored := func(rel string) bool {
		if rel == "Dockerfile" {
			return false
		}
		for p := rel; p != "."; p = filepath.ToSlash(filepath.Dir(p)) {
			for _, pat := range ignore {
				if ok, _ := filepath.Match(pat, p); ok {
					return true
				}
			}
		}
		return false
	}
	var entries []tarEntry
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil || rel == "." {
			return err
		}
		rel = filepath.ToSlash(rel)
		if d.IsDir() && (d.Name() == ".git" || ignored(rel)) {
			return filepath.SkipDir
		}
		if ignored(rel) {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		e := tarEntry{name: rel, mode: int64(info.Mode().Perm())}
		switch {
		case d.IsDir():
			e.name += "/"
			e.dir = true
		case info.Mode()&fs.ModeSymlink != 0:
			if e.link, err = os.Readlink(path); err != nil {
				return err
			}
		case info.Mode().IsRegular():
			if e.body, err = os.ReadFile(path); err != nil {
				return err
			}
		default:
			return nil // sockets, devices: not build context material
		}
		entries = append(entries, e)
		return nil
	})
	return entries, err
}
