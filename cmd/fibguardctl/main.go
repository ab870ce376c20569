// Command fibguardctl explains Linux route resolution from fibguard's model:
// `route get` with a trace, and `snapshot` to save a node's routing state.
package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/fibguard/fibguard/internal/cmd/check"
	"github.com/fibguard/fibguard/internal/cmd/route"
	"github.com/fibguard/fibguard/internal/cmd/snapshot"
)

func main() {
	root := &cobra.Command{
		Use:           "fibguardctl",
		Short:         "Explain where Linux sends a packet, and why",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(route.NewCommand(), snapshot.NewCommand())
	root.AddCommand(check.NewCommand())
	if err := root.Execute(); err != nil {
		// A failure is a usage or input error (2), unless the command says
		// otherwise: `check` exits 1 for findings. An answer, even
		// "unreachable", is a success.
		fmt.Fprintln(os.Stderr, "fibguardctl:", err)
		os.Exit(check.ExitCode(err))
	}
}
