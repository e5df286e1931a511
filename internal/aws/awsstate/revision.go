package awsstate

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// State is where a revision is in its life. The deploy verbs move it; the
// store records each move on the condition that the revision is still in
// the state the mover saw.
//
//	          targets healthy,
//	          traffic switched        another revision active
//	deploying ─────────────▶ active ─────────────────────────▶ previous
//	    │                      ▲                                 │  (slot warm
//	    │ image missing,       │  rollback (weights back, or     │   until
//	    │ crash, unhealthy,    └──── scale up then switch) ──────┤   WarmUntil)
//	    │ release failed                                         │
//	    ▼                                                        ▼ window over, or
//	  failed                                                  retired  another previous
type State string

// Revision states.
const (
	StateDeploying State = "deploying"
	StateActive    State = "active"
	StatePrevious  State = "previous"
	StateFailed    State = "failed"
	StateRetired   State = "retired"
)

// String is the state as shown and stored.
func (st State) String() string { return string(st) }

// Valid reports whether st is one of the states above.
func (st State) Valid() bool {
	switch st {
	case StateDeploying, StateActive, StatePrevious, StateFailed, StateRetired:
		return true
	}
	return false
}

// ErrNotFound is what reading an item that does not exist answers
// (wrapped; test with errors.Is).
var ErrNotFound = errors.New("not found")

// Revision is one version of a service in an environment, numbered 1, 2,
// 3... per service by NextRevision.
type Revision struct {
	Number  int    `dynamodbav:"number"`
	Service string `dynamodbav:"service"`
	State   State  `dynamodbav:"state"`
	// Image is the pinned reference (repository@sha256:...).
	Image string `dynamodbav:"image"`
	// TaskDefinition is the ARN of the task definition registered for it.
	TaskDefinition string `dynamodbav:"task_definition,omitempty"`
	// Slot is the ECS service slot that runs it, "a" or "b".
	Slot    string    `dynamodbav:"slot,omitempty"`
	Created time.Time `dynamodbav:"created"`
	// By is who deployed it (alice@laptop); Reason why its state is what
	// it is (the deploy's message, the failure, the rollback).
	By     string `dynamodbav:"by,omitempty"`
	Reason string `dynamodbav:"reason,omitempty"`
	// WarmUntil is when a previous revision's slot is scaled to 0; until
	// then a rollback to it is a traffic switch.
	WarmUntil time.Time `dynamodbav:"warm_until,omitempty"`
	// Spec is the JSON of the spec.Service it runs (secrets as references).
	Spec []byte `dynamodbav:"spec,omitempty"`
}

// StateError says a revision was not in the state a move expected: another
// berth moved it first, or it does not exist (Got is "").
type StateError struct {
	Env, App, Service string
	Number            int
	Want, Got         State
}

// Error is one line naming the revision, what it was and what was expected.
func (e *StateError) Error() string {
	if e.Got == "" {
		return fmt.Sprintf("revision %d of %s/%s (%s) does not exist", e.Number, e.App, e.Service, e.Env)
	}
	return fmt.Sprintf("revision %d of %s/%s (%s) is %s, not %s: another berth changed it; see berth revisions --env %s %s",
		e.Number, e.App, e.Service, e.Env, e.Got, e.Want, e.Env, e.Service)
}

// Is makes a missing revision's StateError ErrNotFound.
func (e *StateError) Is(target error) bool { return target == ErrNotFound && e.Got == "" }

func revSK(service string, n int) string { return fmt.Sprintf("%s%s/%010d", skRevPrefix, service, n) }

// NextRevision allocates the next revision number of service: 1 for the
// first, then one more than the last allocated, whoever allocated it.
// Numbers are never reused, even when their deploy failed.
func (a *AppState) NextRevision(ctx context.Context, service string) (int, error) {
	out, err := a.s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 &a.s.table,
		Key:                       key(a.pk, skCounterRev+service),
		UpdateExpression:          aws.String("ADD #n :one"),
		ExpressionAttributeNames:  map[string]string{"#n": "n"},
		ExpressionAttributeValues: map[string]types.AttributeValue{":one": num(1)},
		ReturnValues:              types.ReturnValueUpdatedNew,
	})
	if err != nil {
		return 0, fmt.Errorf("allocate revision number of %s/%s (%s): %w", a.app, service, a.env, err)
	}
	n := getN(out.Attributes, "n")
	if n <= 0 {
		return 0, fmt.Errorf("allocate revision number of %s/%s (%s): the counter answered %v", a.app, service, a.env, out.Attributes["n"])
	}
	return int(n), nil
}

// PutRevision creates or replaces revision r.Number of r.Service.
func (a *AppState) PutRevision(ctx context.Context, r Revision) error {
	if r.Number <= 0 || r.Service == "" || !r.State.Valid() {
		return fmt.Errorf("write revision %d of %s/%s (%s): needs a number, a service and a state, has %d, %q, %q",
			r.Number, a.app, r.Service, a.env, r.Number, r.Service, r.State)
	}
	item, err := attributevalue.MarshalMap(r)
	if err == nil {
		maps.Copy(item, key(a.pk, revSK(r.Service, r.Number)))
		err = a.register(ctx)
	}
	if err == nil {
		_, err = a.s.db.PutItem(ctx, &dynamodb.PutItemInput{TableName: &a.s.table, Item: item})
	}
	if err != nil {
		return fmt.Errorf("write revision %d of %s/%s (%s): %w", r.Number, a.app, r.Service, a.env, err)
	}
	return nil
}

// Revision reads revision n of service (ErrNotFound when missing).
func (a *AppState) Revision(ctx context.Context, service string, n int) (Revision, error) {
	item, err := a.s.get(ctx, key(a.pk, revSK(service, n)))
	if err == nil && item == nil {
		err = ErrNotFound
	}
	var r Revision
	if err == nil {
		r, err = decodeRevision(item)
	}
	if err != nil {
		return Revision{}, fmt.Errorf("read revision %d of %s/%s (%s): %w", n, a.app, service, a.env, err)
	}
	return r, nil
}

// Revisions lists the revisions of service, newest first; of every service
// (by service name, then newest first) when service is "".
func (a *AppState) Revisions(ctx context.Context, service string) ([]Revision, error) {
	prefix, what := skRevPrefix, a.String()
	if service != "" {
		prefix, what = skRevPrefix+service+"/", fmt.Sprintf("%s/%s (%s)", a.app, service, a.env)
	}
	items, err := a.s.prefixed(ctx, a.pk, prefix, true, 0)
	if err != nil {
		return nil, fmt.Errorf("read revisions of %s: %w", what, err)
	}
	revs := make([]Revision, 0, len(items))
	for _, it := range items {
		r, err := decodeRevision(it)
		if err != nil {
			return nil, fmt.Errorf("read revisions of %s: %s: %w", what, getS(it, attrSK), err)
		}
		revs = append(revs, r)
	}
	slices.SortStableFunc(revs, func(x, y Revision) int {
		return cmp.Or(strings.Compare(x.Service, y.Service), cmp.Compare(y.Number, x.Number))
	})
	return revs, nil
}

func decodeRevision(item map[string]types.AttributeValue) (Revision, error) {
	var r Revision
	err := attributevalue.UnmarshalMap(item, &r)
	r.Created, r.WarmUntil = utc(r.Created), utc(r.WarmUntil)
	return r, err
}

// StateChange moves one revision from one state to another, and sets its
// WarmUntil and Reason when they are not zero.
type StateChange struct {
	Service   string
	Number    int
	From, To  State
	WarmUntil time.Time
	Reason    string
}

// UpdateRevisionState moves revision n of service from one state to
// another, on the condition that it is still in from; otherwise nothing
// changes and the error is a *StateError saying what the state was.
func (a *AppState) UpdateRevisionState(ctx context.Context, service string, n int, from, to State) error {
	return a.UpdateRevisionStates(ctx, StateChange{Service: service, Number: n, From: from, To: to})
}

// UpdateRevisionStates makes all the changes or none (one transaction):
// a switch moves the new revision to active and the old one to previous
// together. A change whose revision is not in its From state fails them
// all with a *StateError.
func (a *AppState) UpdateRevisionStates(ctx context.Context, changes ...StateChange) error {
	updates := make([]*types.Update, len(changes))
	for i, c := range changes {
		if !c.To.Valid() || !c.From.Valid() {
			return fmt.Errorf("move revision %d of %s/%s (%s) from %q to %q: not a revision state", c.Number, a.app, c.Service, a.env, c.From, c.To)
		}
		updates[i] = a.stateUpdate(c)
	}
	var err error
	if len(changes) == 1 {
		u := updates[0]
		_, err = a.s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
			TableName: u.TableName, Key: u.Key, UpdateExpression: u.UpdateExpression,
			ConditionExpression: u.ConditionExpression, ExpressionAttributeNames: u.ExpressionAttributeNames,
			ExpressionAttributeValues:           u.ExpressionAttributeValues,
			ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
		})
		if cur, failed := isConditionFailed(err); failed {
			c := changes[0]
			if cur != nil && State(getS(cur, "state")) == c.To && c.From != c.To {
				// Already moved: by a retry of this very write whose first
				// answer was lost (the SDK retries), or by another berth
				// making the same move. The revision is where it should be.
				// (A transaction needs no such care: the SDK gives it a
				// client request token, which makes its retries idempotent.)
				return nil
			}
			return a.stateError(ctx, c, cur)
		}
	} else if len(changes) > 1 {
		items := make([]types.TransactWriteItem, len(updates))
		for i, u := range updates {
			u.ReturnValuesOnConditionCheckFailure = types.ReturnValuesOnConditionCheckFailureAllOld
			items[i] = types.TransactWriteItem{Update: u}
		}
		err = a.s.transact(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: items})
		var tce *types.TransactionCanceledException
		if errors.As(err, &tce) {
			for i := range changes {
				if canceledBy(err, i) {
					return a.stateError(ctx, changes[i], tce.CancellationReasons[i].Item)
				}
			}
		}
	}
	if err != nil {
		c := changes[0]
		return fmt.Errorf("move revision %d of %s/%s (%s) to %s: %w", c.Number, a.app, c.Service, a.env, c.To, err)
	}
	return nil
}

func (a *AppState) stateUpdate(c StateChange) *types.Update {
	set := "SET #state = :to"
	values := map[string]types.AttributeValue{":to": str(string(c.To)), ":from": str(string(c.From))}
	names := map[string]string{"#pk": attrPK, "#state": "state"}
	if !c.WarmUntil.IsZero() {
		set += ", #warm = :warm"
		names["#warm"] = "warm_until"
		av, _ := attributevalue.Marshal(c.WarmUntil)
		values[":warm"] = av
	}
	if c.Reason != "" {
		set += ", #reason = :reason"
		names["#reason"] = "reason"
		values[":reason"] = str(c.Reason)
	}
	return &types.Update{
		TableName:                 &a.s.table,
		Key:                       key(a.pk, revSK(c.Service, c.Number)),
		UpdateExpression:          aws.String(set),
		ConditionExpression:       aws.String("attribute_exists(#pk) AND #state = :from"),
		ExpressionAttributeNames:  names,
		ExpressionAttributeValues: values,
	}
}

// stateError reports a failed move; cur is the item the server returned
// with the failure, or nil if it returned none (then it is read, for the
// message only).
func (a *AppState) stateError(ctx context.Context, c StateChange, cur map[string]types.AttributeValue) error {
	if cur == nil {
		var err error
		if cur, err = a.s.get(ctx, key(a.pk, revSK(c.Service, c.Number))); err != nil {
			return fmt.Errorf("move revision %d of %s/%s (%s) to %s: it was not %s, and reading it failed: %w",
				c.Number, a.app, c.Service, a.env, c.To, c.From, err)
		}
	}
	return &StateError{Env: a.env, App: a.app, Service: c.Service, Number: c.Number, Want: c.From, Got: State(getS(cur, "state"))}
}

func utc(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return t.UTC()
}
