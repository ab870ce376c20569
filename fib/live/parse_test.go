package live

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"syscall"
	"testing"

	"github.com/fibguard/fibguard/fib"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

// message serializes a route or rule message the way the kernel sends it.
func message(hdr unix.RtMsg, attrs ...*nl.RtAttr) []byte {
	b := (&nl.RtMsg{RtMsg: hdr}).Serialize()
	for _, a := range attrs {
		b = append(b, a.Serialize()...)
	}
	return b
}

func u8Attr(typ int, v uint8) *nl.RtAttr { return nl.NewRtAttr(typ, []byte{v}) }

func u64Attr(typ int, v uint64) *nl.RtAttr {
	return nl.NewRtAttr(typ, binary.NativeEndian.AppendUint64(nil, v))
}

// TestParseRule covers rule attributes iproute2 6.1 cannot set.
func TestParseRule(t *testing.T) {
	v4 := unix.RtMsg{Family: unix.AF_INET, Type: unix.FR_ACT_TO_TBL}
	prio := u32Attr(unix.FRA_PRIORITY, 10)
	tests := []struct {
		name    string
		msg     []byte
		check   func(fib.Rule) bool
		wantErr string
	}{
		{
			name:  "dscp as tos",
			msg:   message(v4, prio, u8Attr(fraDSCP, 10), u8Attr(fraDSCPMask, 0x3f), u32Attr(unix.FRA_TABLE, 1000)),
			check: func(r fib.Rule) bool { return r.TOS == 40 && r.Table == 1000 && r.Priority == 10 },
		},
		{
			name:  "suppressors unset",
			msg:   message(v4, prio, u32Attr(unix.FRA_SUPPRESS_PREFIXLEN, 0xffffffff)),
			check: func(r fib.Rule) bool { return r.SuppressPrefixLen == -1 && r.SuppressIfGroup == -1 },
		},
		{
			name:  "full port mask",
			msg:   message(v4, prio, nl.NewRtAttr(fraDPortMask, binary.NativeEndian.AppendUint16(nil, 0xffff))),
			check: func(r fib.Rule) bool { return r.Action == fib.ActionLookup },
		},
		{name: "dscp mask", msg: message(v4, prio, u8Attr(fraDSCP, 8), u8Attr(fraDSCPMask, 0x38)), wantErr: "rule 10 matches on a DSCP mask"},
		{name: "tunnel id", msg: message(v4, u64Attr(unix.FRA_TUN_ID, 7), prio), wantErr: "rule 10 matches on a tunnel id"},
		{name: "flow label", msg: message(v4, prio, u32Attr(fraFlowLabel, 5), u32Attr(fraFlowLabelMask, 0xfffff)), wantErr: "flow label"},
		{name: "short header", msg: []byte{unix.AF_INET, 0, 0}, wantErr: "shorter than its header"},
		{name: "short attribute", msg: message(v4, nl.NewRtAttr(unix.FRA_PRIORITY, []byte{1})), wantErr: "want 4"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := parseRule(tt.msg)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("error = %v, want one with %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !tt.check(r) {
				t.Errorf("rule = %+v", r)
			}
		})
	}
}

// TestParseRoute covers route messages a test namespace does not produce.
func TestParseRoute(t *testing.T) {
	names := func(i int) (string, error) {
		if i == 2 {
			return "eth0", nil
		}
		return "", fmt.Errorf("device index %d: %w", i, errChanged)
	}
	v4 := unix.RtMsg{Family: unix.AF_INET, Table: unix.RT_TABLE_MAIN, Type: unix.RTN_UNICAST, Dst_len: 24}
	dst := nl.NewRtAttr(unix.RTA_DST, []byte{10, 0, 0, 0})
	hop := func(oif uint32, size uint16) []byte {
		b := binary.NativeEndian.AppendUint16(nil, size)
		b = append(b, 0, 0)
		return binary.NativeEndian.AppendUint32(b, oif)
	}
	tests := []struct {
		name    string
		msg     []byte
		want    string
		dst     string
		wantErr error
		errText string
	}{
		{
			name: "default route",
			msg:  message(unix.RtMsg{Family: unix.AF_INET6, Table: unix.RT_TABLE_MAIN, Type: unix.RTN_UNICAST}, u32Attr(unix.RTA_OIF, 2)),
			want: "default dev eth0 table main proto unspec",
			dst:  "::/0",
		},
		{
			name: "nexthop object spelled out",
			msg:  message(v4, dst, u32Attr(rtaNHID, 5), u32Attr(unix.RTA_OIF, 2)),
			want: "10.0.0.0/24 nhid 5 dev eth0 table main proto unspec",
		},
		{
			name: "blackhole nexthop object",
			msg:  message(unix.RtMsg{Family: unix.AF_INET, Table: unix.RT_TABLE_MAIN, Type: unix.RTN_BLACKHOLE, Dst_len: 24}, dst, u32Attr(rtaNHID, 5)),
			want: "blackhole 10.0.0.0/24 nhid 5 table main proto unspec",
		},
		{name: "nexthop object only", msg: message(v4, dst, u32Attr(rtaNHID, 5)), errText: "nexthop_compat_mode"},
		{name: "unknown device", msg: message(v4, dst, u32Attr(unix.RTA_OIF, 9)), wantErr: errChanged},
		{name: "truncated next hop", msg: message(v4, dst, nl.NewRtAttr(unix.RTA_MULTIPATH, hop(2, 8)[:6])), errText: "trailing bytes"},
		{name: "next hop longer than its attribute", msg: message(v4, dst, nl.NewRtAttr(unix.RTA_MULTIPATH, hop(2, 64))), errText: "next hop of 64 bytes"},
		{name: "bad prefix length", msg: message(unix.RtMsg{Family: unix.AF_INET, Dst_len: 40}, dst), errText: "prefix length 40"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := parseRoute(tt.msg, names)
			switch {
			case tt.wantErr != nil || tt.errText != "":
				if err == nil || (tt.wantErr != nil && !errors.Is(err, tt.wantErr)) || !strings.Contains(err.Error(), tt.errText) {
					t.Errorf("error = %v, want %v %q", err, tt.wantErr, tt.errText)
				}
			case err != nil:
				t.Fatal(err)
			case r.String() != tt.want:
				t.Errorf("route = %s, want %s", r.String(), tt.want)
			case tt.dst != "" && r.Dst != netip.MustParsePrefix(tt.dst):
				t.Errorf("destination = %s, want %s", r.Dst, tt.dst)
			}
		})
	}
}

func TestRetry(t *testing.T) {
	tests := []struct {
		name        string
		interrupted int
		wantCalls   int
		wantErr     bool
	}{
		{"clean", 0, 1, false},
		{"interrupted once", 1, 2, false},
		{"always interrupted", 100, dumpAttempts, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			calls := 0
			v, err := retry(func() (int, error) {
				calls++
				if calls <= tt.interrupted {
					return -1, errDumpInterrupted
				}
				return 42, nil
			})
			if calls != tt.wantCalls || (err != nil) != tt.wantErr {
				t.Fatalf("%d calls, error %v; want %d calls, error %v", calls, err, tt.wantCalls, tt.wantErr)
			}
			if err == nil && v != 42 {
				t.Errorf("value = %d, want 42", v)
			}
			if err != nil && !errors.Is(err, errDumpInterrupted) {
				t.Errorf("error %v does not wrap errDumpInterrupted", err)
			}
		})
	}
}

// TestParseAddr checks how an RTM_NEWADDR message becomes an address:
// the local address and its peer, host bits kept, flags from IFA_FLAGS.
func TestParseAddr(t *testing.T) {
	ip := func(s string) *nl.RtAttr { return nl.NewRtAttr(0, netip.MustParseAddr(s).AsSlice()) }
	attr := func(typ int, a *nl.RtAttr) *nl.RtAttr { a.Type = uint16(typ); return a }
	msg := func(family, bits int, flags uint8, attrs ...*nl.RtAttr) []byte {
		h := nl.NewIfAddrmsg(family)
		h.Prefixlen, h.Flags, h.Scope, h.Index = uint8(bits), flags, unix.RT_SCOPE_UNIVERSE, 7
		b := h.Serialize()
		for _, a := range attrs {
			b = append(b, a.Serialize()...)
		}
		return b
	}
	for _, tc := range []struct {
		name        string
		msg         []byte
		prefix      string
		peer        string
		flags       uint32
		wantErr     bool
		otherFamily bool
	}{
		{name: "IPv4", msg: msg(unix.AF_INET, 24, 0, attr(unix.IFA_ADDRESS, ip("10.1.2.3")), attr(unix.IFA_LOCAL, ip("10.1.2.3"))), prefix: "10.1.2.3/24"},
		{name: "IPv4 peer", msg: msg(unix.AF_INET, 32, 0, attr(unix.IFA_ADDRESS, ip("10.0.0.2")), attr(unix.IFA_LOCAL, ip("10.0.0.1"))), prefix: "10.0.0.1/32", peer: "10.0.0.2/32"},
		{name: "IPv4 local only", msg: msg(unix.AF_INET, 24, 0, attr(unix.IFA_LOCAL, ip("10.0.0.1"))), prefix: "10.0.0.1/32"},
		{name: "IPv6", msg: msg(unix.AF_INET6, 64, unix.IFA_F_TENTATIVE, attr(unix.IFA_ADDRESS, ip("fd00::1"))), prefix: "fd00::1/64", flags: unix.IFA_F_TENTATIVE},
		{name: "IPv6 peer", msg: msg(unix.AF_INET6, 128, 0, attr(unix.IFA_ADDRESS, ip("fd00::2")), attr(unix.IFA_LOCAL, ip("fd00::1"))), prefix: "fd00::1/128", peer: "fd00::2/128"},
		{name: "IFA_FLAGS", msg: msg(unix.AF_INET6, 64, 0, attr(unix.IFA_ADDRESS, ip("fd00::1")), u32Attr(unix.IFA_FLAGS, unix.IFA_F_NOPREFIXROUTE)), prefix: "fd00::1/64", flags: unix.IFA_F_NOPREFIXROUTE},
		{name: "bad length", msg: msg(unix.AF_INET, 33, 0, attr(unix.IFA_ADDRESS, ip("10.1.2.3"))), wantErr: true},
		{name: "short address", msg: msg(unix.AF_INET, 24, 0, nl.NewRtAttr(unix.IFA_ADDRESS, []byte{10, 1})), wantErr: true},
		{name: "short header", msg: []byte{2, 24}, wantErr: true},
		{name: "other family", msg: msg(unix.AF_PACKET, 0, 0), otherFamily: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, err := parseAddr(tc.msg)
			if tc.wantErr {
				if err == nil {
					t.Errorf("parseAddr = %+v, want an error", a)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tc.otherFamily {
				if a.prefix.IsValid() {
					t.Errorf("prefix %s for a message of family %d", a.prefix, a.family)
				}
				return
			}
			if a.prefix.String() != tc.prefix || (tc.peer != "" && a.peer.String() != tc.peer) || (tc.peer == "" && a.peer.IsValid()) {
				t.Errorf("parseAddr = %s peer %s, want %s peer %q", a.prefix, a.peer, tc.prefix, tc.peer)
			}
			if a.flags != tc.flags || a.index != 7 {
				t.Errorf("flags %#x index %d, want %#x 7", a.flags, a.index, tc.flags)
			}
		})
	}
}

// FuzzParseAttrs holds parseAttrs to nl.ParseRouteAttr, which it
// replaces: the same attributes, and an error for the same inputs.
func FuzzParseAttrs(f *testing.F) {
	f.Add(message(unix.RtMsg{Family: unix.AF_INET}, u32Attr(unix.RTA_TABLE, 254), nl.NewRtAttr(unix.RTA_DST, []byte{10, 0, 0, 1}))[unix.SizeofRtMsg:])
	f.Add([]byte{5, 0, 1, 0, 7, 0, 0, 0, 4, 0, 2, 0})
	f.Add([]byte{3, 0, 1, 0})
	f.Add([]byte{9, 0, 1, 0, 1, 2, 3, 4, 5})
	f.Fuzz(func(t *testing.T, b []byte) {
		var want []syscall.NetlinkRouteAttr
		var wantErr error
		panicked := func() (p bool) {
			defer func() { p = recover() != nil }()
			want, wantErr = nl.ParseRouteAttr(b)
			return false
		}()
		got, err := parseAttrs(b)
		if panicked {
			return // nl's own bug on a last attribute without padding
		}
		if (err != nil) != (wantErr != nil) {
			t.Fatalf("parseAttrs(%x) error %v, nl's %v", b, err, wantErr)
		}
		if err == nil && fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("parseAttrs(%x) = %v, nl's %v", b, got, want)
		}
	})
}
