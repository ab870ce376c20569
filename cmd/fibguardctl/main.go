// Command fibguardctl explains Linux route resolution from fibguard's model:
// `route get` with a trace, `check` to predict the plugin's verdict on a
// conflist, and `snapshot` to save a node's routing state. Exit codes, as
// the tools beside it: 0 an answer that is a route (or a pod let through),
// 1 an answer that is an error, a disagreement with the kernel, or a pod
// refused, 2 a usage or input error.
package main

import (
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/fibguard/fibguard/internal/cmd/check"
	"github.com/fibguard/fibguard/internal/cmd/cli"
	"github.com/fibguard/fibguard/internal/cmd/route"
	"github.com/fibguard/fibguard/internal/cmd/snapshot"
	"github.com/fibguard/fibguard/internal/version"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// newRoot returns the fibguardctl command with its subcommands.
func newRoot() *cobra.Command {
	root := &cobra.Command{
		Use:           "fibguardctl",
		Short:         "Explain where Linux sends a packet, and why",
		Version:       version.Get().String(),
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetVersionTemplate("{{.Name}} {{.Version}}\n")
	root.SetFlagErrorFunc(cli.FlagError)
	root.AddCommand(route.NewCommand(), snapshot.NewCommand(), check.NewCommand())
	return root
}

// run runs fibguardctl with the arguments and returns its exit code.
func run(args []string, stdout, stderr io.Writer) int {
	root := newRoot()
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.Execute()
	if err != nil {
		// Nothing else to say if stderr fails too.
		_, _ = fmt.Fprintln(stderr, "fibguardctl:", cli.Message(err))
	}
	return cli.Code(err)
}
