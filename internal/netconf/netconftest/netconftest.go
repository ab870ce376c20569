// Package netconftest builds fibguard plugin configurations for tests, as
// the runtime hands them to the plugin on stdin.
package netconftest

import (
	"encoding/json"
	"testing"
)

// PrevResult100 is a bridge plugin's result in cniVersion 1.0.0.
const PrevResult100 = `{"cniVersion":"1.0.0",
	"interfaces":[{"name":"cni0"},{"name":"veth1"},{"name":"eth0","sandbox":"/var/run/netns/pod"}],
	"ips":[{"address":"10.22.0.2/24","gateway":"10.22.0.1","interface":2}],
	"routes":[{"dst":"0.0.0.0/0"}]}`

// PrevResult040 is the same result in cniVersion 0.4.0.
const PrevResult040 = `{"cniVersion":"0.4.0",
	"interfaces":[{"name":"cni0"},{"name":"veth1"},{"name":"eth0","sandbox":"/var/run/netns/pod"}],
	"ips":[{"version":"4","address":"10.22.0.2/24","gateway":"10.22.0.1","interface":2}],
	"routes":[{"dst":"0.0.0.0/0"}]}`

// JSON builds a plugin configuration: cniVersion, name, type and the
// given fields, a nil value removing a field.
func JSON(t testing.TB, cniVersion string, fields map[string]any) []byte {
	t.Helper()
	m := map[string]any{"cniVersion": cniVersion, "name": "test-net", "type": "fibguard"}
	for k, v := range fields {
		if v == nil {
			delete(m, k)
			continue
		}
		m[k] = v
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatalf("marshal config: %v", err)
	}
	return b
}
