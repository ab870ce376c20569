package iproute

import (
	"reflect"
	"strings"
	"testing"

	"github.com/fibguard/fibguard/fib"
)

func TestParseRules(t *testing.T) {
	rule := func(change func(*fib.Rule)) fib.Rule {
		r := fib.Rule{Family: fib.V4, Priority: 5, Action: fib.ActionLookup, Table: 10, SuppressPrefixLen: -1, SuppressIfGroup: -1}
		change(&r)
		return r
	}
	tests := []struct {
		name string
		in   string
		want fib.Rule
	}{
		{"prefix length of 0 is any", `{"priority":5,"src":"10.0.0.0","srclen":0,"table":"10"}`, rule(func(*fib.Rule) {})},
		{"selector is masked", `{"priority":5,"src":"10.1.2.3","srclen":8,"table":"10"}`, rule(func(r *fib.Rule) { r.Src = pfx("10.0.0.0/8") })},
		{"length without address", `{"priority":5,"src":"0","srclen":8,"table":"10"}`, rule(func(r *fib.Rule) { r.Src = pfx("0.0.0.0/8") })},
		{"numbers of ip -N", `{"priority":5,"src":"all","ipproto":"ipproto-6","table":"254","action":"7"}`, rule(func(r *fib.Rule) {
			r.IPProto, r.Table, r.Action = 6, fib.TableMain, fib.ActionUnreachable
		})},
		{"plain ipproto number", `{"priority":5,"ipproto":"17","table":"10"}`, rule(func(r *fib.Rule) { r.IPProto = 17 })},
		{"flags given as true", `{"priority":5,"not":true,"table":"10"}`, rule(func(r *fib.Rule) { r.Not = true })},
		{"flags given as false", `{"priority":5,"not":false,"l3mdev":false,"table":"10"}`, rule(func(*fib.Rule) {})},
		{"group default", `{"priority":5,"table":"10","suppress_ifgroup":"default"}`, rule(func(r *fib.Rule) { r.SuppressIfGroup = 0 })},
		{"negative suppress_prefixlen never suppresses", `{"priority":5,"table":"10","suppress_prefixlen":-2}`, rule(func(*fib.Rule) {})},
		{"DSCP name", `{"priority":5,"tos":"AF41","table":"10"}`, rule(func(r *fib.Rule) { r.TOS = 0x88 })},
		{"unresolved goto", `{"priority":5,"goto":6,"unresolved":null}`, rule(func(r *fib.Rule) { r.Action, r.Table, r.Goto = fib.ActionGoto, 0, 6 })},
		{"l3mdev without table", `{"priority":5,"l3mdev":null}`, rule(func(r *fib.Rule) { r.L3MDev, r.Table = true, fib.TableUnspec })},
		{"ignored keys", `{"priority":5,"table":"10","protocol":"static","flow_to":"3","flow_from":"2","iif":"x","iif_detached":null}`, rule(func(r *fib.Rule) { r.IIF = "x" })},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseRules([]byte("["+tt.in+"]"), fib.V4)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 1 || !reflect.DeepEqual(got[0], tt.want) {
				t.Errorf("got  %+v\nwant [%+v]", got, tt.want)
			}
		})
	}
}

func TestParseRulesErrors(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want string
	}{
		{"no priority", `{"src":"all","table":"main"}`, `rule 0: no "priority"`},
		{"priority too large", `{"priority":4294967296,"table":"main"}`, `rule 0 ("priority":4294967296): out of range`},
		{"no table for lookup", `{"priority":5,"src":"all"}`, `rule 0: no "table"`},
		{"unknown table", `{"priority":5,"table":"vpn"}`, `rule 0 ("table":"vpn"): unknown table "vpn"`},
		{"bad src", `{"priority":5,"src":"10.0.0.300","table":"main"}`, `rule 0 ("src":"10.0.0.300"): bad address`},
		{"src of the other family", `{"priority":5,"src":"2001:db8::","srclen":32,"table":"main"}`, `rule 0 ("src":"2001:db8::"): bad address: 2001:db8:: is not inet`},
		{"srclen too long", `{"priority":5,"src":"10.0.0.0","srclen":33,"table":"main"}`, `rule 0 ("srclen":33): out of range [0, 32]`},
		{"srclen with all", `{"priority":5,"src":"all","srclen":8,"table":"main"}`, `rule 0 ("srclen":8): without an address in "src"`},
		{"dst zone", `{"priority":5,"dst":"10.0.0.1%eth0","table":"main"}`, `rule 0 ("dst":"10.0.0.1%eth0"): bad address`},
		{"decimal fwmark", `{"priority":5,"fwmark":"16","table":"main"}`, `rule 0 ("fwmark":"16"): "16" is not a 0x-prefixed hex number`},
		{"fwmark too large", `{"priority":5,"fwmark":"0x100000000","table":"main"}`, `rule 0 ("fwmark":"0x100000000"): strconv.ParseUint`},
		{"fwmask alone", `{"priority":5,"fwmask":"0xff","table":"main"}`, `rule 0 ("fwmask":"0xff"): without fwmark`},
		{"bad fwmask", `{"priority":5,"fwmark":"0x1","fwmask":"0x","table":"main"}`, `rule 0 ("fwmask":"0x"): "0x" is not a 0x-prefixed hex number`},
		{"non-zero mark with mask 0", `{"priority":5,"fwmark":"0x10","fwmask":"0","table":"main"}`, `rule 0 ("fwmask":"0"): mask 0 with a non-zero mark is not supported by the model`},
		{"bad tos", `{"priority":5,"tos":"0x100","table":"main"}`, `rule 0 ("tos":"0x100"): unknown DS field`},
		{"iif not a string", `{"priority":5,"iif":1,"table":"main"}`, `rule 0 ("iif":1): json: cannot unmarshal number`},
		{"uid_start alone", `{"priority":5,"uid_start":5,"table":"main"}`, `rule 0: no "uid_end"`},
		{"uid range reversed", `{"priority":5,"uid_start":5,"uid_end":4,"table":"main"}`, `rule 0 ("uid_end":4): below uid_start 5`},
		{"unknown ipproto name", `{"priority":5,"ipproto":"quic","table":"main"}`, `rule 0 ("ipproto":"quic"): unknown IP protocol "quic" (dump with ip -N)`},
		{"ipproto too large", `{"priority":5,"ipproto":"ipproto-256","table":"main"}`, `rule 0 ("ipproto":"ipproto-256"): unknown IP protocol`},
		{"sport 0", `{"priority":5,"sport":0,"table":"main"}`, `rule 0 ("sport":0): out of range [1, 65535]`},
		{"dport too large", `{"priority":5,"dport":65536,"table":"main"}`, `rule 0 ("dport":65536): out of range [1, 65535]`},
		{"sport beside a range", `{"priority":5,"sport":1,"sport_start":1,"sport_end":2,"table":"main"}`, `rule 0 ("sport":1): beside a range`},
		{"dport range reversed", `{"priority":5,"dport_start":9,"dport_end":8,"table":"main"}`, `rule 0 ("dport_end":8): below dport_start 9`},
		{"dport_end alone", `{"priority":5,"dport_end":8,"table":"main"}`, `rule 0: no "dport_start"`},
		{"suppress_prefixlen a string", `{"priority":5,"suppress_prefixlen":"0","table":"main"}`, `rule 0 ("suppress_prefixlen":"0"): json: cannot unmarshal string`},
		{"unknown group", `{"priority":5,"suppress_ifgroup":"dmz","table":"main"}`, `rule 0 ("suppress_ifgroup":"dmz"): unknown device group "dmz" (dump with ip -N)`},
		{"backward goto", `{"priority":5,"goto":5}`, `rule 0 ("goto":5): backward goto`},
		{"goto none", `{"priority":5,"goto":"none"}`, `rule 0 ("goto":"none"): json: cannot unmarshal string`},
		{"goto and nop", `{"priority":5,"goto":6,"nop":null}`, `rule 0: more than one of goto, nop and action`},
		{"unknown action", `{"priority":5,"action":"nat"}`, `rule 0 ("action":"nat"): unknown rule action "nat"`},
		{"lookup as an action", `{"priority":5,"action":"lookup","table":"main"}`, `rule 0 ("action":"lookup"): unsupported rule action`},
		{"numeric action out of range", `{"priority":5,"action":"10"}`, `rule 0 ("action":"10"): unsupported rule action`},
		{"dscp selector", `{"priority":5,"dscp":"CS1","table":"main"}`, `rule 0 ("dscp":"CS1"): selector not supported by the model`},
		{"flowlabel selector", `{"priority":5,"flowlabel":"0x1","table":"main"}`, `rule 0 ("flowlabel":"0x1"): selector not supported by the model`},
		{"tun_id selector", `{"priority":5,"tun_id":7,"table":"main"}`, `rule 0 ("tun_id":7): selector not supported by the model`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseRules([]byte("["+tt.in+"]"), fib.V4)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got error %v, want one containing %q", err, tt.want)
			}
		})
	}
}
