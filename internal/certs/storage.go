package certs

import (
	"context"
	"sync"
	"time"

	"github.com/caddyserver/certmagic"
)

// drainTimeout bounds how long Close waits for certmagic's background work
// to let go of the disk.
const drainTimeout = 10 * time.Second

// drainingStorage is certmagic's FileStorage with a way to stop: certmagic
// runs orders and renewals in goroutines it does not let us wait for, so all
// its disk access is counted here. Once drain starts, nothing new is
// written (Store, Lock and TryLock fail with ErrClosed), and drain returns
// when in-flight writes have finished and held locks are released. After
// Close, the data directory is quiet: it can be removed, or opened by a new
// Manager without meeting a live lock.
type drainingStorage struct {
	*certmagic.FileStorage

	mu     sync.Mutex
	busy   int            // in-flight writes plus held locks
	held   map[string]int // locks held through this storage, by name
	closed bool
}

var (
	_ certmagic.Storage   = (*drainingStorage)(nil)
	_ certmagic.TryLocker = (*drainingStorage)(nil)
)

func newDrainingStorage(path string) *drainingStorage {
	return &drainingStorage{FileStorage: &certmagic.FileStorage{Path: path}, held: make(map[string]int)}
}

// begin counts one unit of work, refusing new work after drain when
// refuseClosed is set.
func (s *drainingStorage) begin(refuseClosed bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed && refuseClosed {
		return ErrClosed
	}
	s.busy++
	return nil
}

func (s *drainingStorage) end() {
	s.mu.Lock()
	s.busy--
	s.mu.Unlock()
}

// Store implements certmagic.Storage.
func (s *drainingStorage) Store(ctx context.Context, key string, value []byte) error {
	if err := s.begin(true); err != nil {
		return err
	}
	defer s.end()
	return s.FileStorage.Store(ctx, key, value)
}

// Delete implements certmagic.Storage. It is allowed while draining: it
// only cleans up.
func (s *drainingStorage) Delete(ctx context.Context, key string) error {
	_ = s.begin(false)
	defer s.end()
	return s.FileStorage.Delete(ctx, key)
}

// Lock implements certmagic.Locker; a held lock keeps drain waiting.
func (s *drainingStorage) Lock(ctx context.Context, name string) error {
	if err := s.begin(true); err != nil {
		return err
	}
	if err := s.FileStorage.Lock(ctx, name); err != nil {
		s.end()
		return err
	}
	s.mu.Lock()
	s.held[name]++
	s.mu.Unlock()
	return nil
}

// TryLock implements certmagic.TryLocker.
func (s *drainingStorage) TryLock(ctx context.Context, name string) (bool, error) {
	if err := s.begin(true); err != nil {
		return false, err
	}
	ok, err := s.FileStorage.TryLock(ctx, name)
	if !ok || err != nil {
		s.end()
		return ok, err
	}
	s.mu.Lock()
	s.held[name]++
	s.mu.Unlock()
	return true, nil
}

// Unlock implements certmagic.Locker.
func (s *drainingStorage) Unlock(ctx context.Context, name string) error {
	err := s.FileStorage.Unlock(ctx, name)
	s.mu.Lock()
	if s.held[name] > 0 {
		s.held[name]--
		if s.held[name] == 0 {
			delete(s.held, name)
		}
		s.busy--
	}
	s.mu.Unlock()
	return err
}

// drain refuses new writes and waits, up to timeout, for the rest to end. It
// reports whether the storage went quiet in time.
func (s *drainingStorage) drain(timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	for {
		s.mu.Lock()
		busy := s.busy
		s.mu.Unlock()
		if busy == 0 {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
}
