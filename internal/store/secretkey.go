package store

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// keySize is the length of secret.key: an AES-256 key.
const keySize = 32

// keyCheckPlain is sealed under the key into meta.key_check when the
// database first meets its key, so a replaced or lost secret.key is caught at
// Open with a clear message instead of at the first deploy that needs a
// secret.
const keyCheckPlain = "berth secret key check"

// Additional-data domains, so a sealed value of one kind can never be
// accepted as another.
const (
	adSecret   = "berth/secret/v1"
	adKeyCheck = "berth/key-check/v1"
)

// loadKey reads dir/secret.key, creating it when neither it nor a key check
// exists yet, and verifies it against the key check in the database.
func (s *Store) loadKey(ctx context.Context) error {
	path := filepath.Join(s.dir, KeyFile)
	var check []byte
	err := s.db.QueryRowContext(ctx, `SELECT value FROM meta WHERE key = 'key_check'`).Scan(&check)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("read key check: %w", err)
	}
	if check == nil {
		// Secrets without a key check were sealed under a key no one
		// recorded: a new key would silently lose them.
		var n int
		if err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM secrets`).Scan(&n); err != nil {
			return fmt.Errorf("count secrets: %w", err)
		}
		if n > 0 {
			return fmt.Errorf("%s holds %d secrets but no key check: restore the original key file and state: %w", DBFile, n, ErrKeyMismatch)
		}
	}

	key, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist) && check != nil:
		return fmt.Errorf("%s is missing but %s holds secrets encrypted with it: restore the original key file: %w",
			path, DBFile, ErrKeyMismatch)
	case errors.Is(err, fs.ErrNotExist):
		if key, err = createKey(path); err != nil {
			return err
		}
	case err != nil:
		return fmt.Errorf("read secret key: %w", err)
	}
	if len(key) != keySize {
		return fmt.Errorf("%s holds %d bytes, want %d: restore the original key file: %w",
			path, len(key), keySize, ErrKeyMismatch)
	}
	aead, err := newAEAD(key)
	if err != nil {
		return err
	}
	s.aead = aead

	if check != nil {
		if _, err := open(aead, check, []byte(adKeyCheck)); err != nil {
			return fmt.Errorf("%s is not the key %s was encrypted with: restore the original key file: %w",
				path, DBFile, ErrKeyMismatch)
		}
		return nil
	}
	sealed, err := seal(aead, []byte(keyCheckPlain), []byte(adKeyCheck))
	if err != nil {
		return err
	}
	return s.withTx(ctx, func(tx *sql.Tx) error {
		// OR IGNORE: another process opening the same directory may have
		// written its check first; ours is then verified on the next Open.
		_, err := tx.ExecContext(ctx, `INSERT OR IGNORE INTO meta (key, value) VALUES ('key_check', ?)`, sealed)
		if err != nil {
			return fmt.Errorf("write key check: %w", err)
		}
		return nil
	})
}

// createKey writes 32 random bytes to path, mode 0600, crash-safely: a temp
// file in the same directory is written and fsynced, then linked into place.
// Link, unlike rename, never replaces a key another process created in the
// meantime; that key is read and used instead.
func createKey(path string) ([]byte, error) {
	key := make([]byte, keySize)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("generate secret key: %w", err)
	}
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+KeyFile+".tmp-*")
	if err != nil {
		return nil, fmt.Errorf("create secret key: %w", err)
	}
	defer os.Remove(tmp.Name())
	// CreateTemp already uses 0600; Chmod makes it independent of that.
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return nil, fmt.Errorf("create secret key: %w", err)
	}
	if _, err := tmp.Write(key); err != nil {
		tmp.Close()
		return nil, fmt.Errorf("write secret key: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return nil, fmt.Errorf("sync secret key: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return nil, fmt.Errorf("write secret key: %w", err)
	}
	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return os.ReadFile(path)
		}
		// A file system without hard links: rename is still atomic.
		if err := os.Rename(tmp.Name(), path); err != nil {
			return nil, fmt.Errorf("install secret key: %w", err)
		}
	}
	if err := syncDir(dir); err != nil {
		return nil, fmt.Errorf("sync data directory: %w", err)
	}
	return key, nil
}

// syncDir makes a new directory entry durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

func newAEAD(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("secret key: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("secret key: %w", err)
	}
	return aead, nil
}

// seal encrypts plain with a fresh random nonce and returns nonce||ciphertext.
func seal(aead cipher.AEAD, plain, ad []byte) ([]byte, error) {
	out := make([]byte, aead.NonceSize(), aead.NonceSize()+len(plain)+aead.Overhead())
	if _, err := rand.Read(out); err != nil {
		return nil, fmt.Errorf("generate nonce: %w", err)
	}
	return aead.Seal(out, out, plain, ad), nil
}

// open reverses seal. Its error says nothing about the contents.
func open(aead cipher.AEAD, sealed, ad []byte) ([]byte, error) {
	n := aead.NonceSize()
	if len(sealed) < n+aead.Overhead() {
		return nil, ErrDecrypt
	}
	plain, err := aead.Open(nil, sealed[:n], sealed[n:], ad)
	if err != nil {
		return nil, ErrDecrypt
	}
	return plain, nil
}

// secretAD binds a sealed value to where it is stored. Each part is length
// prefixed so ("a-b","c") and ("a","b-c") can never collide.
func secretAD(app, service, key string) []byte {
	ad := make([]byte, 0, len(adSecret)+len(app)+len(service)+len(key)+4*binary.MaxVarintLen64)
	for _, part := range []string{adSecret, app, service, key} {
		ad = binary.AppendUvarint(ad, uint64(len(part)))
		ad = append(ad, part...)
	}
	return ad
}
