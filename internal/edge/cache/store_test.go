package cache

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// sizedOrigin answers /NAME?size=N with N bytes derived from the path, and
// max-age=600.
func sizedOrigin(n int64, clk *clock, w http.ResponseWriter, r *http.Request) {
	setDate(w, clk)
	w.Header().Set("Cache-Control", "max-age=600")
	w.Header().Set("Content-Type", "application/octet-stream")
	size, _ := strconv.Atoi(r.URL.Query().Get("size"))
	w.Header().Set("Content-Length", strconv.Itoa(size))
	_, _ = w.Write(sizedBody(r.URL.Path, size))
}

func sizedBody(path string, size int) []byte {
	return bytes.Repeat([]byte(path+"|"), size/(len(path)+1)+1)[:size]
}

func isHit(res result) bool { return strings.Contains(res.Header.Get("Cache-Status"), "; hit") }

func TestMemoryEvictionLRUByBytes(t *testing.T) {
	s := newStack(t, Options{MaxMemoryBytes: 9000, MaxObjectBytes: 4000}, sizedOrigin)
	get := func(name string) result { return s.get(t, "/"+name+"?size=2000") }
	for _, name := range []string{"a", "b", "c"} {
		require.Contains(t, get(name).Header.Get("Cache-Status"), "stored")
	}
	st := s.cache.Stats()
	require.EqualValues(t, 3, st.Objects)
	require.Zero(t, st.Evictions)
	require.True(t, isHit(get("a")), "touch a: b is now the least recently used")

	require.Contains(t, get("d").Header.Get("Cache-Status"), "stored")
	st = s.cache.Stats()
	assert.EqualValues(t, 1, st.Evictions)
	assert.EqualValues(t, 3, st.Objects)
	assert.LessOrEqual(t, st.MemoryBytes, int64(9000))

	for _, name := range []string{"a", "c", "d"} {
		assert.True(t, isHit(get(name)), name+" stays")
	}
	res := get("b")
	assert.False(t, isHit(res), "b was evicted")
	assert.Equal(t, string(sizedBody("/b", 2000)), res.body)
	assert.EqualValues(t, 5, s.origin.hits.Load())
}

func TestObjectLargerThanMaxIsStreamedThrough(t *testing.T) {
	s := newStack(t, Options{MaxObjectBytes: 1000}, sizedOrigin)
	for range 2 {
		res := s.get(t, "/big?size=5000")
		assert.Equal(t, string(sizedBody("/big", 5000)), res.body)
		assert.NotContains(t, res.Header.Get("Cache-Status"), "stored")
	}
	assert.EqualValues(t, 2, s.origin.hits.Load())

	// Without a Content-Length the limit is found while recording (the
	// status, sent before the body, still says "stored").
	s = newStack(t, Options{MaxObjectBytes: 1000}, func(n int64, clk *clock, w http.ResponseWriter, r *http.Request) {
		setDate(w, clk)
		w.Header().Set("Cache-Control", "max-age=600")
		for range 5 {
			_, _ = w.Write(bytes.Repeat([]byte("x"), 1000))
			http.NewResponseController(w).Flush()
		}
	})
	for range 2 {
		res := s.get(t, "/chunked")
		assert.Len(t, res.body, 5000)
		assert.Empty(t, res.Header.Get("Content-Length"))
	}
	assert.EqualValues(t, 2, s.origin.hits.Load())
	assert.Zero(t, s.cache.Stats().Objects)
}

func TestDiskStore(t *testing.T) {
	t.Run("large bodies are recorded to disk", func(t *testing.T) {
		dir := t.TempDir()
		s := newStack(t, Options{Dir: dir, MemoryObjectBytes: 1024}, sizedOrigin)
		want := string(sizedBody("/big", 64<<10))
		require.Equal(t, want, s.get(t, "/big?size=65536").body)
		res := s.get(t, "/big?size=65536")
		require.True(t, isHit(res))
		require.Equal(t, want, res.body)
		require.Equal(t, "65536", res.Header.Get("Content-Length"))
		st := s.cache.Stats()
		assert.Greater(t, st.DiskBytes, int64(64<<10))
		assert.Less(t, st.MemoryBytes, int64(1024))
		assert.Len(t, entryFiles(t, dir), 1)

		res = s.do(t, http.MethodGet, "/big?size=65536", map[string]string{"Range": "bytes=100-199"})
		assert.Equal(t, http.StatusPartialContent, res.StatusCode)
		assert.Equal(t, want[100:200], res.body)
		assert.EqualValues(t, 1, s.origin.hits.Load())
	})

	t.Run("memory eviction moves entries to disk", func(t *testing.T) {
		dir := t.TempDir()
		s := newStack(t, Options{Dir: dir, MaxMemoryBytes: 9000, MaxObjectBytes: 4000}, sizedOrigin)
		names := []string{"a", "b", "c", "d", "e", "f"}
		for _, n := range names {
			s.get(t, "/"+n+"?size=2000")
		}
		st := s.cache.Stats()
		assert.Zero(t, st.Evictions)
		assert.EqualValues(t, len(names), st.Objects)
		assert.Positive(t, st.DiskBytes)
		for _, n := range names {
			res := s.get(t, "/"+n+"?size=2000")
			assert.True(t, isHit(res), n)
			assert.Equal(t, string(sizedBody("/"+n, 2000)), res.body)
		}
		assert.EqualValues(t, len(names), s.origin.hits.Load())
	})

	t.Run("disk is bounded by MaxDiskBytes", func(t *testing.T) {
		dir := t.TempDir()
		s := newStack(t, Options{Dir: dir, MaxDiskBytes: 10000, MemoryObjectBytes: 100, MaxObjectBytes: 5000}, sizedOrigin)
		for i := range 10 {
			s.get(t, fmt.Sprintf("/f%d?size=3000", i))
		}
		st := s.cache.Stats()
		assert.LessOrEqual(t, st.DiskBytes, int64(10000))
		assert.Positive(t, st.Evictions)
		assert.Len(t, entryFiles(t, dir), int(st.Objects), "evicted files are deleted")
		assert.True(t, isHit(s.get(t, "/f9?size=3000")), "the newest stays")
		assert.False(t, isHit(s.get(t, "/f0?size=3000")), "the oldest went")
	})

	t.Run("entries stored without the key cookies are dropped when they are added", func(t *testing.T) {
		dir := t.TempDir()
		s1 := newStack(t, Options{Dir: dir}, sizedOrigin)
		s1.get(t, "/page?size=100") // stored for a visitor without a session
		require.NoError(t, s1.cache.Close())
		require.Len(t, entryFiles(t, dir), 1)

		s2 := newStack(t, Options{Dir: dir, KeyCookies: []string{"session"}}, sizedOrigin)
		require.Zero(t, s2.cache.Stats().Objects, "its key has no session: it could answer a signed-in user")
		assert.Empty(t, entryFiles(t, dir))
		res := s2.do(t, http.MethodGet, "/page?size=100", map[string]string{"Cookie": "session=ALICE"})
		assert.False(t, isHit(res))
		assert.EqualValues(t, 1, s2.origin.hits.Load())
	})

	t.Run("entries survive a new Cache on the same Dir", func(t *testing.T) {
		dir := t.TempDir()
		opts := Options{Dir: dir, MemoryObjectBytes: 1024}
		s1 := newStack(t, opts, sizedOrigin)
		s1.get(t, "/big?size=10000") // recorded to disk
		s1.get(t, "/small?size=100") // in memory until Close
		s1.clock.Advance(0)
		require.NoError(t, s1.cache.Close())
		require.Len(t, entryFiles(t, dir), 2)

		s2 := newStack(t, opts, sizedOrigin)
		s2.clock.Advance(100e9)
		require.EqualValues(t, 2, s2.cache.Stats().Objects)
		for _, tc := range []struct{ path, want string }{
			{"/big?size=10000", string(sizedBody("/big", 10000))},
			{"/small?size=100", string(sizedBody("/small", 100))},
		} {
			res := s2.get(t, tc.path)
			assert.True(t, isHit(res), tc.path)
			assert.Equal(t, tc.want, res.body)
			assert.Equal(t, "100", res.Header.Get("Age"))
		}
		assert.Zero(t, s2.origin.hits.Load())
	})

	t.Run("damaged files are dropped on load", func(t *testing.T) {
		dir := t.TempDir()
		s1 := newStack(t, Options{Dir: dir, MemoryObjectBytes: 100}, sizedOrigin)
		s1.get(t, "/ok?size=1000")
		s1.get(t, "/cut?size=1000")
		require.NoError(t, s1.cache.Close())
		files := entryFiles(t, dir)
		require.Len(t, files, 2)
		// Cut one file short, and add garbage.
		for _, f := range files {
			b, err := os.ReadFile(f)
			require.NoError(t, err)
			if bytes.Contains(b, []byte(`"/cut"`)) {
				require.NoError(t, os.WriteFile(f, b[:len(b)-5], 0o600))
			}
		}
		require.NoError(t, os.WriteFile(filepath.Join(dir, "junk.ent"), []byte("not an entry"), 0o600))

		s2 := newStack(t, Options{Dir: dir, MemoryObjectBytes: 100}, sizedOrigin)
		assert.EqualValues(t, 1, s2.cache.Stats().Objects)
		assert.Len(t, entryFiles(t, dir), 1)
		assert.True(t, isHit(s2.get(t, "/ok?size=1000")))
		assert.False(t, isHit(s2.get(t, "/cut?size=1000")))
	})
}

func entryFiles(t testing.TB, dir string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*"+fileSuffix))
	require.NoError(t, err)
	return files
}
