package iproute

import (
	"reflect"
	"strings"
	"testing"

	"github.com/fibguard/fibguard/fib"
)

const (
	defaultRules4 = `[{"priority":0,"src":"all","table":"local"},{"priority":32766,"src":"all","table":"main"},{"priority":32767,"src":"all","table":"default"}]`
	loLink        = `[{"ifindex":1,"ifname":"lo","flags":["LOOPBACK","UP","LOWER_UP"],"link_type":"loopback"}]`
)

func TestParseUnmerged(t *testing.T) {
	tests := []struct {
		name       string
		rules4     string
		unmerged   bool
		wantRules4 int
	}{
		{"not collected: a new namespace", "", false, 3},
		{"only the defaults", defaultRules4, false, 3},
		{"a custom rule", `[{"priority":0,"src":"all","table":"local"},{"priority":100,"src":"all","table":"10"},{"priority":32766,"src":"all","table":"main"},{"priority":32767,"src":"all","table":"default"}]`, true, 4},
		{"a default rule deleted", `[{"priority":0,"src":"all","table":"local"},{"priority":32766,"src":"all","table":"main"}]`, true, 2},
		{"a default rule changed", `[{"priority":0,"src":"all","table":"local"},{"priority":32766,"src":"all","table":"main","suppress_prefixlen":0},{"priority":32767,"src":"all","table":"default"}]`, true, 3},
		{"no rules at all", `[]`, true, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := Parse(Dump{Links: []byte(loLink), Rules4: []byte(tt.rules4)})
			if err != nil {
				t.Fatal(err)
			}
			if m.Unmerged() != tt.unmerged {
				t.Errorf("Unmerged = %v, want %v", m.Unmerged(), tt.unmerged)
			}
			n := 0
			for _, r := range m.State().Rules {
				if r.Family == fib.V4 {
					n++
				}
			}
			if n != tt.wantRules4 {
				t.Errorf("got %d IPv4 rules, want %d", n, tt.wantRules4)
			}
			if want := fib.DefaultRules(fib.V6); !reflect.DeepEqual(m.State().Rules[n:], want) {
				t.Errorf("IPv6 rules %+v, want the defaults", m.State().Rules[n:])
			}
		})
	}
}

func TestParseLinksFromAddrs(t *testing.T) {
	d := readDump(t, "full")
	want := parseDump(t, "full")
	d.Links = nil
	m, err := Parse(d)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(m.State().Links, want.State().Links) {
		t.Errorf("links from the address dump:\ngot  %+v\nwant %+v", m.State().Links, want.State().Links)
	}
}

func TestParseEmpty(t *testing.T) {
	m, err := Parse(Dump{})
	if err != nil {
		t.Fatal(err)
	}
	if len(m.State().Links)+len(m.State().Addrs)+len(m.State().Routes) != 0 || m.Unmerged() || m.State().Conf != nil {
		t.Errorf("got %+v, want a model with only the default rules", m)
	}
	if want := append(fib.DefaultRules(fib.V4), fib.DefaultRules(fib.V6)...); !reflect.DeepEqual(m.State().Rules, want) {
		t.Errorf("rules: got %+v, want %+v", m.State().Rules, want)
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		dump Dump
		want string
	}{
		{
			name: "address dump device missing from the link dump",
			dump: Dump{Links: []byte(loLink), Addrs: []byte(`[{"ifindex":2,"ifname":"eth0","addr_info":[]}]`)},
			want: `device "eth0" is not in the link dump`,
		},
		{
			name: "address dump index differs",
			dump: Dump{Links: []byte(loLink), Addrs: []byte(`[{"ifindex":7,"ifname":"lo","addr_info":[]}]`)},
			want: `device "lo" has index 7, 1 in the link dump`,
		},
		{
			name: "route through an unknown device",
			dump: Dump{Links: []byte(loLink), Routes4: []byte(`[{"dst":"10.0.0.0/8","dev":"eth0"}]`)},
			want: `unknown device "eth0"`,
		},
		{
			name: "route names the family",
			dump: Dump{Routes6: []byte(`[{"dst":"2001:db8::/32","gateway":"10.0.0.1","dev":"lo"}]`)},
			want: `inet6 routes: route 0 ("gateway":"10.0.0.1"): bad address: 10.0.0.1 is not inet6`,
		},
		{
			name: "rule names the family",
			dump: Dump{Rules4: []byte(`[{"priority":5,"src":"2001:db8::","srclen":32,"table":"main"}]`)},
			want: `inet rules: rule 0 ("src":"2001:db8::"): bad address`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(tt.dump)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got error %v, want one containing %q", err, tt.want)
			}
		})
	}
}
