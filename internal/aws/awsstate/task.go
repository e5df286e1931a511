package awsstate

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// MinTaskIDPrefix is the shortest prefix Task accepts in place of a whole
// task ID.
const MinTaskIDPrefix = 4

// Task is one run of a command on the environment's cluster: `berth task
// run`, a release command or a scheduled run.
type Task struct {
	ID      string `dynamodbav:"id"`
	Service string `dynamodbav:"service,omitempty"`
	// Name is the task's name under tasks:, "" for an ad-hoc command.
	Name string `dynamodbav:"name,omitempty"`
	// Kind is "oneoff", "release" or "scheduled".
	Kind    string   `dynamodbav:"kind,omitempty"`
	Command []string `dynamodbav:"command,omitempty"`
	// TaskARN is ECS's task, "" until RunTask answered.
	TaskARN string `dynamodbav:"task_arn,omitempty"`
	// State is running, succeeded, failed, stopped, timeout or lost.
	State string `dynamodbav:"state"`
	// ExitCode is the main container's, nil until it exited.
	ExitCode *int      `dynamodbav:"exit_code,omitempty"`
	Started  time.Time `dynamodbav:"started"`
	Ended    time.Time `dynamodbav:"ended,omitempty"`
	Revision int       `dynamodbav:"revision,omitempty"`
	// Message says why it ended as it did.
	Message string `dynamodbav:"message,omitempty"`
}

// PutTask creates or replaces the task t.ID.
func (a *AppState) PutTask(ctx context.Context, t Task) error {
	if t.ID == "" || strings.Contains(t.ID, "/") {
		return fmt.Errorf("write task of app %s: bad task ID %q", a, t.ID)
	}
	item, err := attributevalue.MarshalMap(t)
	if err == nil {
		maps.Copy(item, key(a.pk, skTask+t.ID))
		err = a.register(ctx)
	}
	if err == nil {
		_, err = a.s.db.PutItem(ctx, &dynamodb.PutItemInput{TableName: &a.s.table, Item: item})
	}
	if err != nil {
		return fmt.Errorf("write task %s of app %s: %w", t.ID, a, err)
	}
	return nil
}

// Task reads the task id, or the only task whose ID starts with id when id
// has at least MinTaskIDPrefix characters (ErrNotFound when none does).
func (a *AppState) Task(ctx context.Context, id string) (Task, error) {
	item, err := a.s.get(ctx, key(a.pk, skTask+id))
	if err != nil {
		return Task{}, fmt.Errorf("read task %s of app %s: %w", id, a, err)
	}
	if item == nil && len(id) >= MinTaskIDPrefix {
		items, err := a.s.prefixed(ctx, a.pk, skTask+id, false, 2)
		if err != nil {
			return Task{}, fmt.Errorf("read task %s of app %s: %w", id, a, err)
		}
		if len(items) > 1 {
			return Task{}, fmt.Errorf("task ID %s of app %s is ambiguous: give more of it (berth task ls)", id, a)
		}
		if len(items) == 1 {
			item = items[0]
		}
	}
	if item == nil {
		return Task{}, fmt.Errorf("read task %s of app %s: %w", id, a, ErrNotFound)
	}
	t, err := decodeTask(item)
	if err != nil {
		return Task{}, fmt.Errorf("read task %s of app %s: %w", id, a, err)
	}
	return t, nil
}

// Tasks lists the app's tasks, newest started first, up to limit (all
// when limit <= 0).
func (a *AppState) Tasks(ctx context.Context, limit int) ([]Task, error) {
	items, err := a.s.prefixed(ctx, a.pk, skTask, false, 0)
	if err != nil {
		return nil, fmt.Errorf("read tasks of app %s: %w", a, err)
	}
	tasks := make([]Task, 0, len(items))
	for _, it := range items {
		t, err := decodeTask(it)
		if err != nil {
			return nil, fmt.Errorf("read tasks of app %s: %s: %w", a, getS(it, attrSK), err)
		}
		tasks = append(tasks, t)
	}
	slices.SortFunc(tasks, func(x, y Task) int {
		return cmp.Or(y.Started.Compare(x.Started), strings.Compare(y.ID, x.ID))
	})
	if limit > 0 && len(tasks) > limit {
		tasks = tasks[:limit]
	}
	return tasks, nil
}

func decodeTask(item map[string]types.AttributeValue) (Task, error) {
	var t Task
	if err := attributevalue.UnmarshalMap(item, &t); err != nil {
		return Task{}, err
	}
	t.Started, t.Ended = utc(t.Started), utc(t.Ended)
	return t, nil
}
