// Package difftest holds the differential tests that make the kernel the
// judge of the fib model: every setup is built in a fresh network
// namespace, loaded into a model over netlink, and each query is answered
// both by the model and by the kernel (RTM_GETROUTE). Any disagreement fails
// with a reproducer: the `ip` commands and the query.
package difftest
