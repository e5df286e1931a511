package store

import (
	"bytes"
	"context"
	"crypto/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestSecrets(t *testing.T) {
	ctx := context.Background()

	t.Run("set list values delete", func(t *testing.T) {
		s := newStore(t)
		// No app yet: secrets are set before the first deploy.
		require.NoError(t, s.SetSecrets(ctx, "shop", "web", map[string]string{"B": "2", "A": "1", "EMPTY": ""}, t0))
		later := t0.Add(time.Hour)
		require.NoError(t, s.SetSecrets(ctx, "shop", "web", map[string]string{"B": "two", "C": "3"}, later))
		require.NoError(t, s.SetSecrets(ctx, "shop", "api", map[string]string{"A": "api-1"}, t0))
		require.NoError(t, s.SetSecrets(ctx, "shop", "web", nil, later), "nothing to set is fine")

		keys, err := s.ListSecrets(ctx, "shop", "web")
		require.NoError(t, err)
		assert.Equal(t, []SecretKey{{Key: "A", UpdatedAt: t0}, {Key: "B", UpdatedAt: later}, {Key: "C", UpdatedAt: later}, {Key: "EMPTY", UpdatedAt: t0}}, keys)

		values, err := s.SecretValues(ctx, "shop", "web")
		require.NoError(t, err)
		assert.Equal(t, map[string]string{"A": "1", "B": "two", "C": "3", "EMPTY": ""}, values)

		require.NoError(t, s.DeleteSecret(ctx, "shop", "web", "B"))
		values, err = s.SecretValues(ctx, "shop", "web")
		require.NoError(t, err)
		assert.Equal(t, map[string]string{"A": "1", "C": "3", "EMPTY": ""}, values)

		values, err = s.SecretValues(ctx, "shop", "api")
		require.NoError(t, err)
		assert.Equal(t, map[string]string{"A": "api-1"}, values, "services do not share secrets")
	})

	t.Run("none", func(t *testing.T) {
		s := newStore(t)
		keys, err := s.ListSecrets(ctx, "shop", "web")
		require.NoError(t, err)
		assert.Empty(t, keys)
		values, err := s.SecretValues(ctx, "shop", "web")
		require.NoError(t, err)
		assert.NotNil(t, values)
		assert.Empty(t, values)
	})

	t.Run("errors", func(t *testing.T) {
		s := newStore(t)
		require.NoError(t, s.SetSecrets(ctx, "shop", "web", map[string]string{"A": "1"}, t0))
		tests := []struct {
			name string
			run  func() error
			want error
		}{
			{name: "delete missing key", run: func() error { return s.DeleteSecret(ctx, "shop", "web", "NOPE") }, want: ErrNotFound},
			{name: "delete in other service", run: func() error { return s.DeleteSecret(ctx, "shop", "api", "A") }, want: ErrNotFound},
			{name: "empty key", run: func() error { return s.SetSecrets(ctx, "shop", "web", map[string]string{"": "x"}, t0) }, want: ErrInvalid},
			{name: "empty service", run: func() error { return s.SetSecrets(ctx, "shop", "", map[string]string{"A": "x"}, t0) }, want: ErrInvalid},
			{name: "empty app", run: func() error { return s.SetSecrets(ctx, "", "web", map[string]string{"A": "x"}, t0) }, want: ErrInvalid},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				require.ErrorIs(t, tt.run(), tt.want)
			})
		}
		values, err := s.SecretValues(ctx, "shop", "web")
		require.NoError(t, err)
		assert.Equal(t, map[string]string{"A": "1"}, values, "a rejected set changes nothing")
	})
}

// TestSecretsNotInPlainText greps every file of the data directory for the
// value, while the store is open (WAL) and after it closed (checkpointed).
func TestSecretsNotInPlainText(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := openStore(t, dir)
	const value = "s3cr3t-postgres://admin:hunter2@db.internal/shop"
	require.NoError(t, s.SetSecrets(ctx, "shop", "web", map[string]string{"DATABASE_URL": value}, t0))
	// Overwriting must not leave the old value behind either.
	require.NoError(t, s.SetSecrets(ctx, "shop", "web", map[string]string{"OTHER": value + "-2"}, t0))

	assertAbsent := func(t *testing.T) {
		t.Helper()
		files, err := os.ReadDir(dir)
		require.NoError(t, err)
		require.NotEmpty(t, files)
		for _, f := range files {
			b, err := os.ReadFile(filepath.Join(dir, f.Name()))
			require.NoError(t, err)
			assert.False(t, bytes.Contains(b, []byte(value)), "%s holds the secret in plain text", f.Name())
			assert.False(t, bytes.Contains(b, []byte("hunter2")), "%s holds part of the secret", f.Name())
		}
	}
	t.Run("while open", assertAbsent)
	require.NoError(t, s.Close())
	t.Run("after close", assertAbsent)

	// The key name is not secret and is stored as is, which proves the grep
	// would find plain text if it were there.
	b, err := os.ReadFile(filepath.Join(dir, DBFile))
	require.NoError(t, err)
	assert.True(t, bytes.Contains(b, []byte("DATABASE_URL")))
}

func TestSecretSealedValuesAreUnique(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	require.NoError(t, s.SetSecrets(ctx, "shop", "web", map[string]string{"A": "same", "B": "same"}, t0))
	var a, b []byte
	require.NoError(t, s.db.QueryRowContext(ctx, `SELECT sealed FROM secrets WHERE key = 'A'`).Scan(&a))
	require.NoError(t, s.db.QueryRowContext(ctx, `SELECT sealed FROM secrets WHERE key = 'B'`).Scan(&b))
	assert.NotEqual(t, a, b, "each value has its own nonce")
	assert.False(t, bytes.Contains(a, []byte("same")))
}

// TestSecretCiphertextBoundToItsKey copies a sealed value to another row and
// checks it does not decrypt there, and that the error names the key but
// never a value.
func TestSecretCiphertextBoundToItsKey(t *testing.T) {
	ctx := context.Background()
	const value = "only-for-shop-web-A"
	tests := []struct {
		name                 string
		toApp, toSvc, toKey  string
		readApp, readService string
	}{
		{name: "other key", toApp: "shop", toSvc: "web", toKey: "B", readApp: "shop", readService: "web"},
		{name: "other service", toApp: "shop", toSvc: "api", toKey: "A", readApp: "shop", readService: "api"},
		{name: "other app", toApp: "blog", toSvc: "web", toKey: "A", readApp: "blog", readService: "web"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStore(t)
			require.NoError(t, s.SetSecrets(ctx, "shop", "web", map[string]string{"A": value}, t0))
			require.NoError(t, s.SetSecrets(ctx, tt.toApp, tt.toSvc, map[string]string{tt.toKey: "original"}, t0))
			_, err := s.db.ExecContext(ctx, `
UPDATE secrets SET sealed = (SELECT sealed FROM secrets WHERE app = 'shop' AND service = 'web' AND key = 'A')
WHERE app = ? AND service = ? AND key = ?`, tt.toApp, tt.toSvc, tt.toKey)
			require.NoError(t, err)

			values, err := s.SecretValues(ctx, tt.readApp, tt.readService)
			require.ErrorIs(t, err, ErrDecrypt)
			assert.Nil(t, values)
			assert.Contains(t, err.Error(), tt.toKey)
			assert.NotContains(t, err.Error(), value)
			assert.NotContains(t, err.Error(), "original")

			// Setting the value again, as the error says, repairs it, and
			// the original still decrypts where it belongs.
			require.NoError(t, s.SetSecrets(ctx, tt.toApp, tt.toSvc, map[string]string{tt.toKey: "fixed"}, t0))
			values, err = s.SecretValues(ctx, tt.readApp, tt.readService)
			require.NoError(t, err)
			assert.Equal(t, "fixed", values[tt.toKey])
			values, err = s.SecretValues(ctx, "shop", "web")
			require.NoError(t, err)
			assert.Equal(t, value, values["A"])
		})
	}
}

func TestSecretKeyFile(t *testing.T) {
	ctx := context.Background()
	// setup makes a directory whose database holds a secret, closed.
	setup := func(t *testing.T) string {
		t.Helper()
		dir := t.TempDir()
		s := openStore(t, dir)
		require.NoError(t, s.SetSecrets(ctx, "shop", "web", map[string]string{"A": "value-a"}, t0))
		require.NoError(t, s.Close())
		return dir
	}
	keyPath := func(dir string) string { return filepath.Join(dir, KeyFile) }

	t.Run("same key reopens", func(t *testing.T) {
		dir := setup(t)
		s := openStore(t, dir)
		values, err := s.SecretValues(ctx, "shop", "web")
		require.NoError(t, err)
		assert.Equal(t, map[string]string{"A": "value-a"}, values)
	})

	tests := []struct {
		name    string
		tamper  func(t *testing.T, dir string)
		wantMsg string
	}{
		{name: "wrong key", tamper: func(t *testing.T, dir string) {
			other := make([]byte, keySize)
			_, err := rand.Read(other)
			require.NoError(t, err)
			require.NoError(t, os.WriteFile(keyPath(dir), other, 0o600))
		}, wantMsg: "is not the key"},
		{name: "missing key", tamper: func(t *testing.T, dir string) {
			require.NoError(t, os.Remove(keyPath(dir)))
		}, wantMsg: "is missing"},
		{name: "truncated key", tamper: func(t *testing.T, dir string) {
			require.NoError(t, os.Truncate(keyPath(dir), 16))
		}, wantMsg: "holds 16 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := setup(t)
			tt.tamper(t, dir)
			before, _ := os.ReadFile(keyPath(dir))

			s, err := Open(dir)
			if s != nil {
				s.Close()
			}
			require.ErrorIs(t, err, ErrKeyMismatch)
			assert.Contains(t, err.Error(), tt.wantMsg)
			assert.Contains(t, err.Error(), "restore the original key file")
			assert.NotContains(t, err.Error(), "value-a")

			after, _ := os.ReadFile(keyPath(dir))
			assert.Equal(t, before, after, "a failed Open leaves the key file alone")
		})
	}

	t.Run("wrong key in a running store", func(t *testing.T) {
		// A value sealed under one key is refused by another; belt and
		// braces behind the key check at Open.
		s := newStore(t)
		require.NoError(t, s.SetSecrets(ctx, "shop", "web", map[string]string{"A": "value-a"}, t0))
		other := make([]byte, keySize)
		_, err := rand.Read(other)
		require.NoError(t, err)
		orig := s.aead
		s.aead, err = newAEAD(other)
		require.NoError(t, err)
		t.Cleanup(func() { s.aead = orig })
		_, err = s.SecretValues(ctx, "shop", "web")
		require.ErrorIs(t, err, ErrDecrypt)
		assert.False(t, strings.Contains(err.Error(), "value-a"))
	})
}

func TestSecretAD(t *testing.T) {
	// Length prefixes keep differently split names apart.
	assert.NotEqual(t, secretAD("a-b", "c", "K"), secretAD("a", "b-c", "K"))
	assert.NotEqual(t, secretAD("a", "bK", ""), secretAD("a", "b", "K"))
	assert.Equal(t, secretAD("a", "b", "K"), secretAD("a", "b", "K"))
}
