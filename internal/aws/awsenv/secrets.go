package awsenv

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/berth-dev/berth/internal/api"
	"github.com/berth-dev/berth/internal/aws/awsstate"
	"github.com/berth-dev/berth/internal/spec"
)

// A service's secrets are Secrets Manager secrets named
// berth/ENV/APP/SERVICE/KEY. Task definitions hold only their ARNs; ECS
// reads the values when it starts a task. No value is ever printed or
// kept by berth.
func (e *Env) secretPrefix() string { return "berth/" + e.Name + "/" + e.App + "/" }

func (e *Env) secretName(service, key string) string {
	return e.secretPrefix() + service + "/" + key
}

// SecretSet sets secrets of a service, making those that do not exist.
func (e *Env) SecretSet(ctx context.Context, service string, values map[string]string) ([]api.SecretKey, error) {
	keys := make([]string, 0, len(values))
	for k := range values {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var tags []smtypes.Tag
	for k, v := range e.tagMap(map[string]string{TagService: service}) {
		tags = append(tags, smtypes.Tag{Key: aws.String(k), Value: aws.String(v)})
	}
	for _, k := range keys {
		n := e.secretName(service, k)
		_, err := e.c.SecretsManager.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String(n), SecretString: aws.String(values[k])})
		if apiCode(err) == "ResourceNotFoundException" {
			_, err = e.c.SecretsManager.CreateSecret(ctx, &secretsmanager.CreateSecretInput{
				Name: aws.String(n), SecretString: aws.String(values[k]), Tags: tags,
				Description: aws.String("berth: secret " + k + " of " + service + " in " + e.what()),
			})
		}
		if err != nil {
			return nil, fmt.Errorf("set secret %s of %s in %s: %w", k, service, e.what(), err)
		}
	}
	if _, err := e.state.AddEvent(ctx, eventOf(service, "secret", "set "+strings.Join(keys, ", "))); err != nil {
		return nil, err
	}
	return e.SecretList(ctx, service)
}

// SecretList lists a service's secrets: names and when they changed,
// never values.
func (e *Env) SecretList(ctx context.Context, service string) ([]api.SecretKey, error) {
	prefix := e.secretPrefix() + service + "/"
	out := []api.SecretKey{}
	p := secretsmanager.NewListSecretsPaginator(e.c.SecretsManager, &secretsmanager.ListSecretsInput{
		Filters: []smtypes.Filter{{Key: smtypes.FilterNameStringTypeName, Values: []string{prefix}}},
	})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("list the secrets of %s in %s: %w", service, e.what(), err)
		}
		for _, s := range page.SecretList {
			n := aws.ToString(s.Name)
			if !strings.HasPrefix(n, prefix) {
				continue
			}
			when := aws.ToTime(s.LastChangedDate)
			if when.IsZero() {
				when = aws.ToTime(s.CreatedDate)
			}
			out = append(out, api.SecretKey{Key: strings.TrimPrefix(n, prefix), UpdatedAt: when})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, nil
}

// SecretDelete removes a secret of a service at once (no recovery window:
// as on the local engine, a removed secret is gone and can be set again).
func (e *Env) SecretDelete(ctx context.Context, service, key string) error {
	_, err := e.c.SecretsManager.DeleteSecret(ctx, &secretsmanager.DeleteSecretInput{SecretId: aws.String(e.secretName(service, key)), ForceDeleteWithoutRecovery: aws.Bool(true)})
	if apiCode(err) == "ResourceNotFoundException" {
		return fmt.Errorf("%s has no secret %s in %s; see \"berth secret ls --env %s %s\"", service, key, e.what(), e.Name, service)
	}
	if err != nil {
		return fmt.Errorf("remove secret %s of %s in %s: %w", key, service, e.what(), err)
	}
	_, err = e.state.AddEvent(ctx, eventOf(service, "secret", "removed "+key))
	return err
}

// secretARNs finds the ARNs of the secrets a service and its sidecars
// list. A secret never set refuses the deploy, naming the command that
// sets it, before anything changes.
func (e *Env) secretARNs(ctx context.Context, sp *spec.Spec, svc *spec.Service) (map[string]string, error) {
	want := map[string]string{} // key → the field that lists it
	for i, k := range svc.Secrets {
		want[k] = fmt.Sprintf("services.%s.secrets[%d]", svc.Name, i)
	}
	for _, sc := range svc.SidecarOrder {
		for i, k := range svc.Sidecars[sc].Secrets {
			if _, ok := want[k]; !ok {
				want[k] = fmt.Sprintf("services.%s.sidecars.%s.secrets[%d]", svc.Name, sc, i)
			}
		}
	}
	arns := map[string]string{}
	keys := make([]string, 0, len(want))
	for k := range want {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		out, err := e.c.SecretsManager.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(e.secretName(svc.Name, k))})
		if apiCode(err) == "ResourceNotFoundException" || (err == nil && out.DeletedDate != nil) {
			return nil, fmt.Errorf("%w: %s:%d: %s: secret %s is not set in %s; set it with \"berth secret set --env %s %s %s=...\"",
				ErrRefused, sp.File, sp.Line(want[k]), want[k], k, e.what(), e.Name, svc.Name, k)
		}
		if err != nil {
			return nil, fmt.Errorf("find secret %s of %s in %s: %w", k, svc.Name, e.what(), err)
		}
		arns[k] = aws.ToString(out.ARN)
	}
	return arns, nil
}

// eventOf is an event of service (or of the app, when "").
func eventOf(service, kind, msg string) awsstate.Event {
	return awsstate.Event{Time: time.Now(), Service: service, Kind: kind, Message: msg}
}
