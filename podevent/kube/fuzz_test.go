package kube

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/client-go/tools/clientcmd"
)

// FuzzTrustedConfig feeds trustedConfig kubeconfigs of any content in a
// file it trusts (root's, mode 0600). It never panics. A kubeconfig in
// which any user runs a program (exec, auth-provider) is refused as
// untrusted, whichever context is current, with an error naming the file;
// every other refusal also says it is about the kubeconfig; and whatever
// it accepts sends a token or a client certificate, never a program's
// credentials.
func FuzzTrustedConfig(f *testing.F) {
	for _, s := range []string{
		"apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: https://10.96.0.1\ncontexts:\n- name: x\n  context: {cluster: c, user: u}\ncurrent-context: x\nusers:\n- name: u\n  user: {token: abc}\n",
		"users:\n- name: u\n  user:\n    exec: {command: /bin/sh, apiVersion: client.authentication.k8s.io/v1}\n",
		"users:\n- name: u\n  user:\n    auth-provider: {name: gcp}\n",
		"clusters:\n- name: c\n  cluster: {server: https://x}\ncontexts:\n- name: x\n  context: {cluster: c, user: u}\ncurrent-context: x\nusers:\n- name: u\n  user: {token: t}\n- name: other\n  user:\n    exec: {command: /bin/sh, apiVersion: client.authentication.k8s.io/v1}\n",
		"clusters:\n- name: c\n  cluster: {server: https://x, certificate-authority: /etc/passwd}\n",
		"clusters:\n- name: c\n  cluster: {server: https://x, certificate-authority: /dev/zero}\n",
		`{"users":[{"name":"u","user":{"tokenFile":"/proc/self/environ"}}]}`,
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
		if runsProgram(s) && (!errors.Is(err, errUntrusted) || !strings.Contains(err.Error(), path)) {
			t.Fatalf("a kubeconfig that runs a program: %v, want it refused as untrusted naming %s\n%s", err, path, s)
		}
		if err != nil {
			if !strings.Contains(err.Error(), "kubeconfig") {
				t.Fatalf("refused with an error that does not say it is about the kubeconfig: %v", err)
			}
			return
		}
		if rc.ExecProvider != nil || rc.AuthProvider != nil {
			t.Fatalf("accepted a kubeconfig that runs a program: %q", s)
		}
	})
}

// runsProgram reports whether clientcmd reads a user with an exec or
// auth-provider credential in s.
func runsProgram(s string) bool {
	cfg, err := clientcmd.Load([]byte(s))
	if err != nil {
		return false
	}
	for _, a := range cfg.AuthInfos {
		if a.Exec != nil || a.AuthProvider != nil {
			return true
		}
	}
	return false
}
