package install

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// serviceAccountLimits are the most the installer reads of each file of
// the service account: a projected token is about 1 KiB, a namespace name
// at most 63 bytes, and a CA bundle a few KiB (1 MiB leaves room for a
// cluster that trusts many). A larger file is an error naming the limit.
var serviceAccountLimits = map[string]int64{
	"token":     64 << 10,
	"ca.crt":    1 << 20,
	"namespace": 1 << 10,
}

// dataLink is the link kubelet's atomic writer swaps to publish a new
// version of a projected volume: dir/..data -> ..<timestamp>, a directory
// next to it, and every file dir/name -> ..data/name.
const dataLink = "..data"

// readServiceAccount reads the service account file name (token, ca.crt,
// namespace) in dir: a regular file within its limit, reached either
// directly or through links exactly as kubelet lays out a projected or
// secret volume; any other link, and a FIFO, a socket, a device or a
// directory, is refused with an error saying what it is, never followed
// or opened.
func readServiceAccount(dir, name string) ([]byte, error) {
	limit, ok := serviceAccountLimits[name]
	if !ok {
		return nil, fmt.Errorf("service account: no file %q", name)
	}
	// kubelet removes the old timestamped directory right after swapping
	// ..data: a read that resolved the old one may find it gone, and the
	// next resolves the new one.
	for attempt := 1; ; attempt++ {
		path, err := kubeletPath(dir, name)
		if err == nil {
			var b []byte
			b, _, err = readLimited(path, false, limit)
			if err == nil {
				return b, nil
			}
		}
		if !errors.Is(err, fs.ErrNotExist) || attempt == 3 {
			return nil, serviceAccountError(err)
		}
	}
}

// serviceAccountError says where an absent service account usually comes
// from.
func serviceAccountError(err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("service account: %w (is automountServiceAccountToken off, and no service-account volume mounted?)", err)
	}
	return fmt.Errorf("service account: %w", err)
}

// kubeletPath is the path to open for dir/name: dir/name itself unless it
// is a link, and then dir/..<timestamp>/name, once the links are checked
// to be kubelet's: name -> ..data/name, ..data -> ..<timestamp>, a real
// directory in dir. The file itself is opened without following a link.
func kubeletPath(dir, name string) (string, error) {
	p := filepath.Join(dir, name)
	fi, err := os.Lstat(p)
	if err != nil {
		return "", err
	}
	if fi.Mode()&fs.ModeSymlink == 0 {
		return p, nil
	}
	if target, err := os.Readlink(p); err != nil || target != dataLink+"/"+name {
		return "", fmt.Errorf("%s is a symbolic link to %q: only kubelet's layout (%s/%s) is followed", p, target, dataLink, name)
	}
	data := filepath.Join(dir, dataLink)
	ts, err := os.Readlink(data)
	if err != nil {
		return "", fmt.Errorf("%s: %s is not kubelet's link to the current version: %w", p, data, err)
	}
	if !strings.HasPrefix(ts, "..") || strings.Contains(ts, "/") || ts == ".." || ts == dataLink {
		return "", fmt.Errorf("%s links to %q: only a directory ..<timestamp> next to it, as kubelet writes, is followed", data, ts)
	}
	vfi, err := os.Lstat(filepath.Join(dir, ts))
	if err != nil {
		return "", err
	}
	if !vfi.IsDir() {
		return "", fmt.Errorf("%s is not a directory (%s): only kubelet's layout is followed", filepath.Join(dir, ts), vfi.Mode().Type())
	}
	return filepath.Join(dir, ts, name), nil
}
