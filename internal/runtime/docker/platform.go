package docker

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/docker/docker/api/types/image"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-dev/berth/internal/runtime"
)

// platform is an os/arch[/variant] triple with Go's architecture names.
type platform struct {
	OS, Arch, Variant string
}

func (p platform) String() string {
	s := p.OS + "/" + p.Arch
	if p.Variant != "" {
		s += "/" + p.Variant
	}
	return s
}

func (p platform) oci() *ocispec.Platform {
	return &ocispec.Platform{OS: p.OS, Architecture: p.Arch, Variant: p.Variant}
}

// parsePlatform reads "os/arch[/variant]" as in berth.yaml's platform.
func parsePlatform(s string) (platform, error) {
	parts := strings.Split(strings.ToLower(strings.TrimSpace(s)), "/")
	if len(parts) < 2 || len(parts) > 3 || parts[0] == "" || parts[1] == "" {
		return platform{}, fmt.Errorf("%w: %q is not os/arch[/variant] (e.g. linux/arm64)", runtime.ErrPlatform, s)
	}
	p := platform{OS: parts[0], Arch: normalizeArch(parts[1])}
	if len(parts) == 3 {
		p.Variant = parts[2]
	}
	return p, nil
}

// normalizeArch maps kernel (uname -m) spellings to Go's, which images use.
func normalizeArch(arch string) string {
	switch strings.ToLower(arch) {
	case "x86_64", "x86-64", "amd64":
		return "amd64"
	case "aarch64", "arm64":
		return "arm64"
	case "armv7l", "armv7", "armhf", "arm":
		return "arm"
	case "i386", "i686", "386":
		return "386"
	default:
		return strings.ToLower(arch)
	}
}

// qemuArch is the binfmt_misc handler name for a Go architecture.
func qemuArch(arch string) string {
	switch arch {
	case "amd64":
		return "x86_64"
	case "arm64":
		return "aarch64"
	case "386":
		return "i386"
	default:
		return arch
	}
}

// hostPlatform is the engine's platform, from its /info, read once
// successfully and then cached.
func (e *Engine) hostPlatform(ctx context.Context) (platform, error) {
	e.hostMu.Lock()
	defer e.hostMu.Unlock()
	if e.host != nil {
		return *e.host, nil
	}
	info, err := e.cli.Info(ctx)
	if err != nil {
		return platform{}, fmt.Errorf("docker info: %w", err)
	}
	e.host = &platform{OS: info.OSType, Arch: normalizeArch(info.Architecture)}
	return *e.host, nil
}

// canEmulate reports whether the kernel runs binaries of arch through a
// binfmt_misc handler (qemu-user-static). It looks at this machine's kernel,
// which is the engine's when the engine is local, as berth assumes.
func canEmulate(arch string) bool {
	data, err := os.ReadFile("/proc/sys/fs/binfmt_misc/qemu-" + qemuArch(arch))
	return err == nil && strings.HasPrefix(string(data), "enabled")
}

// checkPlatform refuses, before anything is created, an image that cannot run
// here: built for another architecture than the one asked for (want; zero
// when none was), or for one the host can neither run nor emulate. Running it would only end in "exec
// format error" inside the container, far from the cause.
func checkPlatform(ref string, img image.InspectResponse, want, host platform) error {
	got := platform{OS: img.Os, Arch: normalizeArch(img.Architecture), Variant: img.Variant}
	if got.OS == "" || got.Arch == "" {
		return nil // an image without platform metadata: let the engine decide
	}
	if want != (platform{}) && (got.OS != want.OS || got.Arch != want.Arch) {
		return fmt.Errorf("%w: image %s is %s, not the requested %s: build it for %s (docker build --platform %s)",
			runtime.ErrPlatform, ref, got, want, want, want)
	}
	if got.OS == host.OS && got.Arch == host.Arch {
		return nil
	}
	if got.OS == host.OS && canEmulate(got.Arch) {
		return nil
	}
	return fmt.Errorf("%w: image %s is %s but this host is %s and cannot emulate it: install qemu-user-static / binfmt to enable emulation",
		runtime.ErrPlatform, ref, got, host)
}
