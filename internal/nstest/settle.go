package nstest

import (
	"encoding/json"
	"fmt"
	"slices"
	"time"
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
