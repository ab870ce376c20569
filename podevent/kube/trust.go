package kube

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/fibguard/fibguard/internal/filetype"
)

// MaxKubeconfig is the largest kubeconfig (or file it names) read: a real
// one is a few KiB.
const MaxKubeconfig = 1 << 20

// errUntrusted marks a kubeconfig refused for what it is, not for an I/O
// failure.
var errUntrusted = errors.New("untrusted kubeconfig")

// trustedConfig loads the kubeconfig at path as the plugin may use it: it
// runs as root, so the file — and every file it names (certificate
// authority, client certificate and key, token file) — must be a regular
// file owned by root (or by this process's user), writable by nobody
// else, and not reached through a symbolic link someone else owns: a file
// another user can change would choose the API server and the identity
// fibguard's Events go out with. Credentials that run a program (exec,
// auth-provider) are refused: fibguard only sends a token or a client
// certificate.
func trustedConfig(path string) (*rest.Config, error) {
	b, err := readTrusted(path)
	if err != nil {
		return nil, err
	}
	cfg, err := clientcmd.Load(b)
	if err != nil {
		return nil, fmt.Errorf("kubeconfig %s: %w", path, err)
	}
	for _, c := range cfg.Clusters {
		c.LocationOfOrigin = path
	}
	for _, a := range cfg.AuthInfos {
		a.LocationOfOrigin = path
	}
	if err := clientcmd.ResolveLocalPaths(cfg); err != nil {
		return nil, fmt.Errorf("kubeconfig %s: %w", path, err)
	}
	if err := checkReferences(path, cfg); err != nil {
		return nil, err
	}
	rc, err := clientcmd.NewDefaultClientConfig(*cfg, &clientcmd.ConfigOverrides{}).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("kubeconfig %s: %w", path, err)
	}
	return rc, nil
}

// checkReferences refuses credential plugins and untrusted referenced
// files, in every user and cluster of the file (not only the current
// context's: a refusal must not depend on which context is current).
func checkReferences(path string, cfg *clientcmdapi.Config) error {
	for name, a := range cfg.AuthInfos {
		if a.Exec != nil || a.AuthProvider != nil {
			return fmt.Errorf("%w %s: user %q runs a credential program (exec or auth-provider); fibguard accepts a token or a client certificate only", errUntrusted, path, name)
		}
		for _, f := range []string{a.ClientCertificate, a.ClientKey, a.TokenFile} {
			if err := checkTrusted(f); err != nil {
				return err
			}
		}
	}
	for _, c := range cfg.Clusters {
		if err := checkTrusted(c.CertificateAuthority); err != nil {
			return err
		}
	}
	return nil
}

// checkTrusted checks a file the kubeconfig names, which client-go reads
// itself; an empty path names none. It is read as the kubeconfig is, so
// that every file passes the same checks.
func checkTrusted(path string) error {
	if path == "" {
		return nil
	}
	_, err := readTrusted(path)
	return err
}

// readTrusted reads path once the links that lead to it and the file
// itself pass (checkLinks; trustedFile, through filetype.ReadFile, before
// and after the open).
func readTrusted(path string) ([]byte, error) {
	if err := checkLinks(path); err != nil {
		return nil, err
	}
	b, _, err := filetype.ReadFile(path, unix.O_RDONLY, MaxKubeconfig, func(st *unix.Stat_t) error { return trustedFile(path, st) })
	switch {
	case errors.Is(err, filetype.ErrTooLarge):
		return nil, fmt.Errorf("%w %s: larger than %d bytes", errUntrusted, path, MaxKubeconfig)
	case errors.Is(err, errUntrusted):
		return nil, err
	case err != nil:
		return nil, fmt.Errorf("kubeconfig file %s: %w", path, err)
	}
	return b, nil
}

// checkLinks follows path's symbolic links one at a time and refuses a
// link owned by another user; what they lead to is readTrusted's to check.
func checkLinks(path string) error {
	p := path
	for range 40 { // the kernel's own limit on links followed
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return fmt.Errorf("kubeconfig file %s: %w", path, err)
		}
		if st.Mode&unix.S_IFMT != unix.S_IFLNK {
			return nil
		}
		if !ownedByUs(st.Uid) {
			return fmt.Errorf("%w %s: reached through the symbolic link %s, owned by uid %d", errUntrusted, path, p, st.Uid)
		}
		target, err := os.Readlink(p)
		if err != nil {
			return fmt.Errorf("kubeconfig file %s: %w", path, err)
		}
		if !filepath.IsAbs(target) {
			target = filepath.Join(filepath.Dir(p), target)
		}
		p = target
	}
	return fmt.Errorf("%w %s: too many symbolic links", errUntrusted, path)
}

// trustedFile refuses what is not a regular file owned by us, writable by
// us alone, and within MaxKubeconfig.
func trustedFile(path string, st *unix.Stat_t) error {
	switch {
	case st.Mode&unix.S_IFMT != unix.S_IFREG:
		return fmt.Errorf("%w %s: a %s, not a regular file", errUntrusted, path, filetype.Name(st.Mode))
	case !ownedByUs(st.Uid):
		return fmt.Errorf("%w %s: owned by uid %d, not by root", errUntrusted, path, st.Uid)
	case st.Mode&0o022 != 0:
		return fmt.Errorf("%w %s: writable by group or others (mode %04o)", errUntrusted, path, st.Mode&0o7777)
	case st.Size > MaxKubeconfig:
		return fmt.Errorf("%w %s: larger than %d bytes", errUntrusted, path, MaxKubeconfig)
	}
	return nil
}

// ownedByUs: root, or the user this process runs as.
func ownedByUs(uid uint32) bool { return uid == 0 || int(uid) == os.Geteuid() }
