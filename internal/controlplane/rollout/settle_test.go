package rollout

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/berth-dev/berth/internal/store"
)

func TestSettleRevisions(t *testing.T) {
	type st = store.RevisionStatus
	const (
		dep  = store.RevisionDeploying
		act  = store.RevisionActive
		prev = store.RevisionPrevious
		ret  = store.RevisionRetired
		fail = store.RevisionFailed
	)
	revs := func(ss ...st) []store.Revision {
		out := make([]store.Revision, len(ss))
		for i, s := range ss {
			out[i] = store.Revision{Number: i + 1, Status: s}
		}
		return out
	}
	tests := []struct {
		name    string
		current int
		revs    []store.Revision
		want    map[int]st // changed revisions only
		kept    int
	}{
		{"settled already", 3, revs(ret, prev, act), map[int]st{}, 2},
		{"died before retiring", 7, revs(ret, prev, prev, prev, prev, prev, act), map[int]st{2: ret, 3: ret, 4: ret, 5: ret}, 6},
		{"died before the switch", 2, revs(prev, act, dep), map[int]st{3: fail}, 1},
		{"died after recording the service, before the statuses", 3, revs(prev, act, dep), map[int]st{3: act, 2: prev, 1: ret}, 2},
		{"died before marking the old one previous", 3, revs(prev, act, act), map[int]st{1: ret, 2: prev}, 2},
		{"rolled back, died before retiring", 2, revs(prev, act, prev), map[int]st{1: ret}, 3},
		{"first deploy died", 0, revs(dep), map[int]st{1: fail}, 0},
		{"nothing yet", 0, nil, map[int]st{}, 0},
		{"failed and retired stay", 4, revs(ret, fail, prev, act), map[int]st{}, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fixes, kept := Settle(tt.current, tt.revs)
			got := map[int]st{}
			for _, f := range fixes {
				got[f.Rev.Number] = f.Status
			}
			assert.Equal(t, tt.want, got)
			assert.Equal(t, tt.kept, kept)
		})
	}
}
