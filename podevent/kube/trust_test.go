package kube

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/fibguard/fibguard/internal/hostile"
)

// kubeconfigYAML is a kubeconfig with a token user, and with user's
// extra fields (YAML) when given.
func kubeconfigYAML(user string) string {
	if user == "" {
		user = "token: abc"
	}
	return `apiVersion: v1
kind: Config
clusters:
- name: c
  cluster: {server: "https://127.0.0.1:6443", insecure-skip-tls-verify: true}
users:
- name: u
  user: {` + user + `}
contexts:
- name: x
  context: {cluster: c, user: u}
current-context: x
`
}

// TestTrustedConfig: every kubeconfig another user could have changed, or
// that would run a program, is refused with the reason; a root-owned one,
// also through a root-owned link, is read.
func TestTrustedConfig(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: the cases give files to another user")
	}
	bad := hostile.Make(t)
	dir := t.TempDir()
	write := func(name, content string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil { // past the umask
			t.Fatal(err)
		}
		return p
	}
	good := write("good", kubeconfigYAML(""), 0o600)
	rootLink := filepath.Join(dir, "root-link")
	if err := os.Symlink(good, rootLink); err != nil {
		t.Fatal(err)
	}
	othersLink := filepath.Join(dir, "others-link")
	if err := os.Symlink(good, othersLink); err != nil {
		t.Fatal(err)
	}
	if err := os.Lchown(othersLink, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	othersFile := write("others-file", kubeconfigYAML(""), 0o600)
	if err := os.Chown(othersFile, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	looseCert := write("loose.crt", "not checked before its mode", 0o666)

	for _, tc := range []struct {
		class, path, want string
	}{
		{"world-writable", write("world", kubeconfigYAML(""), 0o666), "writable by group or others"},
		{"group-writable", write("group", kubeconfigYAML(""), 0o620), "writable by group or others"},
		{"owned by another user", othersFile, "owned by uid 65534"},
		{"a link another user owns", othersLink, "symbolic link " + othersLink + ", owned by uid 65534"},
		{"an exec credential plugin", write("exec", kubeconfigYAML(`exec: {apiVersion: client.authentication.k8s.io/v1, command: /bin/true}`), 0o600), "credential program"},
		{"an auth-provider", write("authp", kubeconfigYAML(`auth-provider: {name: oidc}`), 0o600), "credential program"},
		{"a referenced certificate others can write", write("cert", kubeconfigYAML(`client-certificate: `+looseCert+`, client-key: `+looseCert), 0o600), looseCert},
		{"a FIFO", bad.FIFO, "named pipe (FIFO)"},
		{"a directory", bad.Dir, "directory"},
		{"larger than the limit", write("big", "# "+strings.Repeat("x", MaxKubeconfig)+"\n"+kubeconfigYAML(""), 0o600), "larger than"},
	} {
		t.Run(tc.class, func(t *testing.T) {
			start := time.Now()
			_, err := trustedConfig(tc.path)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("trustedConfig(%s) = %v, want an error containing %q", tc.path, err, tc.want)
			}
			if !errors.Is(err, errUntrusted) {
				t.Errorf("error %v is not errUntrusted", err)
			}
			if d := time.Since(start); d > time.Second {
				t.Errorf("took %v", d)
			}
		})
	}
	for _, p := range []string{good, rootLink} {
		cfg, err := trustedConfig(p)
		if err != nil || cfg.BearerToken != "abc" || cfg.Host != "https://127.0.0.1:6443" {
			t.Errorf("trustedConfig(%s) = %+v, %v; want the token user", p, cfg, err)
		}
	}
	var st unix.Stat_t
	if err := unix.Stat(bad.FIFO, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFIFO {
		t.Errorf("the FIFO changed: %v", err)
	}
}
