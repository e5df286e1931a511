package awsstate

import (
	"context"
	cryptorand "crypto/rand"
	"encoding/hex"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// Event is one line of an app's history in an environment, as `berth
// events` prints it.
type Event struct {
	// ID tells apart events of one instant; AddEvent makes one when "".
	ID      string    `dynamodbav:"id"`
	Time    time.Time `dynamodbav:"time"`
	Service string    `dynamodbav:"service,omitempty"`
	// Kind is deploy, rollback, scale, pause, task, ...
	Kind    string `dynamodbav:"kind"`
	Message string `dynamodbav:"message"`
}

// AddEvent records e and returns it as recorded (with its ID, and the
// time now when e.Time is zero).
func (a *AppState) AddEvent(ctx context.Context, e Event) (Event, error) {
	if e.Time.IsZero() {
		e.Time = a.s.now()
	}
	e.Time = e.Time.UTC()
	if e.ID == "" {
		var b [8]byte
		if _, err := cryptorand.Read(b[:]); err != nil {
			return Event{}, fmt.Errorf("add event of app %s: %w", a, err)
		}
		e.ID = hex.EncodeToString(b[:])
	}
	item, err := attributevalue.MarshalMap(e)
	if err == nil {
		maps.Copy(item, key(a.pk, skEvent+formatTime(e.Time)+"/"+e.ID))
		_, err = a.s.db.PutItem(ctx, &dynamodb.PutItemInput{TableName: &a.s.table, Item: item})
	}
	if err != nil {
		return Event{}, fmt.Errorf("add event of app %s: %w", a, err)
	}
	return e, nil
}

// Events returns the app's events at or after since, oldest first: the
// newest limit of them when limit > 0, all of them otherwise. A follower
// passes the time of the last event it saw and drops that event's ID.
func (a *AppState) Events(ctx context.Context, since time.Time, limit int) ([]Event, error) {
	items, err := a.s.query(ctx, &dynamodb.QueryInput{
		KeyConditionExpression:   aws.String("#pk = :pk AND #sk BETWEEN :lo AND :hi"),
		ExpressionAttributeNames: map[string]string{"#pk": attrPK, "#sk": attrSK},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":pk": str(a.pk), ":lo": str(skEvent + formatTime(since)), ":hi": str(skEvent + "~"),
		},
		ScanIndexForward: aws.Bool(false),
	}, limit)
	if err != nil {
		return nil, fmt.Errorf("read events of app %s: %w", a, err)
	}
	events := make([]Event, 0, len(items))
	for _, it := range slices.Backward(items) {
		var e Event
		if err := attributevalue.UnmarshalMap(it, &e); err != nil {
			return nil, fmt.Errorf("read events of app %s: %s: %w", a, getS(it, attrSK), err)
		}
		e.Time = utc(e.Time)
		events = append(events, e)
	}
	return events, nil
}
