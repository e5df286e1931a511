package apprunner

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/apprunner"
	"github.com/aws/aws-sdk-go-v2/service/apprunner/types"

	"github.com/berth-dev/berth/internal/aws/clients"
)

// An App Runner operation, as this package waits on it:
//
//	UpdateService / PauseService / ResumeService
//	   │ service OPERATION_IN_PROGRESS, operation PENDING → IN_PROGRESS
//	   ├─▶ SUCCEEDED: the service RUNNING (or PAUSED) with the new configuration
//	   └─▶ FAILED, or ROLLBACK_IN_PROGRESS → ROLLBACK_SUCCEEDED (ROLLBACK_FAILED):
//	       App Runner put the previous configuration back by itself

// Defaults of a Runner.
const (
	// DefaultPoll is how often an operation is polled: App Runner's
	// deployments take minutes.
	DefaultPoll = 5 * time.Second
	// DefaultTimeout bounds the wait for one operation.
	DefaultTimeout = 30 * time.Minute
)

// Errors a caller can tell apart with errors.Is.
var (
	// ErrDeployFailed: the operation ended without SUCCEEDED; App Runner
	// rolled the service back to its previous configuration.
	ErrDeployFailed = errors.New("App Runner deployment failed")
	// ErrNotRunning: the service is not in a state the verb can act on
	// (paused, an operation in progress, deleted, failed to create).
	ErrNotRunning = errors.New("App Runner service not running")
)

// Runner drives App Runner services for berth.
type Runner struct {
	api *apprunner.Client
	// Poll is how often an operation in progress is polled (0:
	// DefaultPoll); Timeout how long it is waited on (0: DefaultTimeout).
	Poll    time.Duration
	Timeout time.Duration
	// SecretARN, when set, gives the ARN (Secrets Manager secret or SSM
	// parameter) of a spec secret the App Runner service does not reference
	// yet; without it such a secret is refused by Deploy.
	SecretARN func(name string) (string, error)
}

// New makes a Runner on the clients' App Runner client.
func New(c *clients.Clients) *Runner { return &Runner{api: c.AppRunner} }

// Operation is one App Runner operation on a service.
type Operation struct {
	ID      string
	Type    string // UPDATE_SERVICE, PAUSE_SERVICE, RESUME_SERVICE, START_DEPLOYMENT, ...
	Status  string // SUCCEEDED, ROLLBACK_SUCCEEDED, IN_PROGRESS, ...
	Started time.Time
	Ended   time.Time
}

// Status is an App Runner service as `berth status` shows it.
type Status struct {
	ARN   string
	Name  string
	State string // RUNNING, PAUSED, OPERATION_IN_PROGRESS, CREATE_FAILED, DELETED, DELETE_FAILED
	// URL is https://SERVICEURL, the service's default domain.
	URL string
	// Image is the image the service's configuration names.
	Image  string
	CPU    float64 // vCPUs
	Memory int64   // bytes
	// Last is the newest operation, nil when ListOperations has none.
	Last *Operation
}

func (r *Runner) poll() time.Duration {
	if r.Poll > 0 {
		return r.Poll
	}
	return DefaultPoll
}

func (r *Runner) timeout() time.Duration {
	if r.Timeout > 0 {
		return r.Timeout
	}
	return DefaultTimeout
}

// describe reads a service, naming it in the error.
func (r *Runner) describe(ctx context.Context, arn string) (*types.Service, error) {
	out, err := r.api.DescribeService(ctx, &apprunner.DescribeServiceInput{ServiceArn: aws.String(arn)})
	if err != nil {
		var nf *types.ResourceNotFoundException
		if errors.As(err, &nf) {
			return nil, fmt.Errorf("App Runner service %s does not exist in this account and region: check apprunner: in berth.yaml and the environment's region", arn)
		}
		return nil, fmt.Errorf("App Runner DescribeService %s: %w", arn, err)
	}
	return out.Service, nil
}

// Status reads the service's state, URL, image and newest operation.
func (r *Runner) Status(ctx context.Context, arn string) (*Status, error) {
	svc, err := r.describe(ctx, arn)
	if err != nil {
		return nil, err
	}
	st := &Status{ARN: arn, Name: aws.ToString(svc.ServiceName), State: string(svc.Status), Image: servingImage(svc)}
	if u := aws.ToString(svc.ServiceUrl); u != "" {
		st.URL = "https://" + u
	}
	if ic := svc.InstanceConfiguration; ic != nil {
		st.CPU, _ = parseCPU(aws.ToString(ic.Cpu))
		st.Memory, _ = parseMemory(aws.ToString(ic.Memory))
	}
	ops, err := r.api.ListOperations(ctx, &apprunner.ListOperationsInput{ServiceArn: aws.String(arn), MaxResults: aws.Int32(1)})
	if err != nil {
		return nil, fmt.Errorf("App Runner ListOperations %s: %w", arn, err)
	}
	if len(ops.OperationSummaryList) > 0 {
		st.Last = operation(ops.OperationSummaryList[0])
	}
	return st, nil
}

// Pause pauses the service (PauseService) and waits until it is PAUSED.
// A service already paused is left as it is.
func (r *Runner) Pause(ctx context.Context, arn string, progress io.Writer) error {
	return r.toggle(ctx, arn, true, progress)
}

// Resume resumes a paused service (ResumeService) and waits until it is
// RUNNING. A service already running is left as it is.
func (r *Runner) Resume(ctx context.Context, arn string, progress io.Writer) error {
	return r.toggle(ctx, arn, false, progress)
}

func (r *Runner) toggle(ctx context.Context, arn string, pause bool, progress io.Writer) error {
	svc, err := r.describe(ctx, arn)
	if err != nil {
		return err
	}
	name := aws.ToString(svc.ServiceName)
	want, from, verb := types.ServiceStatusPaused, types.ServiceStatusRunning, "pause"
	if !pause {
		want, from, verb = types.ServiceStatusRunning, types.ServiceStatusPaused, "resume"
	}
	if svc.Status == want {
		fmt.Fprintf(progress, "App Runner service %s is already %s\n", name, want)
		return nil
	}
	if svc.Status != from {
		return notRunning(svc, verb)
	}
	var opID *string
	if pause {
		out, err := r.api.PauseService(ctx, &apprunner.PauseServiceInput{ServiceArn: aws.String(arn)})
		if err != nil {
			return fmt.Errorf("App Runner PauseService %s: %w", name, err)
		}
		opID = out.OperationId
	} else {
		out, err := r.api.ResumeService(ctx, &apprunner.ResumeServiceInput{ServiceArn: aws.String(arn)})
		if err != nil {
			return fmt.Errorf("App Runner ResumeService %s: %w", name, err)
		}
		opID = out.OperationId
	}
	op, svc, err := r.wait(ctx, arn, aws.ToString(opID), progress)
	if err != nil {
		return err
	}
	if op.Status != string(types.OperationStatusSucceeded) || svc.Status != want {
		return fmt.Errorf("%w: %s of App Runner service %s ended %s, the service is %s; see the service's events in the App Runner console and try again", ErrDeployFailed, verb, name, op.Status, svc.Status)
	}
	return nil
}

// Delete deletes the service (DeleteService) and waits until App Runner
// says it is DELETED. The way back to it is gone after: the caller checks
// that nothing sends to it.
func (r *Runner) Delete(ctx context.Context, arn string, progress io.Writer) error {
	svc, err := r.describe(ctx, arn)
	if err != nil {
		return err
	}
	name := aws.ToString(svc.ServiceName)
	switch svc.Status {
	case types.ServiceStatusDeleted:
		fmt.Fprintf(progress, "App Runner service %s is already deleted\n", name)
		return nil
	case types.ServiceStatusOperationInProgress:
		return notRunning(svc, "delete")
	}
	out, err := r.api.DeleteService(ctx, &apprunner.DeleteServiceInput{ServiceArn: aws.String(arn)})
	if err != nil {
		return fmt.Errorf("App Runner DeleteService %s: %w", name, err)
	}
	op, svc, err := r.wait(ctx, arn, aws.ToString(out.OperationId), progress)
	if err != nil {
		return err
	}
	if op.Status != string(types.OperationStatusSucceeded) || svc.Status != types.ServiceStatusDeleted {
		return fmt.Errorf("%w: deletion of App Runner service %s ended %s, the service is %s; see its events in the App Runner console", ErrDeployFailed, name, op.Status, svc.Status)
	}
	return nil
}

// notRunning says why the service cannot take verb now.
func notRunning(svc *types.Service, verb string) error {
	name := aws.ToString(svc.ServiceName)
	switch svc.Status {
	case types.ServiceStatusOperationInProgress:
		return fmt.Errorf("%w: cannot %s App Runner service %s: an operation is in progress; wait until it ends (berth status) and run it again", ErrNotRunning, verb, name)
	case types.ServiceStatusPaused:
		return fmt.Errorf("%w: cannot %s App Runner service %s: it is paused; resume it first (berth resume)", ErrNotRunning, verb, name)
	default:
		return fmt.Errorf("%w: cannot %s App Runner service %s: it is %s", ErrNotRunning, verb, name, svc.Status)
	}
}

// ended reports whether an operation status is final.
func ended(s types.OperationStatus) bool {
	switch s {
	case types.OperationStatusSucceeded, types.OperationStatusFailed,
		types.OperationStatusRollbackSucceeded, types.OperationStatusRollbackFailed:
		return true
	}
	return false
}

// wait polls the service and its operation id until both have ended,
// printing each phase the operation goes through.
func (r *Runner) wait(ctx context.Context, arn, id string, progress io.Writer) (*Operation, *types.Service, error) {
	deadline := time.Now().Add(r.timeout())
	last := ""
	for {
		svc, err := r.describe(ctx, arn)
		if err != nil {
			return nil, nil, err
		}
		op, err := r.findOperation(ctx, arn, id)
		if err != nil {
			return nil, nil, err
		}
		if op != nil {
			phase := op.Type + " " + op.Status
			if phase != last {
				fmt.Fprintf(progress, "  App Runner %s: %s\n", aws.ToString(svc.ServiceName), strings.ReplaceAll(phase, "_", " "))
				last = phase
			}
			if ended(types.OperationStatus(op.Status)) && svc.Status != types.ServiceStatusOperationInProgress {
				return op, svc, nil
			}
		}
		if time.Now().After(deadline) {
			return nil, nil, fmt.Errorf("App Runner operation %s on %s still %s after %s: it goes on in AWS; see berth status", id, aws.ToString(svc.ServiceName), last, r.timeout())
		}
		select {
		case <-ctx.Done():
			return nil, nil, context.Cause(ctx)
		case <-time.After(r.poll()):
		}
	}
}

// findOperation finds operation id among the service's newest operations.
func (r *Runner) findOperation(ctx context.Context, arn, id string) (*Operation, error) {
	out, err := r.api.ListOperations(ctx, &apprunner.ListOperationsInput{ServiceArn: aws.String(arn), MaxResults: aws.Int32(20)})
	if err != nil {
		return nil, fmt.Errorf("App Runner ListOperations %s: %w", arn, err)
	}
	for _, o := range out.OperationSummaryList {
		if aws.ToString(o.Id) == id {
			return operation(o), nil
		}
	}
	return nil, nil
}

func operation(o types.OperationSummary) *Operation {
	return &Operation{
		ID: aws.ToString(o.Id), Type: string(o.Type), Status: string(o.Status),
		Started: aws.ToTime(o.StartedAt), Ended: aws.ToTime(o.EndedAt),
	}
}

// image is the image a service's configuration names.
func servingImage(svc *types.Service) string {
	if sc := svc.SourceConfiguration; sc != nil && sc.ImageRepository != nil {
		return aws.ToString(sc.ImageRepository.ImageIdentifier)
	}
	return ""
}

// Adopt tags the App Runner service as berth's, as everything berth drives
// in AWS is tagged: berth.app, berth.env and berth.service (TagResource;
// the service's other tags stay).
func (r *Runner) Adopt(ctx context.Context, arn, app, env, service string) error {
	_, err := r.api.TagResource(ctx, &apprunner.TagResourceInput{
		ResourceArn: aws.String(arn),
		Tags: []types.Tag{
			{Key: aws.String("berth.app"), Value: aws.String(app)},
			{Key: aws.String("berth.env"), Value: aws.String(env)},
			{Key: aws.String("berth.service"), Value: aws.String(service)},
		},
	})
	if err != nil {
		return fmt.Errorf("App Runner TagResource %s: %w", arn, err)
	}
	return nil
}
