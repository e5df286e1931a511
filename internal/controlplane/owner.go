package controlplane

// A berth server's identity. Several servers (data directories) may share
// one Docker Engine; each labels what it creates with its identity and
// never adopts, stops or removes what carries another's (the engine sees
// to the labels and the filtering: runtime.Owner). Containers and networks
// of a berth that did not label its owner yet carry no identity, and any
// server takes them as its own: engine labels cannot be changed after
// creation, so the first server to find them cannot mark them.

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/berth-dev/berth/internal/runtime"
)

// identityFile, in the data directory, holds the server's identity.
const identityFile = "identity"

// ErrBadIdentity means the data directory's identity file is unreadable.
var ErrBadIdentity = errors.New("unreadable server identity")

// loadOwner returns the identity kept in dataDir, generating and writing it
// (atomically: temp file, fsync, rename) on the first start.
func loadOwner(dataDir string) (runtime.Owner, error) {
	dir, err := filepath.Abs(dataDir)
	if err != nil {
		return runtime.Owner{}, err
	}
	path := filepath.Join(dir, identityFile)
	b, err := os.ReadFile(path)
	if err == nil {
		id := strings.TrimSpace(string(b))
		if _, herr := hex.DecodeString(id); herr != nil || len(id) != 32 {
			return runtime.Owner{}, fmt.Errorf("%w: %s does not hold a 32-digit hex ID; if it is damaged, move it away "+
				"and start again (a new ID is made; containers labelled with the old one are then another server's)", ErrBadIdentity, path)
		}
		return runtime.Owner{ID: id, Dir: dir}, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return runtime.Owner{}, fmt.Errorf("read %s: %w", path, err)
	}
	raw := make([]byte, 16)
	_, _ = rand.Read(raw)
	id := hex.EncodeToString(raw)
	// writeFileAtomic (api_tls.go): a crash leaves the file whole or absent.
	if err := writeFileAtomic(path, []byte(id+"\n"), 0o600); err != nil {
		return runtime.Owner{}, fmt.Errorf("write %s: %w", path, err)
	}
	return runtime.Owner{ID: id, Dir: dir}, nil
}

// ownEngine makes eng act for the data directory's owner, when it can.
func ownEngine(eng runtime.PodEngine, o runtime.Owner) {
	if s, ok := eng.(runtime.OwnerSetter); ok {
		s.SetOwner(o)
	}
}
