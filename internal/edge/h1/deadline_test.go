package h1

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestLazyDeadlineKeeps(t *testing.T) {
	now := time.Now()
	var none time.Time
	for _, tt := range []struct {
		name      string
		set, want time.Time
		keeps     bool
	}{
		{"none set, none wanted", none, none, true},
		{"none wanted: cleared", now.Add(time.Minute), none, false},
		{"one wanted where none is set", none, now.Add(time.Minute), false},
		{"the same", now.Add(time.Minute), now.Add(time.Minute), true},
		{"a minute's wait 100ms later", now.Add(time.Minute - 100*time.Millisecond), now.Add(time.Minute), true},
		{"a minute's wait 300ms later", now.Add(time.Minute - 300*time.Millisecond), now.Add(time.Minute), true},
		{"a minute's wait 301ms later", now.Add(time.Minute - 301*time.Millisecond), now.Add(time.Minute), false},
		{"200ms's wait 6ms later: 1/32 of it", now.Add(194 * time.Millisecond), now.Add(200 * time.Millisecond), true},
		{"200ms's wait 7ms later", now.Add(193 * time.Millisecond), now.Add(200 * time.Millisecond), false},
		{"an earlier one is set exactly", now.Add(time.Minute), now.Add(time.Minute - time.Millisecond), false},
		{"the one set has passed", now.Add(-time.Millisecond), now.Add(time.Millisecond), false},
		{"the one set ends now", now, now.Add(time.Millisecond), false},
		{"forgotten", aLongTimeAgo, now.Add(time.Minute), false},
	} {
		assert.Equal(t, tt.keeps, lazyDeadline{at: tt.set}.keeps(tt.want, now), tt.name)
	}
}
