package docker

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/build"
	"github.com/docker/docker/api/types/network"

	"github.com/berth-dev/berth/internal/runtime"
)

// HolderRepo is the repository of the network holder image.
const HolderRepo = "berth/netns"

// ensureHolderImage returns the image of a network namespace holder: a container
// that does nothing but keep a network namespace (and its published port)
// alive, so an instance's containers can join it in any order — an init
// container before the service's own container, as a Kubernetes pod's pause
// container allows. It is built on first use from a program of a few bytes
// that sleeps until killed, so no image is ever pulled; later calls (and
// later daemons) reuse it.
func (e *Engine) ensureHolderImage(ctx context.Context) (string, error) {
	e.holderMu.Lock()
	defer e.holderMu.Unlock()
	if e.holderImage != "" {
		return e.holderImage, nil
	}
	host, err := e.hostPlatform(ctx)
	if err != nil {
		return "", err
	}
	prog, err := sleeperELF(host.Arch)
	if err != nil {
		return "", err
	}
	dockerfile := "FROM scratch\nCOPY pause /pause\nCMD [\"/pause\"]\n"
	sum := sha256.Sum256(append([]byte(dockerfile), prog...))
	tag := HolderRepo + ":" + hex.EncodeToString(sum[:8])
	if img, err := e.cli.ImageInspect(ctx, tag); err == nil {
		e.holderImage = img.ID
		return img.ID, nil
	} else if !cerrdefs.IsNotFound(err) {
		return "", fmt.Errorf("inspect %s: %w", tag, err)
	}

	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	mtime := time.Unix(0, 0)
	for _, f := range []struct {
		name string
		mode int64
		body []byte
	}{{"Dockerfile", 0o644, []byte(dockerfile)}, {"pause", 0o755, prog}} {
		if err := tw.WriteHeader(&tar.Header{Name: f.name, Mode: f.mode, Size: int64(len(f.body)), ModTime: mtime, Typeflag: tar.TypeReg}); err != nil {
			return "", err
		}
		if _, err := tw.Write(f.body); err != nil {
			return "", err
		}
	}
	if err := tw.Close(); err != nil {
		return "", err
	}
	resp, err := e.cli.ImageBuild(ctx, &buf, build.ImageBuildOptions{
		Tags: []string{tag}, Remove: true, ForceRemove: true, Version: build.BuilderV1,
		Labels: map[string]string{"berth.netns": "1"},
	})
	if err != nil {
		return "", fmt.Errorf("build %s: %w", tag, err)
	}
	defer resp.Body.Close()
	id, err := decodeBuild(resp.Body, io.Discard)
	if err != nil {
		return "", fmt.Errorf("build %s: %w", tag, err)
	}
	if id == "" {
		if id, err = e.ImageID(ctx, tag); err != nil {
			return "", err
		}
	}
	e.log.Info("network holder image built", "tag", tag)
	e.holderImage = id
	return id, nil
}

// sleeperELF returns a static Linux executable for arch that blocks in a
// system call forever (until a signal kills it): pause(2) on amd64, ppoll(2)
// with no descriptors on arm64, which has no pause. Tini (the container's
// PID 1) forwards SIGTERM to it, and the default action ends it.
func sleeperELF(arch string) ([]byte, error) {
	var (
		machine uint16
		code    []byte
	)
	switch arch {
	case "amd64":
		machine = 62 // EM_X86_64
		code = []byte{
			0xb8, 0x22, 0x00, 0x00, 0x00, // mov eax, 34 (pause)
			0x0f, 0x05, // syscall
			0xeb, 0xf7, // jmp back to mov
		}
	case "arm64":
		machine = 183 // EM_AARCH64
		for _, w := range []uint32{
			0xd2800000, // mov x0, #0 (fds = NULL)
			0xd2800001, // mov x1, #0 (nfds = 0)
			0xd2800002, // mov x2, #0 (no timeout)
			0xd2800003, // mov x3, #0 (no sigmask)
			0xd2800928, // mov x8, #73 (ppoll)
			0xd4000001, // svc #0
			0x17fffffa, // b back to the first mov
		} {
			code = binary.LittleEndian.AppendUint32(code, w)
		}
	default:
		return nil, fmt.Errorf("no network holder program for %s: sidecars need an amd64 or arm64 host", arch)
	}
	const (
		base    = 0x400000
		ehSize  = 64
		phSize  = 56
		codeOff = ehSize + phSize
	)
	size := uint64(codeOff + len(code))
	b := make([]byte, 0, size)
	le := binary.LittleEndian
	// ELF header.
	b = append(b, 0x7f, 'E', 'L', 'F', 2 /* 64-bit */, 1 /* little endian */, 1 /* version */, 0 /* System V */)
	b = append(b, make([]byte, 8)...)
	b = le.AppendUint16(b, 2) // ET_EXEC
	b = le.AppendUint16(b, machine)
	b = le.AppendUint32(b, 1)            // EV_CURRENT
	b = le.AppendUint64(b, base+codeOff) // entry
	b = le.AppendUint64(b, ehSize)       // program headers offset
	b = le.AppendUint64(b, 0)            // no section headers
	b = le.AppendUint32(b, 0)            // flags
	b = le.AppendUint16(b, ehSize)       // header size
	b = le.AppendUint16(b, phSize)       // program header size
	b = le.AppendUint16(b, 1)            // one program header
	b = le.AppendUint16(b, 0)            // section header size
	b = le.AppendUint16(b, 0)            // no sections
	b = le.AppendUint16(b, 0)            // no section names
	// One loadable, executable segment: the whole file.
	b = le.AppendUint32(b, 1) // PT_LOAD
	b = le.AppendUint32(b, 5) // PF_R | PF_X
	b = le.AppendUint64(b, 0) // offset
	b = le.AppendUint64(b, base)
	b = le.AppendUint64(b, base)
	b = le.AppendUint64(b, size) // file size
	b = le.AppendUint64(b, size) // memory size
	b = le.AppendUint64(b, 0x1000)
	return append(b, code...), nil
}

// NetworkAddrs returns the IPv4 gateway (the host's address on the network)
// and subnet of a network; ErrNetworkNotFound when there is none of that
// name.
func (e *Engine) NetworkAddrs(ctx context.Context, name string) (gateway, subnet string, err error) {
	nw, err := e.cli.NetworkInspect(ctx, name, network.InspectOptions{})
	if cerrdefs.IsNotFound(err) {
		return "", "", fmt.Errorf("%w: %s", runtime.ErrNetworkNotFound, name)
	}
	if err != nil {
		return "", "", fmt.Errorf("inspect network %s: %w", name, err)
	}
	for _, c := range nw.IPAM.Config {
		if c.Gateway != "" && c.Subnet != "" && !bytes.ContainsRune([]byte(c.Subnet), ':') {
			return c.Gateway, c.Subnet, nil
		}
	}
	return "", "", fmt.Errorf("network %s has no IPv4 gateway", name)
}
