package plugin

import (
	"bytes"
	"encoding/json"
	"strconv"
	"testing"

	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/cni/pkg/types/create"

	"github.com/fibguard/fibguard/internal/netconf"
)

// FuzzPassOn: for every prevResult that netconf.Parse accepts, in any of
// the versions fibguard speaks, what an accepting ADD prints (passOn) is
// a result of the configuration's version that the runtime can read, and
// it says what the checks judged (Config.Result): the pod's interfaces,
// addresses, routes and DNS, unchanged; a prevResult already in that
// version is printed byte for byte as it came.
func FuzzPassOn(f *testing.F) {
	for _, s := range []struct{ version, prev string }{
		{"1.0.0", prevResult100},
		{"0.4.0", prevResult040},
		{"1.1.0", `{"interfaces":[{"name":"eth0","mac":"0a:58:0a:f4:00:02","mtu":1450,"sandbox":"/var/run/netns/p","socketPath":"/s","pciID":"0000:00:01.0"}],` +
			`"ips":[{"address":"fd00::2/64","gateway":"fd00::1","interface":0},{"address":"10.0.0.2/24"}],` +
			`"routes":[{"dst":"::/0","gw":"fd00::1","mtu":1400,"advmss":1360,"priority":10,"table":100,"scope":253}],` +
			`"dns":{"nameservers":["10.96.0.10"],"domain":"cluster.local","search":["svc.cluster.local"],"options":["ndots:5"]}}`},
		{"0.3.1", `{"cniVersion":"0.3.1","ips":[{"version":"6","address":"10.0.0.2/24"}]}`},
		{"0.3.0", `{"ips":[{"version":"4","address":"10.0.0.2/24","interface":5}]}`},
		{"1.0.0", `{"cniVersion":"1.0.0","ips":[{"address":"::ffff:10.0.0.2/120"}]}`},
	} {
		f.Add(s.version, s.prev)
	}
	f.Fuzz(func(t *testing.T, version, prev string) {
		stdin := `{"cniVersion":` + strconv.Quote(version) + `,"name":"n","type":"fibguard","prevResult":` + prev + `}`
		conf, err := netconf.Parse([]byte(stdin))
		if err != nil || conf.PrevResult == nil {
			return
		}
		var out bytes.Buffer
		if err := passOn(conf, &out); err != nil {
			t.Fatalf("an accepted prevResult is not passed on: %v\nstdin: %s", err, stdin)
		}
		printed, err := create.Create(conf.CNIVersion, out.Bytes())
		if err != nil {
			t.Fatalf("the runtime cannot read what ADD printed: %v\n%s", err, out.Bytes())
		}
		if v := printed.Version(); v != conf.CNIVersion {
			t.Fatalf("ADD printed a result of version %q for a configuration of %q\nstdin: %s", v, conf.CNIVersion, stdin)
		}
		if conf.PassOn != nil && !bytes.Equal(out.Bytes(), conf.PassOn) {
			t.Fatalf("a prevResult in the configuration's version is not passed on as given:\nprinted %s\ngiven   %s", out.Bytes(), conf.PassOn)
		}
		if got, want := asCurrent(t, printed), asCurrent(t, conf.Result); got != want {
			t.Fatalf("ADD passes on another result than the checks judged:\nprinted %s\njudged  %s\nstdin: %s", got, want, stdin)
		}
	})
}

// asCurrent is a result in the current version, as JSON, for comparison.
func asCurrent(t *testing.T, r types.Result) string {
	t.Helper()
	res, err := current.NewResultFromResult(r)
	if err != nil {
		t.Fatalf("convert %v: %v", r, err)
	}
	b, err := json.Marshal(res)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
