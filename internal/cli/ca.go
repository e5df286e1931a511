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
certificates of the routed names under the daemon's --domain, localhost and
.internal. The root is constrained to those names and the loopback addresses,
so it vouches for nothing else. Add it to a trust store, or pass it to curl
with --cacert. When the daemon replaces the root (its log says "replaced the
local CA root"), remove the old one from the trust store and add the new one.`,
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
