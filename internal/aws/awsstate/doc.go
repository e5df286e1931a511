// Package awsstate is berth's state for an AWS environment, kept in AWS so
// that a teammate on another machine with the same credentials and no local
// files sees the same apps, revisions, tasks and events, and so that two
// berths deploying one app at once are serialised.
//
// It owns one DynamoDB table (DefaultTable, on-demand, created if missing)
// and the items in it, all under the partition key "ENV/APP":
//
//	sort key                  item
//	lock                      the app's lock: holder, operation, lease expiry
//	op                        the journal of the operation in flight
//	rev/SERVICE/NNNNNNNNNN    a revision of a service
//	counter/rev/SERVICE       the service's revision counter
//	event/TIME/ID             an event
//	task/ID                   a task run
//
// and, under the partition key "ENV" alone, one "app/APP" item per app with
// state in the environment, so Apps can list them with a Query.
//
// Every decision that two berths could race on is the server's: the lock is
// taken with a conditional put (absent or expired), renewed and deleted on
// a condition naming its holder, the journal is written in a transaction
// that checks the lock is still ours, revision numbers come from an atomic
// counter and revision states move on a condition on the state they had.
// Nothing here reads an item to decide whether to write it.
//
// It must not touch any AWS service but DynamoDB, and it never stores a
// secret: revisions hold the spec, whose secrets are references.
package awsstate
