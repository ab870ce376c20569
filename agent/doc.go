// Package agent keeps watching a node after its pods were set up: the CNI
// plugin judges a pod once, at ADD, but the failures users meet most
// often come later, when another component changes the node — a pod IP
// added to the host as an address, a more specific route stealing a pod
// subnet, a rule sending it elsewhere.
//
// The agent knows every pod attachment of the node from libcni's result
// cache (<cacheDir>/results, which containerd and CRI-O write after each
// successful ADD: the network's configuration, the result, CNI_ARGS with
// the pod), and the fibguard settings each was judged with. It subscribes
// to the kernel's notifications of the host namespace (links, addresses,
// routes, rules and the sysctls the kernel announces) and watches the
// cache directory; after a burst of changes has settled it runs the
// host-side checks (HostCodes) again for every attachment, against one
// model of the host read for all their pod IPs, and reports each pod whose
// network breaks or is restored, with the changes that came before, to a
// Sink (Events, metrics, logs).
//
// Limits: changes inside a pod's own namespace are not seen (its routes
// and addresses are the pod's); sysctls the kernel does not announce
// (route_localnet among them) are read again only at the periodic resync;
// attachments of networks that do not chain fibguard are not checked, as
// the plugin never judged them.
package agent
