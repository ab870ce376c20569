package kube

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzTrustedConfig feeds trustedConfig kubeconfigs of any content in a
// file it trusts (root's, mode 0600): it never panics, and whatever it
// accepts sends a token or a client certificate, never a program's
// credentials.
func FuzzTrustedConfig(f *testing.F) {
	for _, s := range []string{
		"apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: https://10.96.0.1\ncontexts:\n- name: x\n  context: {cluster: c, user: u}\ncurrent-context: x\nusers:\n- name: u\n  user: {token: abc}\n",
		"users:\n- name: u\n  user:\n    exec: {command: /bin/sh, apiVersion: client.authentication.k8s.io/v1}\n",
		"users:\n- name: u\n  user:\n    auth-provider: {name: gcp}\n",
		"clusters:\n- name: c\n  cluster: {server: https://x, certificate-authority: /etc/passwd}\n",
		"{}", "[", "users: [{user: {tokenFile: ../../etc/shadow}}]",
	} {
		f.Add(s)
	}
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, s string) {
		path := filepath.Join(dir, "kubeconfig")
		if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
		rc, err := trustedConfig(path)
		if err != nil {
			return
		}
		if rc.ExecProvider != nil || rc.AuthProvider != nil {
			t.Fatalf("accepted a kubeconfig that runs a program: %q", s)
		}
	})
}
