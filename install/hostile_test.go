package install

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/fibguard/fibguard/internal/hostile"
)

// hostileBound is how long a refusal may take: a FIFO opened for reading
// blocks until a writer comes, so a reader that opens one hangs forever;
// one that checks first answers at once.
const hostileBound = 5 * time.Second

// within runs f and fails the test if it does not return within
// hostileBound: a hang is the defect these tests look for, and it must
// fail the case rather than the whole test binary's timeout.
func within(t *testing.T, f func() error) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- f() }()
	select {
	case err := <-done:
		return err
	case <-time.After(hostileBound):
		t.Fatalf("still blocked after %v", hostileBound)
		return nil
	}
}

// mkHostile makes path a file of the given class: "fifo", "socket",
// "dir", "device" (a character device like /dev/null, made with mknod),
// "link" (to a regular file elsewhere), "dangling" (a link to nothing).
func mkHostile(t *testing.T, class, path string) {
	t.Helper()
	p := hostile.Make(t)
	var err error
	switch class {
	case "fifo":
		err = unix.Mkfifo(path, 0o600)
	case "socket":
		err = os.Rename(p.Socket, path)
	case "dir":
		err = os.Mkdir(path, 0o755)
	case "device":
		err = unix.Mknod(path, unix.S_IFCHR|0o600, int(unix.Mkdev(1, 3)))
		if errors.Is(err, unix.EPERM) {
			t.Skipf("mknod %s: %v (needs root with CAP_MKNOD)", path, err)
		}
	case "link":
		err = os.Symlink(p.Target, path)
	case "dangling":
		err = os.Symlink(p.DanglingTarget, path)
	default:
		t.Fatalf("unknown class %q", class)
	}
	if err != nil {
		t.Fatal(err)
	}
}

// TestBinaryDestinationHostile: what sits at the plugin's or the event
// binary's name in the node's bin dir, if not a regular file, is refused
// with an error naming its type — by CopyBinary, the readiness check and
// RemoveBinary — within a bounded time, and left as it was: never opened,
// followed or replaced.
func TestBinaryDestinationHostile(t *testing.T) {
	for _, class := range []string{"fifo", "socket", "dir", "device", "link", "dangling"} {
		for _, name := range []string{PluginType, EventBinaryName} {
			t.Run(class+"/"+name, func(t *testing.T) {
				dir := t.TempDir()
				src := filepath.Join(dir, "src")
				if err := os.WriteFile(src, []byte("binary"), 0o755); err != nil {
					t.Fatal(err)
				}
				dst := filepath.Join(dir, name)
				mkHostile(t, class, dst)
				before, err := os.Lstat(dst)
				if err != nil {
					t.Fatal(err)
				}
				want := "is a " + typeWord(class)
				err = within(t, func() error { _, err := CopyBinary(src, dir, name); return err })
				if err == nil || !strings.Contains(err.Error(), want) || errors.Is(err, errSource) {
					t.Errorf("CopyBinary: %v, want an error about the bin dir containing %q", err, want)
				}
				err = within(t, func() error { _, err := binaryInstalled(src, dir, name); return err })
				if err == nil || !strings.Contains(err.Error(), want) {
					t.Errorf("binaryInstalled: %v, want an error containing %q", err, want)
				}
				err = within(t, func() error { return RemoveBinary(dir, name) })
				if err == nil || !strings.Contains(err.Error(), want) {
					t.Errorf("RemoveBinary: %v, want an error containing %q", err, want)
				}
				after, err := os.Lstat(dst)
				if err != nil || !os.SameFile(before, after) {
					t.Errorf("%s was replaced or removed (%v)", dst, err)
				}
			})
		}
	}
}

// typeWord is how filetype.Name calls a class of mkHostile.
func typeWord(class string) string {
	return map[string]string{
		"fifo": "named pipe (FIFO)", "socket": "socket", "dir": "directory", "device": "character device",
		"link": "symbolic link", "dangling": "symbolic link",
	}[class]
}

// TestBinarySourceHostile: a binary to install that is not a regular file
// of at most MaxBinary bytes is refused at once, as an error about the
// source (fatal to the installer's start), with its type or the limit;
// a link to a regular file is followed (the image's own file).
func TestBinarySourceHostile(t *testing.T) {
	for _, tc := range []struct {
		class string
		make  func(t *testing.T, path string)
		want  string // "": installed
	}{
		{"fifo", func(t *testing.T, p string) { mkHostile(t, "fifo", p) }, "named pipe (FIFO)"},
		{"socket", func(t *testing.T, p string) { mkHostile(t, "socket", p) }, "socket"},
		{"directory", func(t *testing.T, p string) { mkHostile(t, "dir", p) }, "directory"},
		{"device (endless)", func(t *testing.T, p string) { symlink(t, "/dev/zero", p) }, "character device"},
		{"dangling link", func(t *testing.T, p string) { mkHostile(t, "dangling", p) }, "no such file"},
		{"larger than MaxBinary", func(t *testing.T, p string) { sparse(t, p, MaxBinary+1) }, "134217728 bytes"},
		{"link to a regular file", func(t *testing.T, p string) { mkHostile(t, "link", p) }, ""},
		{"exactly MaxBinary", func(t *testing.T, p string) { sparse(t, p, MaxBinary) }, ""},
	} {
		t.Run(tc.class, func(t *testing.T) {
			dir := t.TempDir()
			bin := filepath.Join(dir, "bin")
			if err := os.Mkdir(bin, 0o755); err != nil {
				t.Fatal(err)
			}
			src := filepath.Join(dir, "src")
			tc.make(t, src)
			err := within(t, func() error { _, err := CopyBinary(src, bin, PluginType); return err })
			if tc.want == "" {
				if err != nil {
					t.Fatalf("CopyBinary: %v", err)
				}
				assertSameContent(t, src, filepath.Join(bin, PluginType))
				return
			}
			if err == nil || !errors.Is(err, errSource) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("CopyBinary: %v, want a source error containing %q", err, tc.want)
			}
			if _, err := os.Lstat(filepath.Join(bin, PluginType)); !os.IsNotExist(err) {
				t.Errorf("something was installed (%v)", err)
			}
		})
	}
}

func symlink(t *testing.T, target, path string) {
	t.Helper()
	if err := os.Symlink(target, path); err != nil {
		t.Fatal(err)
	}
}

// sparse makes a file of size bytes that takes no disk space.
func sparse(t *testing.T, path string, size int64) {
	t.Helper()
	if err := os.WriteFile(path, []byte("\x7fELF"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(path, size); err != nil {
		t.Fatal(err)
	}
}

func assertSameContent(t *testing.T, a, b string) {
	t.Helper()
	x, err := os.ReadFile(a)
	if err != nil {
		t.Fatal(err)
	}
	y, err := os.ReadFile(b)
	if err != nil || !bytes.Equal(x, y) {
		t.Errorf("%s differs from %s (%v)", b, a, err)
	}
}

// TestServiceAccountHostile: each file of the service account is read only
// as a regular file within its limit, directly or through kubelet's own
// links (name -> ..data/name -> ..<timestamp>/name); any other link, a
// FIFO, a socket, a device or a directory is refused at once with an error
// saying what it is, and the kubeconfig is not written.
func TestServiceAccountHostile(t *testing.T) {
	tok := fakeToken(t, time.Now(), time.Now().Add(time.Hour))
	for _, tc := range []struct {
		class string
		file  string                              // the file made hostile
		make  func(t *testing.T, sa, path string) // replaces sa/file
		want  string                              // "": accepted
	}{
		{"kubelet layout", "token", kubeletLayout, ""},
		{"fifo", "token", func(t *testing.T, _, p string) { mkHostile(t, "fifo", p) }, "named pipe (FIFO)"},
		{"fifo", "ca.crt", func(t *testing.T, _, p string) { mkHostile(t, "fifo", p) }, "named pipe (FIFO)"},
		{"fifo", "namespace", func(t *testing.T, _, p string) { mkHostile(t, "fifo", p) }, "named pipe (FIFO)"},
		{"socket", "token", func(t *testing.T, _, p string) { mkHostile(t, "socket", p) }, "socket"},
		{"device", "token", func(t *testing.T, _, p string) { mkHostile(t, "device", p) }, "character device"},
		{"directory", "ca.crt", func(t *testing.T, _, p string) { mkHostile(t, "dir", p) }, "directory"},
		{"link elsewhere", "token", func(t *testing.T, _, p string) { mkHostile(t, "link", p) }, "only kubelet's layout"},
		{"link to a device", "token", func(t *testing.T, _, p string) { symlink(t, "/dev/zero", p) }, "only kubelet's layout"},
		{"..data outside", "token", dataOutside, "only a directory ..<timestamp>"},
		{"kubelet layout, file a FIFO", "token", kubeletFIFO, "named pipe (FIFO)"},
		{"token too large", "token", func(t *testing.T, _, p string) { sparse(t, p, 64<<10+1) }, "65536 bytes"},
		{"namespace too large", "namespace", func(t *testing.T, _, p string) { sparse(t, p, 1<<10+1) }, "1024 bytes"},
		{"ca.crt too large", "ca.crt", func(t *testing.T, _, p string) { sparse(t, p, 1<<20+1) }, "1048576 bytes"},
	} {
		t.Run(tc.class+"/"+tc.file, func(t *testing.T) {
			dir := t.TempDir()
			sa := writeServiceAccount(t, filepath.Join(dir, "sa"), tok)
			path := filepath.Join(sa, tc.file)
			if err := os.Remove(path); err != nil {
				t.Fatal(err)
			}
			tc.make(t, sa, path)
			k := &Kubeconfig{Path: filepath.Join(dir, "kubeconfig"), ServiceAccountDir: sa, Server: "https://10.96.0.1:443"}
			err := within(t, func() error { _, err := k.Write(); return err })
			if tc.want == "" {
				if err != nil {
					t.Fatalf("Write: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Write: %v, want an error containing %q", err, tc.want)
			}
			if _, err := os.Lstat(k.Path); !os.IsNotExist(err) {
				t.Errorf("kubeconfig written despite the refusal (%v)", err)
			}
			s := Successor{Server: k.Server, ServiceAccountDir: sa, Pod: "p"}
			err = within(t, func() error { _, _, err := s.client(); return err })
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Successor.client: %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

// kubeletLayout moves the service account's files into ..<timestamp>/
// and links them as kubelet's atomic writer does; the token is path.
func kubeletLayout(t *testing.T, sa, path string) {
	t.Helper()
	ts := filepath.Join(sa, "..2026_12_05_03_00_00.123456789")
	if err := os.Mkdir(ts, 0o755); err != nil {
		t.Fatal(err)
	}
	symlink(t, filepath.Base(ts), filepath.Join(sa, dataLink))
	writeServiceAccount(t, ts, fakeToken(t, time.Now(), time.Now().Add(time.Hour)))
	symlink(t, dataLink+"/"+filepath.Base(path), path)
}

// kubeletFIFO is kubelet's layout with a FIFO as the file itself.
func kubeletFIFO(t *testing.T, sa, path string) {
	t.Helper()
	kubeletLayout(t, sa, path)
	inner := filepath.Join(sa, dataLink, filepath.Base(path))
	if err := os.Remove(inner); err != nil {
		t.Fatal(err)
	}
	mkHostile(t, "fifo", inner)
}

// dataOutside is kubelet's layout but with ..data pointing out of the
// service account's directory.
func dataOutside(t *testing.T, sa, path string) {
	t.Helper()
	outside := t.TempDir()
	writeServiceAccount(t, outside, "x")
	symlink(t, outside, filepath.Join(sa, dataLink))
	symlink(t, dataLink+"/"+filepath.Base(path), path)
}

// TestKubeconfigPathHostile: what sits at the kubeconfig's own path in the
// conf dir, if not a regular file, is refused with an error naming its
// type, within a bounded time, and left alone.
func TestKubeconfigPathHostile(t *testing.T) {
	tok := fakeToken(t, time.Now(), time.Now().Add(time.Hour))
	for _, class := range []string{"fifo", "socket", "dir", "device", "link", "dangling"} {
		t.Run(class, func(t *testing.T) {
			dir := t.TempDir()
			k := &Kubeconfig{
				Path: filepath.Join(dir, "fibguard-kubeconfig"), Server: "https://10.96.0.1:443",
				ServiceAccountDir: writeServiceAccount(t, filepath.Join(dir, "sa"), tok),
			}
			mkHostile(t, class, k.Path)
			before, err := os.Lstat(k.Path)
			if err != nil {
				t.Fatal(err)
			}
			want := "is a " + typeWord(class)
			err = within(t, func() error { _, err := k.Write(); return err })
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("Write: %v, want an error containing %q", err, want)
			}
			if after, err := os.Lstat(k.Path); err != nil || !os.SameFile(before, after) {
				t.Errorf("%s was replaced or removed (%v)", k.Path, err)
			}
		})
	}
}
