// Package iproute builds a fib.Model from the JSON that iproute2 prints, so
// that a routing question can be answered offline from what operators
// already collect on a host, without access to the host itself:
//
//	ip -j -d link show
//	ip -j -d addr show
//	ip -j -d route show table all
//	ip -j -d -6 route show table all
//	ip -j rule show
//	ip -j -6 rule show
//
// The input is read with iproute2's own conventions: a key iproute2 leaves
// out has the value iproute2 leaves it out for (no "type" is unicast, no
// "table" is main, no "scope" is global, no "protocol" is boot), flags are
// keys whose mere presence counts ("not": null, "secondary": true), and
// names are iproute2's default names (tables local, main and default, the
// DSCP names of rt_dsfield, the protocols of /etc/protocols, device group
// "default"). Output of `ip -N` (numbers instead of names) is read too, and
// is the way to pass dumps from hosts that name their own tables or groups.
//
// Route dumps must be of "table all": `ip route show table N` leaves out the
// table of every route. Without -d the link and address dumps carry no device
// kind, so veth, bridge and VRF devices are read as kind "other".
//
// Nothing is silently dropped: a value that cannot be read, an unknown route
// type, table, action or name, or a rule selector the model cannot represent
// (dscp, flowlabel, tun_id) is an error naming the item and key at fault, as
// in `route 3 ("dst":"10.0.0.300/24"): bad prefix: ...`, where 3 is the
// item's position in its JSON array, counted from 0. Keys that do not change
// route resolution (lifetimes, metrics such as mtu, realms, preference,
// lwtunnel encapsulation) are ignored.
//
// Sysctls are not part of these dumps, so the model has no sysctls; nor is the
// kernel's merged or split state of the local and main tables, which Parse
// infers from the IPv4 rules (see Parse).
package iproute
