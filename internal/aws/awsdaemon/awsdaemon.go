package awsdaemon

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/berth-dev/berth/internal/api"
	"github.com/berth-dev/berth/internal/aws/awsenv"
	"github.com/berth-dev/berth/internal/aws/awsstate"
	"github.com/berth-dev/berth/internal/aws/clients"
	"github.com/berth-dev/berth/internal/controlplane"
	"github.com/berth-dev/berth/internal/controlplane/apierr"
	"github.com/berth-dev/berth/internal/spec"
)

// Environments opens apps' AWS environments for the daemon.
type Environments struct {
	// Options are awsenv's (zero: its defaults). The daemon builds
	// nothing, so Build stays nil: the verbs it serves push no image.
	Options awsenv.Options
}

var (
	_ controlplane.Environments = Environments{}
	_ controlplane.Environment  = (*env)(nil)
)

// Open opens environment name of sp, connecting with the standard chain.
func (e Environments) Open(ctx context.Context, sp *spec.Spec, name string) (controlplane.Environment, error) {
	ae, err := awsenv.Open(ctx, sp, name, e.Options)
	if err != nil {
		return nil, apiError(err)
	}
	return &env{e: ae, sp: sp}, nil
}

// env is one app in one AWS environment, opened for one request.
type env struct {
	e  *awsenv.Env
	sp *spec.Spec
}

func (v *env) Status(ctx context.Context) (api.Status, error) {
	st, err := v.e.Status(ctx)
	return st, apiError(err)
}

func (v *env) Revisions(ctx context.Context, service string) ([]api.Revision, error) {
	r, err := v.e.Revisions(ctx, service)
	return r, apiError(err)
}

func (v *env) Events(ctx context.Context, since time.Time, limit int) ([]api.Event, error) {
	evs, err := v.e.Events(ctx, since, limit)
	return evs, apiError(err)
}

func (v *env) Rollback(ctx context.Context, service string, to int, out func(api.Message)) api.Message {
	return result(v.e.Rollback(ctx, v.sp, service, to, out))
}

func (v *env) Scale(ctx context.Context, counts map[string]int) (api.Status, error) {
	st, err := v.e.Scale(ctx, counts)
	return st, apiError(err)
}

func (v *env) Pause(ctx context.Context, service string) (api.ServiceStatus, error) {
	st, err := v.e.Pause(ctx, service)
	return st, apiError(err)
}

func (v *env) Resume(ctx context.Context, service string, out func(api.Message)) api.Message {
	return result(v.e.Resume(ctx, service, out))
}

// result gives a failed stream's result the one-line message of apiError.
func result(m api.Message) api.Message {
	if !m.OK && m.Error != "" {
		if msg, ok := credentialsMessage(m.Error); ok {
			m.Error = msg
		}
	}
	return m
}

// kindError is err, with its own message, as one of apierr's kinds for
// the API's code.
type kindError struct{ kind, err error }

func (e kindError) Error() string   { return e.err.Error() }
func (e kindError) Unwrap() []error { return []error{e.kind, e.err} }

// apiError gives an AWS environment's error the API's code, as the CLI's
// --env verbs do, and a one-line message that says what to do.
func apiError(err error) error {
	if err == nil {
		return nil
	}
	if msg, ok := credentialsMessage(err.Error()); ok {
		return errors.New(msg)
	}
	var held *awsstate.HeldError
	switch {
	case errors.Is(err, clients.ErrNoRegion):
		return apierr.Refuse(errors.New("no AWS region: set region: under the environment in berth.yaml (and deploy it here again), or AWS_REGION in berth server's environment"))
	case errors.Is(err, awsenv.ErrRefused):
		return apierr.Refuse(errors.New(strings.TrimPrefix(err.Error(), awsenv.ErrRefused.Error()+": ")))
	case errors.As(err, &held):
		return kindError{apierr.ErrBusy, err}
	case errors.Is(err, awsstate.ErrNotFound):
		return kindError{apierr.ErrNotFound, err}
	}
	return err
}

// credentialsMessage tells a failure for want of AWS credentials (the SDK's
// long chain of providers tried) in one line that names the fix.
func credentialsMessage(s string) (string, bool) {
	for _, sign := range []string{"get credentials:", "failed to retrieve credentials", "no EC2 IMDS role found", "failed to refresh cached credentials"} {
		if strings.Contains(s, sign) {
			return "berth server has no AWS credentials: start it with AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, in its environment (or on a machine with an instance role)", true
		}
	}
	for _, sign := range []string{"ExpiredToken", "InvalidClientTokenId", "UnrecognizedClientException", "security token included in the request is invalid"} {
		if strings.Contains(s, sign) {
			return "berth server's AWS credentials are expired or invalid: renew them (aws sso login, or new keys) in berth server's environment and restart it", true
		}
	}
	return "", false
}
