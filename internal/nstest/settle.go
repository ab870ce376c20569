package nstest

import (
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"time"

	"github.com/fibguard/fibguard/fib"
)

// Settle waits until the kernel has processed every carrier change in the
// namespace: linkwatch applies them (operstate, and the linkdown flag of
// IPv4 routes) up to about a second after the fact, and a test that reads
// the state before then compares against a moving target.
func (n *NS) Settle(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		out, err := n.IP("-j", "link", "show")
		if err != nil {
			return err
		}
		var links []struct {
			Name      string   `json:"ifname"`
			Flags     []string `json:"flags"`
			OperState string   `json:"operstate"`
		}
		if err := json.Unmarshal(out, &links); err != nil {
			return fmt.Errorf("ip -j link show: %w", err)
		}
		pending := ""
		for _, l := range links {
			down := l.OperState == "DOWN" || l.OperState == "LOWERLAYERDOWN"
			up := slices.Contains(l.Flags, "UP") && slices.Contains(l.Flags, "LOWER_UP")
			if up == down {
				pending = l.Name
			}
		}
		if pending == "" {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("carrier change of %s not processed after %s", pending, timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// SettledModel waits for the carrier changes (Settle), then loads the
// namespace with load until two loads 50 ms apart agree on addresses and
// routes: IPv6 link-local addresses and their routes appear
// asynchronously after a device gets carrier, and a model must hold what
// the kernel will use. Carrier changes get 15 s: linkwatch takes the
// RTNL lock, which the teardown of another namespace with many devices
// holds for seconds (5 s ran out once while such a namespace was deleted
// beside TestRandomMultipath).
func (n *NS) SettledModel(load func() (*fib.Model, error)) (*fib.Model, error) {
	if err := n.Settle(15 * time.Second); err != nil {
		return nil, err
	}
	var prev *fib.Model
	for range 60 {
		m, err := load()
		if err != nil {
			return nil, fmt.Errorf("load: %w", err)
		}
		if prev != nil && sameAddrsRoutes(prev.State(), m.State()) {
			return m, nil
		}
		prev = m
		time.Sleep(50 * time.Millisecond)
	}
	return nil, fmt.Errorf("namespace %s: state did not settle in 3 s", n.name)
}

// sameAddrsRoutes reports whether two states have the same addresses and
// routes.
func sameAddrsRoutes(a, b fib.State) bool {
	return reflect.DeepEqual(a.Addrs, b.Addrs) && reflect.DeepEqual(a.Routes, b.Routes)
}
