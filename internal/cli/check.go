package cli

import (
	"fmt"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/internal/aws/apprunnercheck"
	"github.com/berth-dev/berth/internal/spec"
)

// checkReport is what "berth check --json" prints.
type checkReport struct {
	App string `json:"app"`
	Env string `json:"env"`
	// Fits is false when a constraint forces a service on App Runner to
	// Fargate; the exit code is then 1.
	Fits     bool           `json:"fits"`
	Services []checkService `json:"services"`
}

// checkService is one checked service and its findings.
type checkService struct {
	Service string `json:"service"`
	// AppRunner is the service's App Runner ARN; empty for a service
	// checked with --all or by name that does not run there.
	AppRunner   string                   `json:"apprunner,omitempty"`
	Fits        bool                     `json:"fits"`
	Constraints int                      `json:"constraints"`
	Notes       int                      `json:"notes"`
	Findings    []apprunnercheck.Finding `json:"findings"`
}

func (c *cli) checkCmd() *cobra.Command {
	var (
		file     string
		all      bool
		observed []string
	)
	cmd := &cobra.Command{
		Use:   "check --env ENV [SERVICE...]",
		Short: "Tell whether each service on App Runner still fits there, or what forces it to Fargate",
		Long: `Read berth.yaml and, for each service with apprunner: (or each SERVICE named,
or with --all every service: could it run on App Runner?), print every key
App Runner cannot serve, one line each with its line in the file, what App
Runner lacks, why it matters and the AWS page that says so, marked
"forces Fargate" (a constraint) or "note". Then one verdict line per service.

It makes no AWS call: it checks the spec against App Runner's documented
limits (docs/apprunner-limits.md), so it runs in CI without credentials.
What only the running service shows (WebSockets, exec, requests past 120s)
is passed with --observed SERVICE=NEED; needs: websockets, long-requests,
http2, exec, arm64, background-work.

Exit code 0 when every service on App Runner still fits, 1 when a
constraint forces one to Fargate; services not on App Runner, checked with
--all or by name, do not change it.`,
		Example: `  berth check --env prod
  berth check --env prod --observed web=websockets
  berth check --env prod --all --json`,
		RunE: func(cmd *cobra.Command, args []string) error {
			env, sp, err := c.envSpec("check", file)
			if err != nil {
				return err
			}
			if _, err := sp.Environment(env); err != nil {
				return inputError{err.Error()}
			}
			for _, a := range args {
				if sp.Services[a] == nil {
					return invalidf("no service %q in %s; services are: %s", a, file, strings.Join(sp.ServiceOrder, ", "))
				}
			}
			o := apprunnercheck.Options{All: all, Services: args}
			selected := apprunnercheck.Selected(sp, o)
			for _, s := range observed {
				svc, need, ok := strings.Cut(s, "=")
				if !ok {
					return usagef(cmd, "--observed %q: write SERVICE=NEED, such as web=websockets", s)
				}
				n, err := apprunnercheck.ParseNeed(need)
				if err != nil {
					return invalidf("--observed %s: %v", s, err)
				}
				if !slices.Contains(selected, svc) {
					return invalidf("--observed %s: %s is not checked (it has no apprunner: in %s); name it, or pass --all", s, svc, file)
				}
				o.Observed = append(o.Observed, apprunnercheck.Observed{Service: svc, Need: n, Evidence: "given with --observed"})
			}
			findings := apprunnercheck.CheckWith(sp, env, o)
			report := checkReport{App: sp.App, Env: env, Fits: true, Services: []checkService{}}
			var forced []string
			for _, name := range selected {
				svc := checkService{Service: name, AppRunner: sp.Services[name].AppRunner, Findings: []apprunnercheck.Finding{}}
				for _, f := range findings {
					if f.Service != name {
						continue
					}
					svc.Findings = append(svc.Findings, f)
					if f.Constraint {
						svc.Constraints++
					} else {
						svc.Notes++
					}
				}
				svc.Fits = svc.Constraints == 0
				if !svc.Fits && svc.AppRunner != "" {
					report.Fits = false
					forced = append(forced, name)
				}
				report.Services = append(report.Services, svc)
			}
			if c.json {
				if err := printJSON(c.stdout, report); err != nil {
					return err
				}
			} else {
				c.printCheck(sp, env, report)
			}
			if len(forced) > 0 {
				return exitWith(exitFailure, fmt.Sprintf("a constraint forces %s off App Runner to Fargate", strings.Join(forced, ", ")))
			}
			return nil
		},
	}
	addFileFlag(cmd, &file, true)
	cmd.Flags().BoolVar(&all, "all", false, "check every service: could it run on App Runner?")
	cmd.Flags().StringArrayVar(&observed, "observed", nil, "SERVICE=NEED seen on the running service (websockets, long-requests, http2, exec, arm64, background-work); repeatable")
	return cmd
}

// printCheck writes the findings, one line each, then a verdict per service.
func (c *cli) printCheck(sp *spec.Spec, env string, r checkReport) {
	if len(r.Services) == 0 {
		fmt.Fprintf(c.stdout, "no service of %s runs on App Runner (apprunner: in %s); berth check --env %s --all tells which could\n", sp.App, sp.File, env)
		return
	}
	for _, s := range r.Services {
		for _, f := range s.Findings {
			fmt.Fprintln(c.stdout, f.String())
		}
	}
	for _, s := range r.Services {
		fmt.Fprintln(c.stdout, verdict(s))
	}
}

// verdict is a service's one-line verdict.
func verdict(s checkService) string {
	notes := ""
	if s.Notes > 0 {
		notes = fmt.Sprintf(", %s", plural(s.Notes, "note"))
	}
	var keys []string
	for _, f := range s.Findings {
		switch {
		case !f.Constraint:
		case f.Key == "services."+s.Service: // an observed need
			keys = append(keys, "observed "+string(f.Limit))
		default:
			keys = append(keys, strings.TrimPrefix(f.Key, "services."+s.Service+"."))
		}
	}
	switch {
	case s.AppRunner != "" && s.Fits:
		return fmt.Sprintf("%s: fits App Runner%s", s.Service, notes)
	case s.AppRunner != "":
		return fmt.Sprintf("%s: must move to Fargate: %s (%s)%s", s.Service, plural(s.Constraints, "constraint"), strings.Join(keys, ", "), notes)
	case s.Fits:
		return fmt.Sprintf("%s: could run on App Runner%s", s.Service, notes)
	default:
		return fmt.Sprintf("%s: could not run on App Runner: %s (%s)%s", s.Service, plural(s.Constraints, "constraint"), strings.Join(keys, ", "), notes)
	}
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}
