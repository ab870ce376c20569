// Command imagebuild assembles fibguard's container image from binaries
// that are already built, without a container engine, and checks an image
// archive it wrote. hack/build-image.sh runs it; docs/install.md explains
// how to load the result into a cluster.
//
//	imagebuild build -out fibguard-image.tar -ref ghcr.io/fibguard/fibguard:v0.1.0 \
//	    -add /usr/local/bin/fibguard-install=bin/fibguard-install \
//	    -add /opt/fibguard/fibguard=bin/fibguard -add /opt/fibguard/fibguard-event=bin/fibguard-event \
//	    -entrypoint /usr/local/bin/fibguard-install
//	imagebuild inspect fibguard-image.tar
//
// The image is one layer on an empty (scratch) base, with OCI media types.
// The archive is an OCI image layout (oci-layout, index.json, blobs/) that
// also carries Docker's manifest.json, as `docker save` of Docker 25 and
// later writes it: `ctr images import`, `kind load image-archive`,
// `podman load` and `docker load` all read it. The same inputs and -created
// time give the same bytes, and so the same image digest.
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "imagebuild:", err)
		}
		os.Exit(2)
	}
}

const usage = `usage:
  imagebuild build -out FILE -ref NAME:TAG -add /PATH/IN/IMAGE=FILE... -entrypoint /PATH [flags]
  imagebuild inspect FILE`

func run(args []string) error {
	if len(args) == 0 {
		return errors.New(usage)
	}
	switch args[0] {
	case "build":
		spec, out, err := parseBuild(args[1:])
		if err != nil {
			return err
		}
		digest, err := Build(spec, out)
		if err != nil {
			return err
		}
		fmt.Printf("wrote %s: %s@%s (%s/%s)\n", out, spec.Ref, digest, spec.OS, spec.Arch)
		return nil
	case "inspect":
		if len(args) != 2 {
			return errors.New(usage)
		}
		var report strings.Builder
		err := Inspect(args[1], &report)
		fmt.Print(report.String())
		return err
	default:
		return fmt.Errorf("unknown command %q\n%s", args[0], usage)
	}
}
