// Package fib models how the Linux kernel resolves a route: policy rules,
// routing tables, route types, and the device decisions that follow, for
// IPv4 and IPv6.
//
// A Model holds the state of one network namespace (links, addresses,
// routes, rules and the sysctls that change answers). Model.Lookup answers
// the question `ip route get` answers, and explains every step of the answer
// in a trace, so a person can see which rule, which table and which route
// decided where a packet goes, and why it leaves through the device it does.
//
// A Model is built from a namespace over netlink (package fib/live), from a
// snapshot or `ip -j` output (Decode, package fib/iproute), or by applying
// planned changes to another model (Model.Apply), which reproduces the
// routes the kernel creates as side effects of adding an address.
//
// A multipath route (several `nexthop`s, or `nhid` naming a nexthop group)
// is answered with the set of next hops the kernel may pick for the flow
// (Result.Paths): the kernel picks one per flow by a hash of the flow's
// addresses, which the model does not reproduce. Dead next hops, and those
// without carrier on a device that ignores link-down routes, are left out
// as the kernel leaves them out.
//
// Known limits: the multipath hash itself; neighbour state (and so
// fib_multipath_use_neigh); nexthop objects are known only through the
// next hops the kernel spells out for the routes that use them
// (net.ipv4.nexthop_compat_mode=1, the default); VRF device binding of
// sockets and the route cache are not modelled.
package fib
