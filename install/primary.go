package install

import (
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	"github.com/containernetworking/cni/libcni"
)

// ErrNoPrimary means the configuration directory holds no valid CNI
// configuration yet: the primary CNI plugin has not written its file. On a
// booting node that is normal; the watch loop waits for it.
var ErrNoPrimary = errors.New("no valid CNI configuration")

// configExts are the extensions the runtimes read, as in containerd's and
// CRI-O's loaders: libcni.ConfFiles(dir, {".conf", ".conflist", ".json"}).
var configExts = []string{".conf", ".conflist", ".json"}

// Primary is the configuration file the container runtime uses for pods.
type Primary struct {
	// Path is the file's path.
	Path string
	// Name is the network name.
	Name string
	// CNIVersion is the configuration's cniVersion ("" when it has none).
	CNIVersion string
	// List is true for a .conflist; a .conf or .json holds one plugin.
	List bool
}

// FindPrimary returns the configuration the runtime picks for pods in dir:
// the lexicographically first valid file. It follows the loaders of CRI-O
// (ocicni loadNetworks) and of kubelet's former dockershim, which do the
// same, and containerd's go-cni (loadFromConfDir) for the file list:
//
//   - the files are libcni.ConfFiles(dir, .conf, .conflist, .json) — regular
//     names with one of those extensions, directories skipped — sorted by
//     name (byte order, sort.Strings);
//   - a .conflist is loaded with libcni.NetworkConfFromFile; a file it
//     refuses is skipped (not JSON, no "name", "plugins" not a list or empty,
//     a plugin without "type", a bad cniVersion...);
//   - a .conf or .json is one plugin, loaded with
//     libcni.NetworkPluginConfFromBytes; a file it refuses, or one without
//     "type" (often a conflist misnamed .conf), is skipped;
//   - a configuration with no plugins is skipped.
//
// Unlike CRI-O it does not check that the plugins' binaries exist
// (ValidateNetworkList): the installer cannot see every bin dir the runtime
// is configured with, and a primary CNI often writes its configuration
// before its binary. containerd's go-cni stops with an error at an invalid
// file instead of skipping it, so there a broken file ahead of the primary
// stops pod networking by itself; the file chosen here is still the one
// containerd uses once the broken file is fixed or removed.
//
// FindPrimary returns ErrNoPrimary when no file qualifies; a directory that
// does not exist also has no primary.
func FindPrimary(dir string) (Primary, error) {
	files, err := libcni.ConfFiles(dir, configExts)
	if err != nil {
		return Primary{}, fmt.Errorf("listing CNI configurations in %s: %w", dir, err)
	}
	slices.Sort(files)
	for _, f := range files {
		if p, ok := loadConfig(f); ok {
			return p, nil
		}
	}
	return Primary{}, fmt.Errorf("%s: %w", dir, ErrNoPrimary)
}

// loadConfig loads a configuration file the way the runtimes do and
// reports whether they would use it.
//
// A file that is not a regular one (followed through a link, as the
// runtimes follow it) or is larger than MaxConfigFile is not used: a FIFO
// would block the read, and with it every install and readiness check.
func loadConfig(path string) (Primary, bool) {
	b, _, err := readRegular(path, true)
	if err != nil {
		return Primary{}, false
	}
	if strings.HasSuffix(path, ".conflist") {
		// As libcni.NetworkConfFromFile, on the bytes read safely.
		list, err := libcni.NetworkConfFromBytes(b)
		if err != nil {
			return Primary{}, false
		}
		if !list.LoadOnlyInlinedPlugins {
			more, err := pluginConfs(filepath.Dir(path), list.Name)
			if err != nil {
				return Primary{}, false
			}
			list.Plugins = append(list.Plugins, more...)
		}
		if len(list.Plugins) == 0 {
			return Primary{}, false
		}
		return Primary{Path: path, Name: list.Name, CNIVersion: list.CNIVersion, List: true}, true
	}
	conf, err := libcni.NetworkPluginConfFromBytes(b)
	if err != nil || conf.Network.Type == "" {
		return Primary{}, false
	}
	return Primary{Path: path, Name: conf.Network.Name, CNIVersion: conf.Network.CNIVersion}, true
}

// pluginConfs loads the plugins of network name from dir/name/*.conf, as
// libcni.NetworkPluginConfsFromFiles does (CNI 1.3), but reads each file
// as the others: a regular file, followed through a link as libcni does,
// of at most MaxConfigFile bytes, type-checked before a non-blocking open.
// libcni's own os.ReadFile would block on a FIFO there and read a file of
// any size whole.
func pluginConfs(dir, name string) ([]*libcni.PluginConfig, error) {
	sub := filepath.Join(dir, name)
	files, err := libcni.ConfFiles(sub, []string{".conf"})
	if err != nil {
		return nil, fmt.Errorf("listing plugin configurations in %s: %w", sub, err)
	}
	confs := make([]*libcni.PluginConfig, 0, len(files))
	for _, f := range files {
		b, _, err := readRegular(f, true)
		if err != nil {
			return nil, err
		}
		c, err := libcni.NetworkPluginConfFromBytes(b)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		confs = append(confs, c)
	}
	return confs, nil
}

// isConfigName reports whether the runtimes would read a file of this name.
func isConfigName(name string) bool {
	return slices.Contains(configExts, filepath.Ext(name))
}
