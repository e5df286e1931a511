package cli

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/internal/aws/apprunner"
	"github.com/berth-dev/berth/internal/aws/awsenv"
	"github.com/berth-dev/berth/internal/aws/clients"
	"github.com/berth-dev/berth/internal/spec"
)

// importReport is what "berth import apprunner --json" prints.
type importReport struct {
	Service   string   `json:"service"`
	AppRunner string   `json:"apprunner"`
	Env       string   `json:"env"`
	File      string   `json:"file"`
	Revision  int      `json:"revision"`
	Image     string   `json:"image"`
	URL       string   `json:"url,omitempty"`
	YAML      string   `json:"yaml"`
	Notes     []string `json:"notes,omitempty"`
}

func (c *cli) importCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "import",
		Short: "Take over something that runs already as a berth service",
		Args:  exactArgs(),
		RunE:  func(cmd *cobra.Command, args []string) error { return cmd.Help() },
	}
	cmd.AddCommand(c.importAppRunnerCmd())
	return cmd
}

func (c *cli) importAppRunnerCmd() *cobra.Command {
	var file, name string
	cmd := &cobra.Command{
		Use:   "apprunner --env ENV SERVICE-ARN",
		Short: "Import an existing App Runner service into berth.yaml and the environment",
		Long: `Read the App Runner service SERVICE-ARN (image, port, start command, env,
secret references, cpu/memory, health check, auto scaling) and add it to
berth.yaml under services: as NAME (--name; default: the App Runner
service's name), with apprunner: ARN. What berth.yaml has no key for
(observability, the instance role, the VPC connector) stays as App Runner
has it, and is printed.

The service is then berth's in ENV: it is tagged berth.app, berth.env and
berth.service, and its running image is recorded as revision 1, so status,
revisions, deploy, rollback, logs, pause/resume and task run work on it.
A service of that name already in berth.yaml or in ENV is refused. The
environment must be in berth.yaml with engine: aws.`,
		Args: exactArgs("SERVICE-ARN"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			env := c.envName()
			if env == "" {
				return usagef(cmd, "import apprunner needs --env: the AWS environment of berth.yaml the service runs in")
			}
			text, err := os.ReadFile(file)
			if err != nil {
				if errors.Is(err, os.ErrNotExist) {
					return invalidf("no %s here: write one with app: NAME and environments: {%s: {engine: aws, region: REGION}}, or pass -f FILE", file, env)
				}
				return fmt.Errorf("read %s: %w", file, err)
			}
			// The spec may have no service yet: it is read with the
			// imported one, from the App Runner service's own region.
			region := arnRegion(args[0])
			if region == "" {
				return invalidf("%q is not an App Runner service ARN (arn:aws:apprunner:REGION:ACCOUNT:service/NAME/ID)", args[0])
			}
			cl, err := clients.Load(ctx, region)
			if err != nil {
				return awsError(err)
			}
			imp, err := apprunner.New(cl).Import(ctx, args[0], name)
			if err != nil {
				return awsError(err)
			}
			out, err := apprunner.AddToSpec(text, imp)
			if err != nil {
				return inputError{strings.Replace(err.Error(), "berth.yaml", file, 1)}
			}
			sp, err := spec.Parse(file, out)
			if err != nil {
				return inputError{err.Error()}
			}
			ec, err := sp.Environment(env)
			if err != nil {
				return inputError{err.Error()}
			}
			if ec == nil || ec.Engine != spec.EngineAWS {
				return invalidf("%s: environment %s is not an AWS one; App Runner services are imported into an environment with engine: aws", file, env)
			}
			if ec.Region != "" && ec.Region != region {
				return invalidf("%s:%d: environment %s is in region %s, the App Runner service in %s; import it into an environment of its region", file, sp.Line("environments."+env), env, ec.Region, region)
			}
			if ec.Region == "" {
				// The other verbs use the default region: berth's records
				// must be where they will look.
				def, err := clients.Load(ctx, "")
				if err != nil {
					return awsError(err)
				}
				if def.Region() != region {
					return invalidf("%s:%d: environment %s has no region: and the default region is %s, the App Runner service's %s; add region: %s to it", file, sp.Line("environments."+env), env, def.Region(), region, region)
				}
			}
			e, err := awsenv.OpenWith(ctx, cl, sp.App, ec, awsenv.Options{LockWait: c.lockWait})
			if err != nil {
				return awsError(err)
			}
			num, err := e.AdoptAppRunner(ctx, imp)
			if err != nil {
				return awsError(err)
			}
			if err := writeFileAtomic(file, out); err != nil {
				return fmt.Errorf("service %s is recorded in %s, but %s could not be written (%w); add this block under services: by hand:\n%s", imp.Service.Name, env, file, err, imp.YAML)
			}
			if c.json {
				return printJSON(c.stdout, importReport{Service: imp.Service.Name, AppRunner: args[0], Env: env, File: file, Revision: num,
					Image: imp.Service.Image, URL: imp.URL, YAML: imp.YAML, Notes: imp.Notes})
			}
			fmt.Fprintf(c.stdout, "imported App Runner service %s as service %s of %s (%s), revision %d\n", args[0], imp.Service.Name, sp.App, env, num)
			fmt.Fprintf(c.stdout, "added to %s under services:\n%s", file, indentBlock(imp.YAML, "  "))
			for _, n := range imp.Notes {
				fmt.Fprintf(c.stdout, "note: App Runner keeps %s\n", n)
			}
			fmt.Fprintf(c.stdout, "next: berth status --env %s; berth deploy --env %s %s; berth check --env %s\n", env, env, imp.Service.Name, env)
			return nil
		},
	}
	addFileFlag(cmd, &file, true)
	cmd.Flags().StringVar(&name, "name", "", "the berth service's name (default: the App Runner service's name)")
	c.addLockWaitFlag(cmd)
	return cmd
}

// arnRegion is the region of an App Runner ARN, "" when arn is not one.
func arnRegion(arn string) string {
	parts := strings.Split(arn, ":")
	if len(parts) != 6 || parts[0] != "arn" || parts[2] != "apprunner" {
		return ""
	}
	return parts[3]
}

// indentBlock indents every non-empty line of text.
func indentBlock(text, prefix string) string {
	lines := strings.SplitAfter(text, "\n")
	var b strings.Builder
	for _, l := range lines {
		if strings.TrimSpace(l) != "" {
			b.WriteString(prefix)
		}
		b.WriteString(l)
	}
	return b.String()
}

// writeFileAtomic replaces path with data through a synced temporary
// file, so a crash leaves the old file or the new one, never half of it.
func writeFileAtomic(path string, data []byte) error {
	mode := os.FileMode(0o644)
	if st, err := os.Stat(path); err == nil {
		mode = st.Mode().Perm()
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Chmod(mode); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}
