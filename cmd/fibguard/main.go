// Command fibguard is the chained CNI plugin that refuses pod networks the
// kernel would not route to the pod. All logic lives in package plugin;
// docs/plugin.md documents the configuration and error codes.
package main

import (
	"log"
	"os"

	"github.com/containernetworking/cni/pkg/skel"

	"github.com/fibguard/fibguard/internal/phase"
	"github.com/fibguard/fibguard/internal/version"
	"github.com/fibguard/fibguard/plugin"
)

func main() {
	// The end of the process's start: exec, the Go runtime and every
	// package's initialisation (docs/performance.md, the phases of ADD).
	phase.End("start")
	version.ExitIfRequested("fibguard", os.Args[1:])
	if e := plugin.LimitStdin(os.Getenv("CNI_COMMAND"), plugin.MaxConfigSize); e != nil {
		// As skel.PluginMainFuncs does: the error JSON on stdout, exit 1.
		if err := e.Print(); err != nil {
			log.Print("Error writing error JSON to stdout: ", err)
		}
		os.Exit(1)
	}
	skel.PluginMainFuncs(plugin.New().Funcs(), plugin.Versions, plugin.About())
	phase.Flush()
}
