package cache

import (
	"log/slog"
	"net/http"
	"os"
	"slices"
	"sync"
)

// The store indexes entries by primary key and keeps two least-recently-used
// lists bounded by bytes: one of entries whose body is in memory, one of
// entries whose body is in a file. When memory is over its bound, the
// coldest memory entries move to disk (if there is a disk store and they fit
// it) or are dropped; when the disk is over its bound, the coldest files are
// deleted.
//
// One mutex guards the index and both lists; it is held only for map and
// list work. File writes happen outside it, and a lookup returns an entry
// whose response fields never change, so serving needs no lock.

// maxVariants bounds the variants kept for one primary key, so that a
// response varying on a field with many values (User-Agent) cannot fill the
// cache with one URL.
const maxVariants = 16

// entryOverhead is charged to every memory entry on top of its body and
// header, for the entry itself and the index.
const entryOverhead = 512

type store struct {
	mu    sync.Mutex
	index map[string][]*entry // primary key → variants, newest first
	mem   lruList
	disk  lruList

	maxMem  int64
	maxDisk int64
	files   *diskStore // nil: memory only
	stats   *counters
	log     *slog.Logger
}

// lruList is an intrusive doubly linked list of entries with their total
// cost; the front is the most recently used.
type lruList struct {
	head, tail *entry
	bytes      int64
	len        int
}

func (l *lruList) pushFront(e *entry) {
	e.list = l
	e.prev, e.next = nil, l.head
	if l.head != nil {
		l.head.prev = e
	} else {
		l.tail = e
	}
	l.head = e
	l.bytes += e.cost
	l.len++
}

func (l *lruList) remove(e *entry) {
	if e.prev != nil {
		e.prev.next = e.next
	} else {
		l.head = e.next
	}
	if e.next != nil {
		e.next.prev = e.prev
	} else {
		l.tail = e.prev
	}
	e.prev, e.next, e.list = nil, nil, nil
	l.bytes -= e.cost
	l.len--
}

func (l *lruList) moveToFront(e *entry) {
	if l.head == e {
		return
	}
	l.remove(e)
	l.pushFront(e)
}

// memCost is what an in-memory entry is charged against MaxMemoryBytes.
func memCost(e *entry) int64 {
	n := int64(entryOverhead) + int64(len(e.body))
	for k, vs := range e.header {
		n += int64(len(k))
		for _, v := range vs {
			n += int64(len(v)) + 16
		}
	}
	return n
}

// lookup returns the newest variant of key that the request header h
// selects, marking it used, and whether the key had variants at all.
func (s *store) lookup(key string, h http.Header) (*entry, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	vs := s.index[key]
	for _, e := range vs {
		if varyMatches(e.varyNames, e.varyValues, h) {
			if e.list != nil {
				e.list.moveToFront(e)
			}
			return e, true
		}
	}
	return nil, len(vs) > 0
}

// add publishes e, replacing the variant with the same Vary values. It
// reports false when e can never fit. Entries it pushes out of memory are
// moved to disk or dropped before it returns.
func (s *store) add(e *entry) bool {
	return s.publish(nil, e)
}

// replace publishes e in place of old (a refresh after a 304, or a move to
// disk), only if old is still indexed: an entry invalidated meanwhile stays
// gone.
func (s *store) replace(old, e *entry) bool {
	return s.publish(old, e)
}

func (s *store) publish(old, e *entry) bool {
	onDisk := e.file != ""
	if onDisk {
		if s.files == nil || e.cost > s.maxDisk {
			return false
		}
	} else {
		e.cost = memCost(e)
		if e.cost > s.maxMem {
			return false
		}
	}

	var drop []*entry
	s.mu.Lock()
	if old != nil && !old.indexed {
		s.mu.Unlock()
		return false
	}
	vs := s.index[e.key]
	kept := make([]*entry, 1, len(vs)+1)
	kept[0] = e
	for _, v := range vs {
		if v != old && !sameVariant(v, e) {
			kept = append(kept, v)
			continue
		}
		if v.file != "" && v.file != e.file {
			drop = append(drop, v)
		}
		s.unlinkLocked(v)
	}
	for len(kept) > maxVariants {
		last := kept[len(kept)-1]
		s.unlinkLocked(last)
		drop = append(drop, last)
		kept = kept[:len(kept)-1]
	}
	s.index[e.key] = kept
	e.indexed = true
	if onDisk {
		s.disk.pushFront(e)
	} else {
		s.mem.pushFront(e)
	}
	demote, evicted := s.evictLocked()
	s.mu.Unlock()

	s.deleteFiles(drop)
	s.deleteFiles(evicted)
	s.demote(demote)
	return true
}

// sameVariant reports whether two entries of one key answer the same
// requests.
func sameVariant(a, b *entry) bool {
	return slices.Equal(a.varyNames, b.varyNames) && slices.Equal(a.varyValues, b.varyValues)
}

// unlinkLocked takes e out of its list and marks it no longer indexed; the
// caller fixes the index slice.
func (s *store) unlinkLocked(e *entry) {
	if e.list != nil {
		e.list.remove(e)
	}
	e.indexed = false
}

// removeLocked drops e from the index and its list.
func (s *store) removeLocked(e *entry) {
	vs := s.index[e.key]
	if i := slices.Index(vs, e); i >= 0 {
		vs = slices.Delete(vs, i, i+1)
	}
	if len(vs) == 0 {
		delete(s.index, e.key)
	} else {
		s.index[e.key] = vs
	}
	s.unlinkLocked(e)
}

// evictLocked brings both lists under their bounds. Memory entries that
// fit the disk store are returned to be moved there (they stay indexed,
// in no list, while their file is written); the others are dropped. Disk
// entries past the bound are returned for their files to be deleted.
func (s *store) evictLocked() (demote, evicted []*entry) {
	for s.mem.bytes > s.maxMem && s.mem.tail != nil {
		e := s.mem.tail
		s.mem.remove(e)
		if s.files != nil && e.size < s.maxDisk {
			demote = append(demote, e)
			continue
		}
		s.removeLocked(e)
		s.stats.evictions.Add(1)
	}
	for s.disk.bytes > s.maxDisk && s.disk.tail != nil {
		e := s.disk.tail
		s.removeLocked(e)
		evicted = append(evicted, e)
		s.stats.evictions.Add(1)
	}
	return demote, evicted
}

// demote writes each entry's body to a file and publishes the disk copy in
// its place, unless the entry was replaced or removed meanwhile. An entry
// that cannot move is dropped.
func (s *store) demote(es []*entry) {
	for _, e := range es {
		d, err := s.files.write(e, e.body)
		if err == nil && s.replace(e, d) {
			continue
		}
		if err != nil {
			s.log.Warn("cache: cannot move entry to disk", "key", e.key, "err", err)
		} else {
			_ = os.Remove(d.file)
		}
		s.mu.Lock()
		if e.indexed && e.list == nil {
			s.removeLocked(e)
			s.stats.evictions.Add(1)
		}
		s.mu.Unlock()
	}
}

// flushToDisk moves every memory entry to the disk store, most recently
// used last so that it ends up at the front of the disk list.
func (s *store) flushToDisk() {
	s.mu.Lock()
	var es []*entry
	for e := s.mem.tail; e != nil; {
		prev := e.prev
		s.mem.remove(e)
		es = append(es, e)
		e = prev
	}
	s.mu.Unlock()
	s.demote(es)
}

// deleteFiles removes the files of entries that left the store. A request
// serving one of them keeps its open file; one that had not opened it yet
// goes to the origin.
func (s *store) deleteFiles(es []*entry) {
	for _, e := range es {
		if e.file != "" {
			if err := os.Remove(e.file); err != nil && !os.IsNotExist(err) {
				s.log.Warn("cache: cannot delete entry file", "file", e.file, "err", err)
			}
		}
	}
}

// removeKey drops every variant of a primary key, returning how many.
func (s *store) removeKey(key string) int {
	s.mu.Lock()
	vs := slices.Clone(s.index[key])
	for _, e := range vs {
		s.removeLocked(e)
	}
	s.mu.Unlock()
	s.deleteFiles(vs)
	return len(vs)
}

// removeFunc drops every entry for which match is true, returning how many.
func (s *store) removeFunc(match func(*entry) bool) int {
	var gone []*entry
	s.mu.Lock()
	for _, vs := range s.index {
		for _, e := range vs {
			if match(e) {
				gone = append(gone, e)
			}
		}
	}
	for _, e := range gone {
		s.removeLocked(e)
	}
	s.mu.Unlock()
	s.deleteFiles(gone)
	return len(gone)
}

// sizes reports the number of entries and the bytes charged to each list.
func (s *store) sizes() (objects, memBytes, diskBytes int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, vs := range s.index {
		objects += int64(len(vs))
	}
	return objects, s.mem.bytes, s.disk.bytes
}
