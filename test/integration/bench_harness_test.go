package integration

import (
	"context"
	"crypto/sha512"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/invoke"
	"github.com/containernetworking/cni/pkg/version"
)

// buildStatic builds the package pkg into setup.fgDir as name, static as
// the reference plugins are.
func buildStatic(name, pkg string) (string, error) {
	if setup.fgDir == "" {
		return "", fmt.Errorf("no directory for %s: %w", name, setup.fgErr)
	}
	bin := filepath.Join(setup.fgDir, name)
	cmd := exec.Command("go", "build", "-o", bin, pkg)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build %s: %w\n%s", pkg, err, out)
	}
	return bin, nil
}

// floorPlugin builds test/integration/internal/floorplugin onto the
// plugin path once and returns its type.
var floorPlugin = sync.OnceValues(func() (string, error) {
	const name = "floorplugin"
	_, err := buildStatic(name, "github.com/fibguard/fibguard/test/integration/internal/floorplugin")
	return name, err
})

// cniaddBinary builds test/integration/internal/cniadd once.
var cniaddBinary = sync.OnceValues(func() (string, error) {
	return buildStatic("cniadd", "github.com/fibguard/fibguard/test/integration/internal/cniadd")
})

// stderrToFile sends the plugins' standard error to a file of the test's,
// as a runtime's goes to its log, instead of the benchmark's output.
func (w *world) stderrToFile() {
	w.t.Helper()
	f, err := os.Create(filepath.Join(w.t.TempDir(), "plugins.stderr"))
	if err != nil {
		w.t.Fatal(err)
	}
	w.t.Cleanup(func() { _ = f.Close() }) // written by the plugins only
	w.stderr = f
	w.cni = libcni.NewCNIConfigWithCacheDir(w.cni.Path, w.cacheDir, &invoke.DefaultExec{
		RawExec:       &invoke.RawExec{Stderr: f},
		PluginDecoder: version.PluginDecoder{},
	})
}

// processAdd returns the process harness's ADD of list: cniadd, a
// process of its own in the host namespace, loads the conflist of a
// directory of the variant's and runs ADD through libcni on the world's
// cache, as cnitool add does. The sandbox is then known to libcni's cache
// under cnitool's container ID, which DEL uses.
func (w *world) processAdd(b *testing.B, name string, list *libcni.NetworkConfigList) func(*sandbox) error {
	bin, err := cniaddBinary()
	if err != nil {
		b.Fatal(err)
	}
	dir := filepath.Join(b.TempDir(), name)
	if err := os.Mkdir(dir, 0o755); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "10-"+list.Name+".conflist"), list.Bytes, 0o644); err != nil {
		b.Fatal(err)
	}
	return func(s *sandbox) error {
		s.rt.ContainerID = cnitoolID(s.path())
		var args []string
		for _, kv := range s.rt.Args {
			args = append(args, kv[0]+"="+kv[1])
		}
		return w.inHost(func(ctx context.Context) error {
			cmd := exec.CommandContext(ctx, bin, list.Name, s.path())
			cmd.Env = []string{
				"CNI_PATH=" + strings.Join(w.cni.Path, string(os.PathListSeparator)),
				"NETCONFPATH=" + dir, "CNI_CACHE_DIR=" + w.cacheDir,
				"CNI_ARGS=" + strings.Join(args, ";"), "CNI_IFNAME=" + s.rt.IfName,
			}
			cmd.Stderr = w.stderr
			if out, err := cmd.Output(); err != nil {
				return fmt.Errorf("cniadd %s: %w: %s", s.path(), err, out)
			}
			return nil
		})
	}
}

// cnitoolID is the container ID cnitool (and cniadd) gives a namespace.
func cnitoolID(netns string) string {
	sum := sha512.Sum512([]byte(netns))
	return fmt.Sprintf("cnitool-%x", sum[:10])
}
