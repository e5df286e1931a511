package awsstate

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// DefaultTable is the table berth keeps its state in unless told otherwise.
const DefaultTable = "berth-state"

// tableActiveWithin bounds how long Open waits for a new table to become
// ACTIVE (DynamoDB takes seconds; moto is at once).
const tableActiveWithin = 2 * time.Minute

// DynamoDB is the part of the DynamoDB API the store uses;
// *dynamodb.Client meets it.
type DynamoDB interface {
	DescribeTable(ctx context.Context, in *dynamodb.DescribeTableInput, opts ...func(*dynamodb.Options)) (*dynamodb.DescribeTableOutput, error)
	CreateTable(ctx context.Context, in *dynamodb.CreateTableInput, opts ...func(*dynamodb.Options)) (*dynamodb.CreateTableOutput, error)
	GetItem(ctx context.Context, in *dynamodb.GetItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	PutItem(ctx context.Context, in *dynamodb.PutItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
	UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error)
	DeleteItem(ctx context.Context, in *dynamodb.DeleteItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error)
	Query(ctx context.Context, in *dynamodb.QueryInput, opts ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error)
	TransactWriteItems(ctx context.Context, in *dynamodb.TransactWriteItemsInput, opts ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error)
}

var _ DynamoDB = (*dynamodb.Client)(nil)

// Store is berth's state in one DynamoDB table. It keeps nothing in memory
// but the table's name: two Stores on one table, in one process or on two
// machines, see the same state.
type Store struct {
	db    DynamoDB
	table string
	now   func() time.Time
}

// Open returns the store in table (DefaultTable when ""), creating the table
// if it is missing and waiting until it is ACTIVE. Two berths opening a
// missing table at once both succeed.
func Open(ctx context.Context, db DynamoDB, table string) (*Store, error) {
	if table == "" {
		table = DefaultTable
	}
	s := &Store{db: db, table: table, now: time.Now}
	if err := s.ensureTable(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// Table is the name of the store's table.
func (s *Store) Table() string { return s.table }

func (s *Store) ensureTable(ctx context.Context) error {
	out, err := s.db.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: &s.table})
	var notFound *types.ResourceNotFoundException
	switch {
	case errors.As(err, &notFound):
		_, err = s.db.CreateTable(ctx, &dynamodb.CreateTableInput{
			TableName:   &s.table,
			BillingMode: types.BillingModePayPerRequest,
			AttributeDefinitions: []types.AttributeDefinition{
				{AttributeName: aws.String(attrPK), AttributeType: types.ScalarAttributeTypeS},
				{AttributeName: aws.String(attrSK), AttributeType: types.ScalarAttributeTypeS},
			},
			KeySchema: []types.KeySchemaElement{
				{AttributeName: aws.String(attrPK), KeyType: types.KeyTypeHash},
				{AttributeName: aws.String(attrSK), KeyType: types.KeyTypeRange},
			},
			Tags: []types.Tag{{Key: aws.String("berth.managed"), Value: aws.String("true")}},
		})
		var inUse *types.ResourceInUseException
		if err != nil && !errors.As(err, &inUse) { // in use: another berth is creating it
			return fmt.Errorf("create state table %s: %w", s.table, err)
		}
	case err != nil:
		return fmt.Errorf("describe state table %s: %w", s.table, err)
	case out.Table != nil && out.Table.TableStatus == types.TableStatusActive:
		return nil
	}
	return s.waitActive(ctx)
}

func (s *Store) waitActive(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, tableActiveWithin)
	defer cancel()
	delay := 200 * time.Millisecond
	for {
		out, err := s.db.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: &s.table})
		var notFound *types.ResourceNotFoundException
		switch {
		case errors.As(err, &notFound): // just created: not visible yet
		case err != nil:
			return fmt.Errorf("wait for state table %s: %w", s.table, err)
		case out.Table != nil && out.Table.TableStatus == types.TableStatusActive:
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("state table %s is not ACTIVE after %s: %w", s.table, tableActiveWithin, context.Cause(ctx))
		case <-time.After(delay):
		}
		delay = min(2*delay, 5*time.Second)
	}
}

// App is the state of app in environment env. Both are names spec has
// validated (no "/").
func (s *Store) App(env, app string) *AppState {
	return &AppState{s: s, env: env, app: app, pk: env + "/" + app}
}

// Apps lists the apps with state in env, sorted by name.
func (s *Store) Apps(ctx context.Context, env string) ([]string, error) {
	items, err := s.prefixed(ctx, env, skAppPrefix, false, 0)
	if err != nil {
		return nil, fmt.Errorf("list apps of environment %s: %w", env, err)
	}
	apps := make([]string, 0, len(items))
	for _, it := range items {
		apps = append(apps, strings.TrimPrefix(getS(it, attrSK), skAppPrefix))
	}
	sort.Strings(apps)
	return apps, nil
}

// AppState is one app's state in one environment: its lock, journal,
// revisions, events and tasks.
type AppState struct {
	s        *Store
	env, app string
	pk       string
}

// Env is the environment's name.
func (a *AppState) Env() string { return a.env }

// Name is the app's name.
func (a *AppState) Name() string { return a.app }

// String names the app as errors do: "shop (prod)".
func (a *AppState) String() string { return a.app + " (" + a.env + ")" }

// register records that the app has state in its environment, for Apps.
// It is an idempotent update, so every write that creates state calls it.
func (a *AppState) register(ctx context.Context) error {
	_, err := a.s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                &a.s.table,
		Key:                      key(a.env, skAppPrefix+a.app),
		UpdateExpression:         aws.String("SET #app = :app, #env = :env, #created = if_not_exists(#created, :now)"),
		ExpressionAttributeNames: map[string]string{"#app": "app", "#env": "env", "#created": "created"},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":app": str(a.app), ":env": str(a.env), ":now": str(formatTime(a.s.now())),
		},
	})
	if err != nil {
		return fmt.Errorf("register app %s: %w", a, err)
	}
	return nil
}

// Delete removes every item of the app but its lock, and the app from
// Apps: what `berth destroy` leaves once the app's resources are gone. The
// caller holds the lock (and releases it after).
func (a *AppState) Delete(ctx context.Context) error {
	items, err := a.s.query(ctx, &dynamodb.QueryInput{
		KeyConditionExpression:    aws.String("#pk = :pk"),
		ExpressionAttributeNames:  map[string]string{"#pk": attrPK, "#sk": attrSK},
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": str(a.pk)},
		ProjectionExpression:      aws.String("#pk, #sk"),
	}, 0)
	if err != nil {
		return fmt.Errorf("delete state of app %s: %w", a, err)
	}
	for _, it := range items {
		if getS(it, attrSK) == skLock {
			continue
		}
		if _, err := a.s.db.DeleteItem(ctx, &dynamodb.DeleteItemInput{
			TableName: &a.s.table, Key: map[string]types.AttributeValue{attrPK: it[attrPK], attrSK: it[attrSK]},
		}); err != nil {
			return fmt.Errorf("delete state of app %s: %w", a, err)
		}
	}
	if _, err := a.s.db.DeleteItem(ctx, &dynamodb.DeleteItemInput{
		TableName: &a.s.table, Key: key(a.env, skAppPrefix+a.app),
	}); err != nil {
		return fmt.Errorf("delete state of app %s: %w", a, err)
	}
	return nil
}

// prefixed reads the items of partition pk whose sort key starts with
// prefix, in sort-key order (newestFirst: reversed), at most limit (all
// when 0).
func (s *Store) prefixed(ctx context.Context, pk, prefix string, newestFirst bool, limit int) ([]map[string]types.AttributeValue, error) {
	return s.query(ctx, &dynamodb.QueryInput{
		KeyConditionExpression:    aws.String("#pk = :pk AND begins_with(#sk, :prefix)"),
		ExpressionAttributeNames:  map[string]string{"#pk": attrPK, "#sk": attrSK},
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": str(pk), ":prefix": str(prefix)},
		ScanIndexForward:          aws.Bool(!newestFirst),
	}, limit)
}

// query runs in (on the store's table, consistent) to the end, or until it
// has limit items when limit > 0.
func (s *Store) query(ctx context.Context, in *dynamodb.QueryInput, limit int) ([]map[string]types.AttributeValue, error) {
	in.TableName = &s.table
	in.ConsistentRead = aws.Bool(true)
	var items []map[string]types.AttributeValue
	for {
		if limit > 0 {
			in.Limit = aws.Int32(int32(min(limit-len(items), 1000)))
		}
		out, err := s.db.Query(ctx, in)
		if err != nil {
			return nil, err
		}
		items = append(items, out.Items...)
		if len(out.LastEvaluatedKey) == 0 || (limit > 0 && len(items) >= limit) {
			return items, nil
		}
		in.ExclusiveStartKey = out.LastEvaluatedKey
	}
}

// get reads one item consistently; nil when there is none.
func (s *Store) get(ctx context.Context, k map[string]types.AttributeValue) (map[string]types.AttributeValue, error) {
	out, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: &s.table, Key: k, ConsistentRead: aws.Bool(true)})
	if err != nil {
		return nil, err
	}
	if len(out.Item) == 0 {
		return nil, nil
	}
	return out.Item, nil
}

// Attribute names and sort keys.
const (
	attrPK = "pk"
	attrSK = "sk"

	skLock       = "lock"
	skOp         = "op"
	skRevPrefix  = "rev/"
	skCounterRev = "counter/rev/"
	skEvent      = "event/"
	skTask       = "task/"
	skAppPrefix  = "app/"
)

func key(pk, sk string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{attrPK: str(pk), attrSK: str(sk)}
}

func str(v string) types.AttributeValue { return &types.AttributeValueMemberS{Value: v} }

func num(v int64) types.AttributeValue {
	return &types.AttributeValueMemberN{Value: fmt.Sprint(v)}
}

func getS(item map[string]types.AttributeValue, name string) string {
	if v, ok := item[name].(*types.AttributeValueMemberS); ok {
		return v.Value
	}
	return ""
}

func getN(item map[string]types.AttributeValue, name string) int64 {
	if v, ok := item[name].(*types.AttributeValueMemberN); ok {
		var n int64
		_, _ = fmt.Sscan(v.Value, &n)
		return n
	}
	return 0
}

// timeLayout is RFC 3339 in UTC with fixed-width nanoseconds, so that times
// in sort keys sort as strings in time order (RFC3339Nano trims zeros and
// would put 12:00:00Z after 12:00:00.5Z).
const timeLayout = "2006-01-02T15:04:05.000000000Z"

func formatTime(t time.Time) string { return t.UTC().Format(timeLayout) }

// isConditionFailed reports whether err is a failed condition of a single
// item write, and returns the item as it was when the server checked.
func isConditionFailed(err error) (map[string]types.AttributeValue, bool) {
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		return ccf.Item, true
	}
	return nil, false
}

// canceledBy reports whether err is a transaction canceled because the
// condition of its action i failed.
func canceledBy(err error, i int) bool {
	var tce *types.TransactionCanceledException
	if !errors.As(err, &tce) {
		return false
	}
	return i < len(tce.CancellationReasons) && aws.ToString(tce.CancellationReasons[i].Code) == "ConditionalCheckFailed"
}

// transactRetries bounds the retries of a transaction cancelled by a
// conflict with another request on one of its items (a lease renewal
// landing on the lock item during a journal write, say).
const transactRetries = 5

// transact runs in, again when a conflict cancelled it: the SDK retries
// throttling but not a TransactionCanceledException, which for a conflict
// says nothing was written and trying again is right.
func (s *Store) transact(ctx context.Context, in *dynamodb.TransactWriteItemsInput) error {
	delay := 50 * time.Millisecond
	for try := 0; ; try++ {
		_, err := s.db.TransactWriteItems(ctx, in)
		if err == nil || try == transactRetries || !conflicted(err) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(delay):
		}
		delay *= 2
	}
}

// conflicted reports whether err is a transaction cancelled for a
// conflict only, no condition having failed.
func conflicted(err error) bool {
	var tce *types.TransactionCanceledException
	if !errors.As(err, &tce) {
		return false
	}
	conflict := false
	for _, r := range tce.CancellationReasons {
		switch aws.ToString(r.Code) {
		case "TransactionConflict":
			conflict = true
		case "", "None":
		default:
			return false
		}
	}
	return conflict
}
