package testutil

import (
	"testing"
	"time"
)

func TestSmoke(t *testing.T) {
	s := time.Now()
	t.Log(TestAppImage(t), time.Since(s))
	s = time.Now()
	t.Log(BusyboxImage(t), time.Since(s))
}
