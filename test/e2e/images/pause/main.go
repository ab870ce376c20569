// Command pause is the sandbox ("pause") container of the local e2e node: it
// is PID 1 of every pod, holds the pod's namespaces, reaps orphans, and exits
// on SIGTERM or SIGINT. Written in Go so that the image needs no C toolchain;
// hack/local-cluster.sh packs it as localhost/fibguard-e2e/pause:1.0, which
// the node's containerd uses as its sandbox image and never pulls.
package main

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "-v" {
		fmt.Println("fibguard-e2e pause 1.0")
		return
	}
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGCHLD)
	for sig := range sigs {
		if sig != syscall.SIGCHLD {
			os.Exit(0)
		}
		reap()
	}
}

// reap collects every exited child, so none stays a zombie: as PID 1 of the
// pod, pause inherits the orphans of every container sharing its PID
// namespace.
func reap() {
	for {
		var status syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &status, syscall.WNOHANG, nil)
		if pid <= 0 || err != nil {
			return
		}
	}
}
