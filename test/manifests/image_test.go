package manifests

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestImageBuilds runs hack/build-image.sh, which builds the image without
// a container engine and checks it (digests, static binaries, Docker's
// manifest.json), and then reads the archive as a runtime would to check
// it against the DaemonSet: the name the manifests deploy, the entrypoint
// the readiness probe runs, and the plugin binary where the installer
// looks for it.
func TestImageBuilds(t *testing.T) {
	if testing.Short() {
		t.Skip("manifests: -short: building the image compiles the plugin and go-containerregistry")
	}
	needInstaller(t)
	o := render(t, "manifests/base")
	out := filepath.Join(t.TempDir(), "fibguard-image.tar")
	cmd := exec.Command(filepath.Join(setup.root, "hack", "build-image.sh"), out)
	stdout, err := cmd.Output()
	if err != nil {
		var exitErr *exec.ExitError
		if errors.As(err, &exitErr) {
			t.Fatalf("hack/build-image.sh: %v\n%s", err, exitErr.Stderr)
		}
		t.Fatalf("hack/build-image.sh: %v", err)
	}
	if lines := strings.Split(strings.TrimSpace(string(stdout)), "\n"); lines[len(lines)-1] != out {
		t.Errorf("hack/build-image.sh printed %q last, want the archive's path %s", lines[len(lines)-1], out)
	}

	blobs, err := readArchive(out)
	if err != nil {
		t.Fatal(err)
	}
	var index struct {
		Manifests []struct {
			Digest      string            `json:"digest"`
			Annotations map[string]string `json:"annotations"`
		} `json:"manifests"`
	}
	if err := json.Unmarshal(blobs["index.json"], &index); err != nil || len(index.Manifests) != 1 {
		t.Fatalf("index.json: %v, %d manifests; want one\n%s", err, len(index.Manifests), blobs["index.json"])
	}
	c := &o.DaemonSet.Spec.Template.Spec.Containers[0]
	if got := index.Manifests[0].Annotations["io.containerd.image.name"]; got != c.Image {
		t.Errorf("the archive names its image %q (what ctr import tags), the DaemonSet runs %q", got, c.Image)
	}
	var manifest struct {
		Config struct{ Digest string }   `json:"config"`
		Layers []struct{ Digest string } `json:"layers"`
	}
	if err := json.Unmarshal(blob(t, blobs, index.Manifests[0].Digest), &manifest); err != nil {
		t.Fatalf("image manifest: %v", err)
	}
	var config struct {
		OS           string                        `json:"os"`
		Architecture string                        `json:"architecture"`
		Config       struct{ Entrypoint []string } `json:"config"`
	}
	if err := json.Unmarshal(blob(t, blobs, manifest.Config.Digest), &config); err != nil {
		t.Fatalf("image config: %v", err)
	}
	probe := c.ReadinessProbe.Exec.Command[0]
	if !slices.Equal(config.Config.Entrypoint, []string{probe}) {
		t.Errorf("entrypoint %q; the DaemonSet's readiness probe runs %s", config.Config.Entrypoint, probe)
	}
	files := map[string]int64{}
	for _, l := range manifest.Layers {
		if err := layerFiles(blob(t, blobs, l.Digest), files); err != nil {
			t.Fatalf("layer %s: %v", l.Digest, err)
		}
	}
	for _, want := range []string{probe, binaryPath(t, c), eventBinaryPath(t, c)} {
		if files[want] == 0 {
			t.Errorf("the image has no executable %s; it holds %v", want, files)
		}
	}
	t.Logf("image %s for %s/%s: %v", c.Image, config.OS, config.Architecture, files)
}

// readArchive returns the files of a tar archive by name.
func readArchive(path string) (map[string][]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	files := map[string][]byte{}
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return files, nil
		}
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", path, err)
		}
		if h.Typeflag == tar.TypeReg {
			if files[h.Name], err = io.ReadAll(tr); err != nil {
				return nil, fmt.Errorf("reading %s: %w", path, err)
			}
		}
	}
}

// blob returns the blob of digest (sha256:HEX) of an OCI layout.
func blob(t *testing.T, blobs map[string][]byte, digest string) []byte {
	t.Helper()
	alg, hex, _ := strings.Cut(digest, ":")
	b, ok := blobs["blobs/"+alg+"/"+hex]
	if !ok {
		t.Fatalf("the archive lacks blob %s", digest)
	}
	return b
}

// layerFiles records the executable files of a gzipped layer, by absolute
// path, with their sizes.
func layerFiles(layer []byte, files map[string]int64) error {
	zr, err := gzip.NewReader(bytes.NewReader(layer))
	if err != nil {
		return err
	}
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if h.Typeflag == tar.TypeReg && h.Mode&0o111 != 0 {
			files["/"+strings.TrimPrefix(h.Name, "/")] = h.Size
		}
	}
}
