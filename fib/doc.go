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
// Known limits: IPv4 multipath next-hop choice depends on a flow hash that
// the model does not reproduce (it reports the first usable next hop and
// says so in the trace); nexthop objects, VRF device binding of sockets,
// neighbour state and the route cache are not modelled.
package fib
