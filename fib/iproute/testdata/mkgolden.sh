#!/bin/bash
# mkgolden.sh rebuilds the golden iproute2 dumps of this directory from
# scratch network namespaces. It needs root and changes nothing outside
# the namespaces it creates, which it deletes on exit.
#
#   full/     a namespace with every route type, rule selector and action,
#             dumped with the documented commands (pretty-printed, -p)
#   numeric/  the same namespace dumped with ip -N (numbers for names)
#   plain/    the same namespace dumped without -d
#   l3mdev/   its rules once an l3mdev rule is added
#   fresh/    a new namespace with lo up
#
# The golden files record iproute2 6.1 on Linux 6.18; tests assert on them,
# so regenerate only on purpose and update the tests to match.
set -euo pipefail
cd "$(dirname "$0")"

NS=fgparse-$$
FRESH=fgparse-fresh-$$
cleanup() {
	ip netns del "$NS" 2>/dev/null || true
	ip netns del "$FRESH" 2>/dev/null || true
}
trap cleanup EXIT
ip netns add "$NS"
ip netns add "$FRESH"
n() { ip -n "$NS" "$@"; }

n link set lo up
n addr add 127.16.0.1/16 dev lo

# br0 (group 7) with veth1 enslaved; veth0 its peer carries most routes.
n link add br0 type bridge
n link set br0 group 7
n link add veth0 type veth peer name veth1
n link set veth1 master br0
n link add mac0 link veth0 type macvlan mode bridge
n tuntap add tap0 mode tap
# veth2 is up without carrier (its peer veth3 stays down).
n link add veth2 type veth peer name veth3
# veth4 carries a multipath next hop that turns dead when it goes down.
n link add veth4 type veth peer name veth5
for d in br0 veth0 veth1 mac0 veth2 veth4 veth5; do n link set "$d" up; done

n addr add 10.0.0.10/24 dev veth0
n addr add 10.0.0.11/24 dev veth0
n addr add 10.10.0.1 peer 10.10.0.0/24 dev veth0
n addr add 10.12.0.1/24 dev veth0 scope link
n addr add 10.0.1.1/24 dev br0 noprefixroute
n addr add 10.9.0.1 peer 10.9.0.2/32 dev veth2
n addr add 192.168.50.1/24 dev mac0
n addr add 10.44.0.1/24 dev veth4
n addr add 2001:db8:1::10/64 dev veth0 nodad
n addr add 2001:db8:5::1 peer 2001:db8:5::2/128 dev veth0 nodad
n addr add 2001:db8:6::1/64 dev veth0 nodad valid_lft 1000 preferred_lft 500 noprefixroute
n addr add 2001:db8:2::1/64 dev br0
n addr add 2001:db8:3::1/64 dev veth2 nodad preferred_lft 0
n addr add 2001:db8:3::2/64 dev veth2
n addr add fd00::1/64 dev mac0 nodad
n addr add 2001:db8:44::1/64 dev veth4 nodad

n route add default via 10.0.0.1 dev veth0 metric 100
n route add 10.1.0.0/16 via 10.0.0.2 dev veth0 proto static metric 50
n route add 10.2.0.0/16 tos 0x10 via 10.0.0.3 dev veth0 table 10
n route add 10.3.0.0/16 via 192.0.2.1 dev veth0 onlink table 10
n route add 10.4.0.0/16 table 20 nexthop via 10.0.0.5 dev veth0 weight 2 nexthop via 10.0.0.6 dev veth0 weight 1
n route add blackhole 10.5.0.0/16 table 20
n route add unreachable 10.6.0.0/16 table 20 metric 10
n route add prohibit 10.7.0.0/16 table 20
n route add throw 10.8.0.0/16 table 20
n route add local 10.20.0.1 dev veth0 table 30
n route add broadcast 10.20.0.255 dev veth0 table 30 src 10.0.0.10
n route add anycast 10.20.1.0 dev veth0 table 30
n route add multicast 224.1.0.0/16 dev veth0 table 30 proto boot
n route add 10.30.0.0/16 dev veth2 scope link table 40 src 10.9.0.1
n route add 10.31.0.0/16 via 10.9.0.2 dev veth2 table 40
n route add 10.50.0.0/16 dev veth0 mtu 1400 table 50
n route add 10.51.0.0/16 dev veth0 realm 5 table 50
n route add 10.45.0.0/16 table 60 nexthop via 10.0.0.7 dev veth0 nexthop via 10.44.0.2 dev veth4
n route add 10.46.0.0/16 table 60 nexthop via 10.0.0.7 dev veth0 nexthop via 10.9.0.2 dev veth2
n route add 10.70.0.0/16 tos 0x20 dev veth0 table 70
n route add 10.72.0.0/16 dev veth0 table 70 proto 99 scope 100
n route add 10.73.0.0/16 dev veth0 table 70 proto bird
n route add 10.74.0.0/16 via inet6 fe80::1 dev veth0 table 70
n nexthop add id 1 via 10.0.0.1 dev veth0
n nexthop add id 2 via 10.0.0.2 dev veth0
n nexthop add id 3 group 1/2
n nexthop add id 5 blackhole
n route add 10.75.0.0/16 nhid 1 table 70
n route add 10.76.0.0/16 nhid 3 table 70
n route add 10.77.0.0/16 dev veth0 table 70 metric 4294967295
n route add 10.79.0.0/16 nhid 5 table 70
n route add 172.16.0.0/12 dev mac0 table 100
n route add 10.40.0.0/16 via 10.0.0.1 table 1000
n route add 10.78.0.0/16 dev veth0 table 4294967295

n -6 route add default via 2001:db8:1::1 dev veth0 metric 1024
n -6 route add 2001:db8:100::/48 via 2001:db8:1::2 dev veth0 table 10 metric 5
n -6 route add 2001:db8:101::/48 from 2001:db8:1::/64 via 2001:db8:1::3 dev veth0
n -6 route add 2001:db8:102::/48 table 20 nexthop via 2001:db8:1::5 dev veth0 weight 3 nexthop via fe80::1 dev br0 weight 1
n -6 route add blackhole 2001:db8:103::/48 table 20
n -6 route add unreachable 2001:db8:104::/48 table 20
n -6 route add prohibit 2001:db8:105::/48 table 20
n -6 route add throw 2001:db8:106::/48 table 20
n -6 route add local 2001:db8:107::1 dev veth0 table 30
n -6 route add anycast 2001:db8:108:: dev veth0 table 30
n -6 route add multicast ff0e::/16 dev veth0 table 30
n -6 route add 2001:db8:109::/48 dev veth2 table 40
n -6 route add 2001:db8:110::/48 via fe80::2 dev veth0 onlink table 40
n -6 route add 2001:db8:45::/48 table 60 nexthop via 2001:db8:1::7 dev veth0 nexthop via 2001:db8:44::2 dev veth4
n -6 route add 2001:db8:200::/48 dev veth0 table 70 expires 100

n rule add pref 100 from 10.0.0.0/24 lookup 10
n rule add pref 101 to 10.4.0.0/16 lookup 20
n rule add pref 102 not from 10.0.0.10 lookup 30
n rule add pref 103 tos 0x10 lookup 10
n rule add pref 104 fwmark 0x10 lookup 20
n rule add pref 105 fwmark 0x20/0xf0 lookup 20
n rule add pref 106 iif veth0 lookup 30
n rule add pref 107 oif veth2 lookup 40
n rule add pref 108 uidrange 1000-2000 lookup 10
n rule add pref 109 ipproto tcp dport 80 lookup 10
n rule add pref 110 ipproto udp sport 1000-2000 dport 53 lookup 10
n rule add pref 111 ipproto 47 lookup 10
n rule add pref 112 lookup main suppress_prefixlength 0
n rule add pref 113 lookup main suppress_ifgroup 7
n rule add pref 114 goto 200
n rule add pref 115 nop
n rule add pref 116 to 10.5.0.0/16 blackhole
n rule add pref 117 to 10.6.0.0/16 unreachable
n rule add pref 118 to 10.7.0.0/16 prohibit
n rule add pref 119 from 10.0.0.0/8 to 10.40.0.0/16 lookup 1000
n rule add pref 120 iif lo lookup 10
n rule add pref 121 not fwmark 0x1 lookup 10
n rule add pref 122 uidrange 0-0 lookup default
n rule add pref 123 from 10.0.0.0/24 lookup local
n rule add pref 124 iif nonexist lookup 10
n rule add pref 125 ipproto tcp sport 22 lookup 10
n rule add pref 126 ipproto 200 lookup 10
n rule add pref 127 fwmark 0/0x1 lookup 10
n rule add pref 128 to 10.0.0.1 lookup 10
n rule add pref 129 realms 3 lookup 10
n rule add pref 130 iif veth0 oif veth2 lookup 10
n rule add pref 131 lookup 100 suppress_prefixlength 0 suppress_ifgroup 7
n rule add pref 132 goto 300
n rule add pref 200 lookup 20 protocol static
n -6 rule add pref 100 from 2001:db8:1::/64 lookup 10
n -6 rule add pref 101 to 2001:db8:102::/48 lookup 20
n -6 rule add pref 102 fwmark 0x10/0xff lookup 20
n -6 rule add pref 103 iif veth0 oif br0 lookup 30
n -6 rule add pref 104 goto 106
n -6 rule add pref 105 prohibit
n -6 rule add pref 106 lookup main suppress_prefixlength 0
n -6 rule add pref 107 tos 0x20 lookup 10
n -6 rule add pref 108 ipproto ipv6-icmp lookup 10
n -6 rule add pref 110 from 2001:db8::1 lookup 10
n -6 rule add pref 112 not to 2001:db8::/32 unreachable

# Take veth4's carrier away, then the device: its next hops turn dead.
n link set veth5 down
n link set veth4 down
sleep 1

dump() {
	local dir=$1
	shift
	mkdir -p "$dir"
	n -j "$@" -d link show >"$dir/links.json"
	n -j "$@" -d addr show >"$dir/addrs.json"
	n -j "$@" -d route show table all >"$dir/routes4.json"
	n -j "$@" -d -6 route show table all >"$dir/routes6.json"
	n -j "$@" rule show >"$dir/rules4.json"
	n -j "$@" -6 rule show >"$dir/rules6.json"
}
dump full -p
dump numeric -N

mkdir -p plain
n -j addr show >plain/addrs.json
n -j route show table all >plain/routes4.json
n -j -6 route show table all >plain/routes6.json

n rule add pref 1000 l3mdev
n -6 rule add pref 1000 l3mdev
mkdir -p l3mdev
n -j rule show >l3mdev/rules4.json
n -j -6 rule show >l3mdev/rules6.json

ip -n "$FRESH" link set lo up
mkdir -p fresh
ip -n "$FRESH" -j -d link show >fresh/links.json
ip -n "$FRESH" -j -d addr show >fresh/addrs.json
ip -n "$FRESH" -j -d route show table all >fresh/routes4.json
ip -n "$FRESH" -j -d -6 route show table all >fresh/routes6.json
ip -n "$FRESH" -j rule show >fresh/rules4.json
ip -n "$FRESH" -j -6 rule show >fresh/rules6.json
