package awsstate_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berth-dev/berth/internal/aws/awsstate"
	"github.com/berth-dev/berth/internal/aws/awstest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	awstest.StopMoto()
	os.Exit(code)
}

// client is a DynamoDB client from the standard chain, pointed at moto: a
// new one per call, as each berth process makes its own. moto's server
// closes every connection after its answer (Connection: close), and on a
// loaded machine a read now and then meets the closed connection; the SDK
// retries that, and more attempts than its default 3 keep such a blip from
// failing a test about something else.
func client(t *testing.T) *dynamodb.Client {
	t.Helper()
	cfg, err := config.LoadDefaultConfig(t.Context(), config.WithRetryMaxAttempts(8))
	require.NoError(t, err)
	return dynamodb.NewFromConfig(cfg)
}

// tableName is a table of the test's own, so tests sharing one moto never
// see each other's items.
func tableName(t *testing.T) string {
	t.Helper()
	var b [4]byte
	_, _ = rand.Read(b[:])
	name := regexp.MustCompile(`[^a-zA-Z0-9_.-]+`).ReplaceAllString(t.Name(), "-")
	return "berth-" + strings.ToLower(name) + "-" + hex.EncodeToString(b[:])
}

// open points the chain at moto and opens a fresh store on a table of the
// test's own; teammate opens another Store (another client) on it.
func open(t *testing.T) (*awsstate.Store, func() *awsstate.Store) {
	t.Helper()
	awstest.UseMoto(t)
	table := tableName(t)
	st, err := awsstate.Open(t.Context(), client(t), table)
	require.NoError(t, err)
	return st, func() *awsstate.Store {
		other, err := awsstate.Open(t.Context(), client(t), table)
		require.NoError(t, err)
		return other
	}
}

func TestOpenCreatesTheTableOnce(t *testing.T) {
	awstest.UseMoto(t)
	table := tableName(t)
	db := client(t)

	// Three berths open a missing table at once: one creates it, all use it.
	var wg sync.WaitGroup
	errs := make([]error, 3)
	for i := range errs {
		wg.Go(func() {
			_, errs[i] = awsstate.Open(t.Context(), client(t), table)
		})
	}
	wg.Wait()
	for _, err := range errs {
		require.NoError(t, err)
	}
	st, err := awsstate.Open(t.Context(), db, table)
	require.NoError(t, err)
	assert.Equal(t, table, st.Table())

	out, err := db.DescribeTable(t.Context(), &dynamodb.DescribeTableInput{TableName: &table})
	require.NoError(t, err)
	tb := out.Table
	assert.Equal(t, types.TableStatusActive, tb.TableStatus)
	require.NotNil(t, tb.BillingModeSummary)
	assert.Equal(t, types.BillingModePayPerRequest, tb.BillingModeSummary.BillingMode)
	require.Len(t, tb.KeySchema, 2)
	assert.Equal(t, "pk", *tb.KeySchema[0].AttributeName)
	assert.Equal(t, types.KeyTypeHash, tb.KeySchema[0].KeyType)
	assert.Equal(t, "sk", *tb.KeySchema[1].AttributeName)
	assert.Equal(t, types.KeyTypeRange, tb.KeySchema[1].KeyType)

	tables, err := db.ListTables(t.Context(), &dynamodb.ListTablesInput{})
	require.NoError(t, err)
	n := 0
	for _, name := range tables.TableNames {
		if name == table {
			n++
		}
	}
	assert.Equal(t, 1, n)
}

func TestDefaultTableName(t *testing.T) {
	awstest.UseMoto(t)
	st, err := awsstate.Open(t.Context(), client(t), "")
	require.NoError(t, err)
	assert.Equal(t, "berth-state", st.Table())
}

// A teammate on another machine (a fresh client and Store, nothing shared
// in memory) sees the apps, revisions, events and tasks the first wrote.
func TestTeammateSeesTheSameState(t *testing.T) {
	st, teammate := open(t)
	ctx := t.Context()
	created := time.Date(2026, 12, 6, 12, 3, 4, 500, time.UTC)
	shop := st.App("prod", "shop")

	n, err := shop.NextRevision(ctx, "web")
	require.NoError(t, err)
	rev := awsstate.Revision{
		Number: n, Service: "web", State: awsstate.StateActive,
		Image:          "123.dkr.ecr.eu-west-1.amazonaws.com/shop-web@sha256:abc",
		TaskDefinition: "arn:aws:ecs:eu-west-1:123456789012:task-definition/shop-web:1",
		Slot:           "a", Created: created, By: "alice@laptop", Reason: "deploy",
		WarmUntil: created.Add(10 * time.Minute), Spec: []byte(`{"image":"web"}`),
	}
	require.NoError(t, shop.PutRevision(ctx, rev))
	ev, err := shop.AddEvent(ctx, awsstate.Event{Time: created, Service: "web", Kind: "deploy", Message: "web revision 1 active"})
	require.NoError(t, err)
	exit := 0
	task := awsstate.Task{
		ID: "t-0001", Service: "web", Name: "migrate", Kind: "oneoff", Command: []string{"./migrate", "up"},
		TaskARN: "arn:aws:ecs:eu-west-1:123456789012:task/berth-shop/abc", State: "succeeded",
		ExitCode: &exit, Started: created, Ended: created.Add(time.Second), Revision: n,
	}
	require.NoError(t, shop.PutTask(ctx, task))
	require.NoError(t, st.App("staging", "blog").PutTask(ctx, awsstate.Task{ID: "t1", State: "running", Started: created}))

	other := teammate()
	apps, err := other.Apps(ctx, "prod")
	require.NoError(t, err)
	assert.Equal(t, []string{"shop"}, apps)
	apps, err = other.Apps(ctx, "staging")
	require.NoError(t, err)
	assert.Equal(t, []string{"blog"}, apps)

	theirs := other.App("prod", "shop")
	revs, err := theirs.Revisions(ctx, "web")
	require.NoError(t, err)
	assert.Equal(t, []awsstate.Revision{rev}, revs)
	got, err := theirs.Revision(ctx, "web", 1)
	require.NoError(t, err)
	assert.Equal(t, rev, got)
	events, err := theirs.Events(ctx, time.Time{}, 0)
	require.NoError(t, err)
	assert.Equal(t, []awsstate.Event{ev}, events)
	tasks, err := theirs.Tasks(ctx, 0)
	require.NoError(t, err)
	assert.Equal(t, []awsstate.Task{task}, tasks)

	// The same app in another environment is another app.
	revs, err = other.App("staging", "shop").Revisions(ctx, "web")
	require.NoError(t, err)
	assert.Empty(t, revs)
}

func TestDeleteLeavesNothingButTheLock(t *testing.T) {
	st, teammate := open(t)
	ctx := t.Context()
	shop := st.App("prod", "shop")
	lock, err := shop.Acquire(ctx, awsstate.Holder{Who: "alice", Host: "laptop", Op: "destroy"}, 0, 0)
	require.NoError(t, err)
	require.NoError(t, shop.PutRevision(ctx, awsstate.Revision{Number: 1, Service: "web", State: awsstate.StateActive}))
	_, err = shop.AddEvent(ctx, awsstate.Event{Kind: "deploy", Message: "x"})
	require.NoError(t, err)
	require.NoError(t, shop.PutTask(ctx, awsstate.Task{ID: "t1", State: "running"}))

	require.NoError(t, shop.Delete(ctx))
	other := teammate().App("prod", "shop")
	apps, err := teammate().Apps(ctx, "prod")
	require.NoError(t, err)
	assert.Empty(t, apps)
	revs, err := other.Revisions(ctx, "")
	require.NoError(t, err)
	assert.Empty(t, revs)
	events, err := other.Events(ctx, time.Time{}, 0)
	require.NoError(t, err)
	assert.Empty(t, events)
	// The lock is still the destroyer's until it releases it.
	_, err = other.Acquire(ctx, awsstate.Holder{Who: "bob", Op: "deploy"}, 0, 0)
	require.ErrorIs(t, err, awsstate.ErrLocked)
	require.NoError(t, lock.Release(ctx))
}

func TestContextIsCancelledWhenTheLockIsLost(t *testing.T) {
	st, teammate := open(t)
	ctx := t.Context()
	lock, err := st.App("prod", "shop").Acquire(ctx, awsstate.Holder{Who: "alice", Op: "deploy"}, 600*time.Millisecond, 0)
	require.NoError(t, err)
	guarded, cancel := lock.Context(ctx)
	defer cancel()
	lock.PauseRenewal(true)
	next, err := teammate().App("prod", "shop").Acquire(ctx, awsstate.Holder{Who: "bob", Op: "deploy"}, 0, 5*time.Second)
	require.NoError(t, err)
	defer next.Release(ctx)
	lock.PauseRenewal(false)
	select {
	case <-guarded.Done():
		require.ErrorIs(t, context.Cause(guarded), awsstate.ErrLost)
	case <-time.After(5 * time.Second):
		t.Fatal("the guarded context outlived the lock")
	}
}

func contextWithCancel(t *testing.T) (context.Context, context.CancelFunc) {
	t.Helper()
	return context.WithCancel(t.Context())
}
