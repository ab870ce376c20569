// Command cniadd is cnitool's `add` for BenchmarkADD's second harness, a
// process per pod: it reads the network NAME from the conflists in
// NETCONFPATH, finds plugins in CNI_PATH, takes CNI_ARGS and CNI_IFNAME
// (default eth0) from the environment, as cnitool does, and runs ADD of
// the list for the namespace NETNS through libcni — with one difference:
// libcni's cache goes to CNI_CACHE_DIR (required), never to the machine's
// /var/lib/cni. It prints the result.
//
//	cniadd NAME NETNS
package main

import (
	"context"
	"crypto/sha512"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/containernetworking/cni/libcni"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "cniadd:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) != 2 {
		return errors.New("usage: cniadd NAME NETNS")
	}
	cache := os.Getenv("CNI_CACHE_DIR")
	if cache == "" {
		return errors.New("CNI_CACHE_DIR is required")
	}
	list, err := libcni.LoadConfList(os.Getenv("NETCONFPATH"), args[0])
	if err != nil {
		return err
	}
	netns, err := filepath.Abs(args[1])
	if err != nil {
		return err
	}
	ifName := os.Getenv("CNI_IFNAME")
	if ifName == "" {
		ifName = "eth0"
	}
	sum := sha512.Sum512([]byte(netns))
	rt := &libcni.RuntimeConf{
		// cnitool's container ID: a hash of the namespace's path.
		ContainerID: fmt.Sprintf("cnitool-%x", sum[:10]),
		NetNS:       netns,
		IfName:      ifName,
		Args:        cniArgs(os.Getenv("CNI_ARGS")),
	}
	cni := libcni.NewCNIConfigWithCacheDir(filepath.SplitList(os.Getenv("CNI_PATH")), cache, nil)
	res, err := cni.AddNetworkList(context.Background(), list, rt)
	if err != nil {
		return err
	}
	return res.Print()
}

// cniArgs splits CNI_ARGS as cnitool does: KEY=VALUE pairs separated by
// semicolons.
func cniArgs(s string) [][2]string {
	var out [][2]string
	for pair := range strings.SplitSeq(s, ";") {
		if k, v, ok := strings.Cut(pair, "="); ok {
			out = append(out, [2]string{k, v})
		}
	}
	return out
}
