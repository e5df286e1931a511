package awsstate

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// Op is the journal of an operation in flight on an app: what it is and
// which of its steps are done. The operation writes it after each step,
// under the app's lock, and clears it when it ends; an Op found by the next
// verb (after taking the lock) belongs to a berth that was interrupted, and
// says what to finish or undo.
type Op struct {
	// Kind is the verb: deploy, rollback, scale, destroy, ...
	Kind string `dynamodbav:"kind"`
	// Revisions are the revision numbers the operation moves each service
	// to, by service name.
	Revisions map[string]int `dynamodbav:"revisions,omitempty"`
	// Steps are the steps done, in order.
	Steps   []Step    `dynamodbav:"steps,omitempty"`
	Started time.Time `dynamodbav:"started"`
	// Holder is the berth that ran it (PutOp fills it from the lock).
	Holder Holder `dynamodbav:"holder"`
}

// Step is one done step of an Op: its name and what undoing or finishing
// needs to know (the ARN it created, the weights it replaced, ...).
type Step struct {
	Name   string          `dynamodbav:"name"`
	Detail json.RawMessage `dynamodbav:"detail,omitempty"`
	At     time.Time       `dynamodbav:"at"`
}

// Step returns the done step called name, if there is one.
func (o *Op) Step(name string) (Step, bool) {
	for _, s := range o.Steps {
		if s.Name == name {
			return s, true
		}
	}
	return Step{}, false
}

// Done appends the step name with detail (marshalled to JSON; nil for
// none), done at at. Write the Op with PutOp to record it.
func (o *Op) Done(name string, detail any, at time.Time) error {
	var raw json.RawMessage
	if detail != nil {
		b, err := json.Marshal(detail)
		if err != nil {
			return fmt.Errorf("journal step %s: %w", name, err)
		}
		raw = b
	}
	o.Steps = append(o.Steps, Step{Name: name, Detail: raw, At: at})
	return nil
}

// PutOp writes op as the app's journal, replacing the one there, in one
// transaction with a check that this lock still holds the app: a berth
// whose lease ran out cannot overwrite its successor's journal. A lost lock
// is ErrLost.
func (l *Lock) PutOp(ctx context.Context, op Op) error {
	if op.Holder == (Holder{}) {
		op.Holder = l.holder
	}
	item, err := attributevalue.MarshalMap(op)
	if err != nil {
		return fmt.Errorf("write journal of app %s: %w", l.a, err)
	}
	maps.Copy(item, key(l.a.pk, skOp))
	return l.underLock(ctx, "write journal", types.TransactWriteItem{
		Put: &types.Put{TableName: &l.a.s.table, Item: item},
	})
}

// ClearOp deletes the app's journal: the operation ended, done or undone.
func (l *Lock) ClearOp(ctx context.Context) error {
	return l.underLock(ctx, "clear journal", types.TransactWriteItem{
		Delete: &types.Delete{TableName: &l.a.s.table, Key: key(l.a.pk, skOp)},
	})
}

// underLock runs w in a transaction whose first action checks that the
// lock item still carries this lock's token.
func (l *Lock) underLock(ctx context.Context, what string, w types.TransactWriteItem) error {
	l.mu.Lock()
	released := l.released
	l.mu.Unlock()
	if released {
		return fmt.Errorf("%s of app %s: the lock was released: %w", what, l.a, ErrLost)
	}
	err := l.a.s.transact(ctx, &dynamodb.TransactWriteItemsInput{
		TransactItems: []types.TransactWriteItem{
			{ConditionCheck: &types.ConditionCheck{
				TableName:                 &l.a.s.table,
				Key:                       key(l.a.pk, skLock),
				ConditionExpression:       aws.String("#token = :token"),
				ExpressionAttributeNames:  map[string]string{"#token": "token"},
				ExpressionAttributeValues: map[string]types.AttributeValue{":token": str(l.token)},
			}},
			w,
		},
	})
	if canceledBy(err, 0) {
		l.markLost()
		return fmt.Errorf("%s of app %s: another berth holds the app's lock now (this one's lease expired): %w", what, l.a, ErrLost)
	}
	if err != nil {
		return fmt.Errorf("%s of app %s: %w", what, l.a, err)
	}
	return nil
}

// Op reads the app's journal: the operation in flight, or false when none
// is. Read it after taking the lock: an Op then is an interrupted one.
func (a *AppState) Op(ctx context.Context) (*Op, bool, error) {
	item, err := a.s.get(ctx, key(a.pk, skOp))
	if err != nil {
		return nil, false, fmt.Errorf("read journal of app %s: %w", a, err)
	}
	if item == nil {
		return nil, false, nil
	}
	var op Op
	if err := attributevalue.UnmarshalMap(item, &op); err != nil {
		return nil, false, fmt.Errorf("read journal of app %s: %w", a, err)
	}
	return &op, true, nil
}
