package plugin

import (
	"encoding/json"
	"testing"
)

// prevResult100 is a bridge plugin's result in cniVersion 1.0.0.
const prevResult100 = `{"cniVersion":"1.0.0",
	"interfaces":[{"name":"cni0"},{"name":"veth1"},{"name":"eth0","sandbox":"/var/run/netns/pod"}],
	"ips":[{"address":"10.22.0.2/24","gateway":"10.22.0.1","interface":2}],
	"routes":[{"dst":"0.0.0.0/0"}]}`

// prevResult040 is the same result in cniVersion 0.4.0.
const prevResult040 = `{"cniVersion":"0.4.0",
	"interfaces":[{"name":"cni0"},{"name":"veth1"},{"name":"eth0","sandbox":"/var/run/netns/pod"}],
	"ips":[{"version":"4","address":"10.22.0.2/24","gateway":"10.22.0.1","interface":2}],
	"routes":[{"dst":"0.0.0.0/0"}]}`

// confJSON builds a plugin configuration: cniVersion, name, type and the
// given fields, a nil value removing a field.
func confJSON(t testing.TB, cniVersion string, fields map[string]any) []byte {
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
