package cache

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// The disk store keeps one file per entry in Options.Dir:
//
//	<random id>.ent = body | metadata (JSON) | metadata length (8 bytes, big endian) | magic (8 bytes)
//
// The body comes first so that a response recorded straight to a temporary
// file (one larger than MemoryObjectBytes) needs no copy: the metadata is
// appended and the file renamed into place. Files are written under
// Dir/tmp and renamed, so a reader never sees a partial file; they are not
// fsynced, because a cache is disposable: a file cut short by a crash fails
// the length and magic checks when the next Cache loads the directory, and
// is deleted.
//
// Entries survive a restart: Close writes the entries held in memory to
// files too, and New reads every file's metadata back into the index,
// oldest first. A refresh after a 304 updates the entry in memory
// only, so after a restart such an entry is older than it was and is
// revalidated sooner; that is the one thing lost.

const (
	fileSuffix  = ".ent"
	fileMagic   = "berthc01"
	trailerSize = 16
	// fileVersion 2: entries of version 1 may be responses to requests
	// with cookies stored under the earlier, looser rules (cookies.go), so
	// they are dropped rather than served.
	fileVersion = 2
)

// diskStore writes and reads entry files in one directory.
type diskStore struct {
	dir string
	tmp string
}

// fileMeta is the metadata part of an entry file.
type fileMeta struct {
	Version      int         `json:"v"`
	Key          string      `json:"key"`
	Method       string      `json:"method"`
	Host         string      `json:"host"`
	Path         string      `json:"path"`
	VaryNames    []string    `json:"vary_names,omitempty"`
	VaryValues   []string    `json:"vary_values,omitempty"`
	Status       int         `json:"status"`
	Header       http.Header `json:"header"`
	RequestTime  time.Time   `json:"request_time"`
	ResponseTime time.Time   `json:"response_time"`
	InitialAge   int64       `json:"initial_age_ns"`
	Size         int64       `json:"size"`
}

func openDiskStore(dir string) (*diskStore, error) {
	d := &diskStore{dir: dir, tmp: filepath.Join(dir, "tmp")}
	if err := os.MkdirAll(d.tmp, 0o700); err != nil {
		return nil, fmt.Errorf("%w: Dir %q: %w (choose a writable directory)", ErrInvalidOptions, dir, err)
	}
	// Files left in tmp by a process that stopped mid-write are garbage.
	old, _ := os.ReadDir(d.tmp)
	for _, f := range old {
		_ = os.Remove(filepath.Join(d.tmp, f.Name()))
	}
	return d, nil
}

// createTemp opens a new temporary file for a body being recorded.
func (d *diskStore) createTemp() (*os.File, error) {
	return os.CreateTemp(d.tmp, "body-*")
}

// write stores e with body in a new file and returns the disk copy of e.
func (d *diskStore) write(e *entry, body []byte) (*entry, error) {
	f, err := d.createTemp()
	if err != nil {
		return nil, err
	}
	if _, err := f.Write(body); err != nil {
		_ = f.Close()
		_ = os.Remove(f.Name())
		return nil, err
	}
	return d.commit(f, e)
}

// commit appends e's metadata to f, which holds exactly e's body, closes it
// and renames it into the store. It returns the disk copy of e, or removes
// f on failure.
func (d *diskStore) commit(f *os.File, e *entry) (*entry, error) {
	tmpName := f.Name()
	fail := func(err error) (*entry, error) {
		_ = f.Close()
		_ = os.Remove(tmpName)
		return nil, err
	}
	meta, err := json.Marshal(fileMeta{
		Version: fileVersion, Key: e.key, Method: e.method, Host: e.host, Path: e.path,
		VaryNames: e.varyNames, VaryValues: e.varyValues,
		Status: e.status, Header: e.header,
		RequestTime: e.requestTime, ResponseTime: e.responseTime, InitialAge: int64(e.initialAge),
		Size: e.size,
	})
	if err != nil {
		return fail(err)
	}
	var trailer [trailerSize]byte
	binary.BigEndian.PutUint64(trailer[:8], uint64(len(meta)))
	copy(trailer[8:], fileMagic)
	if _, err := f.Write(append(meta, trailer[:]...)); err != nil {
		return fail(err)
	}
	if err := f.Close(); err != nil {
		return fail(err)
	}
	name := filepath.Join(d.dir, newID()+fileSuffix)
	if err := os.Rename(tmpName, name); err != nil {
		_ = os.Remove(tmpName)
		return nil, err
	}
	de := e.clone(nil, name)
	de.cost = e.size + int64(len(meta)) + trailerSize
	return de, nil
}

func newID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// load reads the metadata of every entry file, oldest first, deleting files
// that are damaged or of another version.
func (d *diskStore) load(defaultTTL time.Duration, statusHeader string, log *slog.Logger) []*entry {
	dirents, err := os.ReadDir(d.dir)
	if err != nil {
		log.Warn("cache: cannot read disk store", "dir", d.dir, "err", err)
		return nil
	}
	type loaded struct {
		e     *entry
		mtime time.Time
	}
	var all []loaded
	for _, de := range dirents {
		if de.IsDir() || !strings.HasSuffix(de.Name(), fileSuffix) {
			continue
		}
		name := filepath.Join(d.dir, de.Name())
		e, mtime, err := readEntryFile(name, defaultTTL, statusHeader)
		if err != nil {
			log.Info("cache: dropping unreadable entry file", "file", name, "err", err)
			_ = os.Remove(name)
			continue
		}
		all = append(all, loaded{e, mtime})
	}
	slices.SortFunc(all, func(a, b loaded) int { return a.mtime.Compare(b.mtime) })
	out := make([]*entry, len(all))
	for i, l := range all {
		out[i] = l.e
	}
	return out
}

var errDamaged = errors.New("damaged entry file")

func readEntryFile(name string, defaultTTL time.Duration, statusHeader string) (*entry, time.Time, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, time.Time{}, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, time.Time{}, err
	}
	if st.Size() < trailerSize {
		return nil, time.Time{}, errDamaged
	}
	var trailer [trailerSize]byte
	if _, err := f.ReadAt(trailer[:], st.Size()-trailerSize); err != nil {
		return nil, time.Time{}, err
	}
	if string(trailer[8:]) != fileMagic {
		return nil, time.Time{}, errDamaged
	}
	metaLen := int64(binary.BigEndian.Uint64(trailer[:8]))
	if metaLen <= 0 || metaLen > st.Size()-trailerSize {
		return nil, time.Time{}, errDamaged
	}
	metaBytes := make([]byte, metaLen)
	if _, err := f.ReadAt(metaBytes, st.Size()-trailerSize-metaLen); err != nil {
		return nil, time.Time{}, err
	}
	var m fileMeta
	dec := json.NewDecoder(bytes.NewReader(metaBytes))
	if err := dec.Decode(&m); err != nil {
		return nil, time.Time{}, fmt.Errorf("%w: %w", errDamaged, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, time.Time{}, errDamaged
	}
	if m.Version != fileVersion || m.Size != st.Size()-trailerSize-metaLen || m.Key == "" {
		return nil, time.Time{}, errDamaged
	}
	if m.Header == nil {
		m.Header = http.Header{}
	}
	e := newEntry(response{
		key: m.Key, method: m.Method, host: m.Host, path: m.Path,
		varyNames: m.VaryNames, varyValues: m.VaryValues,
		status: m.Status, header: m.Header, file: name, size: m.Size,
		requestTime: m.RequestTime, responseTime: m.ResponseTime,
	}, defaultTTL, statusHeader)
	e.initialAge = time.Duration(m.InitialAge)
	e.cost = st.Size()
	return e, st.ModTime(), nil
}
