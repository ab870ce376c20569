// Module runcwrap is the OCI runtime wrapper hack/kind/dockerd.sh registers
// with dockerd. A module of its own (standard library only), so that the
// main module's build, lint and tests do not include it.
module github.com/fibguard/fibguard/hack/kind/runcwrap

go 1.26.0
