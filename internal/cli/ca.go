package cli

import (
	"encoding/json"

	"github.com/spf13/cobra"
)

func (c *cli) caCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "ca",
		Short: "berth's local certificate authority",
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "export",
		Short: "Print the local CA's root certificate (PEM) for a trust store",
		Long: `Print the root certificate of berth's local CA, which signs the HTTPS
certificates of every name under the daemon's --domain. Add it to a trust
store, or pass it to curl with --cacert.`,
		Args: exactArgs(),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := c.client()
			if err != nil {
				return err
			}
			pem, err := cl.CARoot(cmd.Context())
			if err != nil {
				return err
			}
			if c.json {
				return json.NewEncoder(c.stdout).Encode(map[string]string{"pem": string(pem)})
			}
			_, err = c.stdout.Write(pem)
			return err
		},
	})
	return cmd
}
