package cli

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/internal/aws/awsenv"
	"github.com/berth-dev/berth/internal/spec"
)

func (c *cli) planCmd() *cobra.Command {
	var file string
	cmd := &cobra.Command{
		Use:   "plan --env ENV [SERVICE...]",
		Short: "Show what a deploy to an environment would create or change; changes nothing",
		Long: `Read the environment's resources and berth's records in it and print what
"berth deploy --env ENV" would create, update, run and switch. Nothing is
changed and no lock is taken. What the deploy would refuse (a secret never
set, a size or feature the environment cannot run) is refused here too.
On the local engine a deploy is its own plan: it changes nothing until the
new revision is healthy, so plan needs --env.`,
		Example: `  berth plan --env prod
  berth plan --env prod web --json`,
		RunE: func(cmd *cobra.Command, args []string) error {
			env, sp, err := c.envSpec("plan", file)
			if err != nil {
				return err
			}
			e, err := awsenv.Open(cmd.Context(), sp, env, awsenv.Options{})
			if err != nil {
				return awsError(err)
			}
			changes, err := e.Plan(cmd.Context(), sp, args)
			if err != nil {
				return awsError(err)
			}
			if c.json {
				return printJSON(c.stdout, changes)
			}
			fmt.Fprintf(c.stdout, "plan for %s in %s (%s):\n", sp.App, env, e.Region)
			for _, ch := range changes {
				fmt.Fprintf(c.stdout, "  %s\n", ch)
			}
			return nil
		},
	}
	addFileFlag(cmd, &file, true)
	return cmd
}

// envSpec reads the spec of a verb that needs an environment (plan,
// check): --env (or BERTH_ENV), and the spec file that names it.
func (c *cli) envSpec(verb, file string) (string, *spec.Spec, error) {
	env := c.envName()
	if env == "" {
		return "", nil, invalidf("%s needs an environment of %s: pass --env ENV (or set BERTH_ENV)", verb, file)
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", nil, invalidf("cannot read %s: %v (pass -f FILE)", file, err)
	}
	sp, err := spec.Parse(file, b)
	if err != nil {
		return "", nil, inputError{err.Error()}
	}
	return env, sp, nil
}
