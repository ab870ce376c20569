package fastresult

import (
	"reflect"
	"strings"
	"testing"

	current "github.com/containernetworking/cni/pkg/types/100"
)

// bridgeResult is what the reference bridge plugin prints for a pod (the
// 1.0.0 result fibguard reads on most ADDs), with every field of the
// result types set somewhere.
const bridgeResult = `{
    "cniVersion": "1.0.0",
    "interfaces": [
        {"name": "cni0", "mac": "9a:3e:2f:45:1b:07"},
        {"name": "veth1f2e3d4c", "mac": "6e:11:a2:c3:d4:e5"},
        {"name": "eth0", "mac": "0a:58:0a:f4:00:05", "mtu": 1450, "sandbox": "/var/run/netns/cni-1234", "socketPath": "/s", "pciID": "0000:00:01.0"}
    ],
    "ips": [
        {"interface": 2, "address": "10.244.0.5/24", "gateway": "10.244.0.1"},
        {"interface": 2, "address": "fd00:10:244::5/64", "gateway": "fd00:10:244::1"},
        {"address": "10.0.0.9/32"}
    ],
    "routes": [
        {"dst": "0.0.0.0/0", "gw": "10.244.0.1"},
        {"dst": "::/0"},
        {"dst": "10.96.0.0/12", "gw": "10.244.0.1", "mtu": 1400, "advmss": 1360, "priority": 10, "table": 100, "scope": 253}
    ],
    "dns": {"nameservers": ["10.96.0.10"], "domain": "cluster.local", "search": ["default.svc.cluster.local", "svc.cluster.local"], "options": ["ndots:5"]}
}`

// TestDecodeCommonResults: the results plugins commonly print are read
// here, not declined, and equal the library's.
func TestDecodeCommonResults(t *testing.T) {
	for name, data := range map[string]string{
		"bridge":       bridgeResult,
		"1.1.0":        strings.Replace(bridgeResult, `"1.0.0"`, `"1.1.0"`, 1),
		"compact":      `{"cniVersion":"1.0.0","interfaces":[{"name":"eth0","sandbox":"/var/run/netns/p"}],"ips":[{"interface":0,"address":"10.22.0.2/24","gateway":"10.22.0.1"}],"routes":[{"dst":"0.0.0.0/0"}],"dns":{}}`,
		"empty lists":  `{"cniVersion":"1.0.0","interfaces":[],"ips":[ ],"routes":[],"dns":{"nameservers":[]}}`,
		"version only": `{"cniVersion":"1.1.0"}`,
	} {
		t.Run(name, func(t *testing.T) {
			got, ok := Decode([]byte(data))
			if !ok {
				t.Fatalf("declined:\n%s", data)
			}
			sameAsLibrary(t, []byte(data), got)
		})
	}
}

// TestDecodeDeclines: input outside the subset is left to the library,
// whether the library takes it or not.
func TestDecodeDeclines(t *testing.T) {
	for name, data := range map[string]string{
		"another version":   `{"cniVersion":"0.4.0"}`,
		"no version":        `{"ips":[]}`,
		"unknown key":       `{"cniVersion":"1.0.0","extra":1}`,
		"key in other case": `{"cniVersion":"1.0.0","IPs":[]}`,
		"key twice":         `{"cniVersion":"1.0.0","ips":[],"ips":[]}`,
		"escape":            `{"cniVersion":"1.0.0","interfaces":[{"name":"eth\u0030"}]}`,
		"non-ASCII":         `{"cniVersion":"1.0.0","interfaces":[{"name":"é"}]}`,
		"null":              `{"cniVersion":"1.0.0","dns":null}`,
		"fraction":          `{"cniVersion":"1.0.0","interfaces":[{"mtu":1.0}]}`,
		"leading zero":      `{"cniVersion":"1.0.0","interfaces":[{"mtu":01}]}`,
		"bad address":       `{"cniVersion":"1.0.0","ips":[{"address":"10.0.0.300/24"}]}`,
		"bad gateway":       `{"cniVersion":"1.0.0","ips":[{"address":"10.0.0.3/24","gateway":"x"}]}`,
		"trailing data":     `{"cniVersion":"1.0.0"} {}`,
		"not an object":     `["cniVersion"]`,
		"truncated":         `{"cniVersion":"1.0.0","ips":[`,
	} {
		t.Run(name, func(t *testing.T) {
			if r, ok := Decode([]byte(data)); ok {
				t.Errorf("Decode took %s: %+v", data, r)
			}
		})
	}
}

// FuzzDecode: whatever Decode takes, the library takes too, and reads as
// the same result.
func FuzzDecode(f *testing.F) {
	f.Add([]byte(bridgeResult))
	f.Add([]byte(`{"cniVersion":"1.1.0","ips":[{"interface":-0,"address":"::ffff:10.0.0.2/120","gateway":""}],"routes":[{"dst":"10.0.0.0/8","table":-1}]}`))
	f.Add([]byte(`{"cniVersion":"1.0.0","interfaces":[{}],"ips":[{}],"routes":[{}],"dns":{"search":[""]}}`))
	f.Add([]byte(` { "cniVersion" : "1.0.0" } `))
	f.Fuzz(func(t *testing.T, data []byte) {
		got, ok := Decode(data)
		if !ok {
			return
		}
		sameAsLibrary(t, data, got)
	})
}

// sameAsLibrary fails unless the library reads data as got.
func sameAsLibrary(t *testing.T, data []byte, got *current.Result) {
	t.Helper()
	want, err := current.NewResult(data)
	if err != nil {
		t.Fatalf("Decode took what the library refuses (%v):\n%s", err, data)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Decode read\n%#v\nthe library\n%#v\nfrom %s", got, want, data)
	}
}
