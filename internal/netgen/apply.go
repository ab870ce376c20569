package netgen

import (
	"fmt"
	"os/exec"
	"strings"

	"github.com/fibguard/fibguard/internal/nstest"
)

// Apply builds the setup in a test namespace: sysctls, links, device
// sysctls, then the commands. Generated lines may fail by design (a
// gateway that is not reachable, a device that is down): `ip -force
// -batch` runs the others, and the test loads whatever state results.
func (s *Setup) Apply(ns *nstest.NS) error {
	if err := sysctls(ns, s.Sysctls); err != nil {
		return err
	}
	ForceBatch(ns, s.Links)
	if err := sysctls(ns, s.DevSysctls); err != nil {
		return err
	}
	ForceBatch(ns, s.Commands)
	return nil
}

// ForceBatch runs lines through `ip -force -batch` in the namespace,
// ignoring the lines that fail.
func ForceBatch(ns *nstest.NS, lines []string) {
	cmd := exec.Command("ip", "-force", "-n", ns.Name(), "-batch", "-")
	cmd.Stdin = strings.NewReader(strings.Join(lines, "\n") + "\n")
	// Failing lines are expected; the state the kernel ends with is what
	// the tests compare.
	_ = cmd.Run()
}

func sysctls(ns *nstest.NS, kvs []string) error {
	for _, kv := range kvs {
		k, v, _ := strings.Cut(kv, "=")
		if err := ns.Sysctl(k, v); err != nil {
			return fmt.Errorf("sysctl %s: %w", kv, err)
		}
	}
	return nil
}
