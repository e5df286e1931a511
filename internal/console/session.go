package console

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"sync"
	"time"
)

// Lifetimes of the sign-in links and of the sessions they open.
const (
	// SignInTTL is how long a one-time sign-in URL stays good.
	SignInTTL = 2 * time.Minute
	// SessionTTL is how long a browser stays signed in.
	SessionTTL = 12 * time.Hour
)

// session is one signed-in browser.
type session struct {
	csrf    string
	expires time.Time
}

// sessions holds the one-time sign-in tokens and the open sessions, in
// memory: a daemon restart signs every browser out.
type sessions struct {
	mu       sync.Mutex
	now      func() time.Time
	signins  map[string]time.Time // token -> expiry
	sessions map[string]session   // cookie value -> session
}

func newSessions(now func() time.Time) *sessions {
	return &sessions{now: now, signins: map[string]time.Time{}, sessions: map[string]session{}}
}

// newSignIn mints a one-time token, good until the time it returns.
func (s *sessions) newSignIn() (string, time.Time) {
	tok := randomToken()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.prune()
	exp := s.now().Add(SignInTTL)
	s.signins[tok] = exp
	return tok, exp
}

// redeem spends a sign-in token (once) and opens a session; ok is false
// for a token unknown, used or expired.
func (s *sessions) redeem(tok string) (id string, sess session, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	exp, found := s.signins[tok]
	if !found {
		return "", session{}, false
	}
	delete(s.signins, tok)
	if !s.now().Before(exp) {
		return "", session{}, false
	}
	id = randomToken()
	sess = session{csrf: randomToken(), expires: s.now().Add(SessionTTL)}
	s.sessions[id] = sess
	return id, sess, true
}

// lookup finds the open session of a cookie value.
func (s *sessions) lookup(id string) (session, bool) {
	if id == "" {
		return session{}, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sess, ok := s.sessions[id]
	if !ok {
		return session{}, false
	}
	if !s.now().Before(sess.expires) {
		delete(s.sessions, id)
		return session{}, false
	}
	return sess, true
}

// end closes a session (sign out).
func (s *sessions) end(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.sessions, id)
}

// prune drops expired tokens and sessions; s.mu is held.
func (s *sessions) prune() {
	now := s.now()
	for k, exp := range s.signins {
		if !now.Before(exp) {
			delete(s.signins, k)
		}
	}
	for k, sess := range s.sessions {
		if !now.Before(sess.expires) {
			delete(s.sessions, k)
		}
	}
}

// sameToken compares secrets in constant time.
func sameToken(a, b string) bool {
	return a != "" && subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

func randomToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	return hex.EncodeToString(b)
}
