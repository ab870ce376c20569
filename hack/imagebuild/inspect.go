package main

import (
	"archive/tar"
	"bytes"
	"debug/elf"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing/fstest"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/validate"
)

// Inspect reads an archive that Build wrote, checks it the way a runtime
// would, and describes in w what it holds: for each image in index.json its name,
// platform, digest, config and layers, and every file of the layers. It
// fails when a digest, size or diff ID does not match its content, when
// Docker's manifest.json disagrees with index.json, when the entrypoint is
// missing, or when an executable is not statically linked (the image has
// no libc to link against).
func Inspect(archive string, w *strings.Builder) (err error) {
	dir, err := os.MkdirTemp("", "imagebuild-inspect-")
	if err != nil {
		return fmt.Errorf("creating a work directory: %w", err)
	}
	defer func() {
		if rmErr := os.RemoveAll(dir); rmErr != nil && err == nil {
			err = fmt.Errorf("removing the work directory: %w", rmErr)
		}
	}()
	if err := unpack(archive, dir); err != nil {
		return err
	}
	idx, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		return fmt.Errorf("%s is not an OCI image layout: %w", archive, err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return fmt.Errorf("reading index.json: %w", err)
	}
	if len(im.Manifests) == 0 {
		return fmt.Errorf("%s: index.json lists no image", archive)
	}
	var images []v1.Image
	for _, desc := range im.Manifests {
		img, err := idx.Image(desc.Digest)
		if err != nil {
			return fmt.Errorf("image %s: %w", desc.Digest, err)
		}
		if err := validate.Image(img); err != nil {
			return fmt.Errorf("image %s is inconsistent: %w", desc.Digest, err)
		}
		if desc.Annotations[annotationContainerdName] == "" {
			return fmt.Errorf("image %s: no %s annotation: ctr import would not name it", desc.Digest, annotationContainerdName)
		}
		fmt.Fprintf(w, "image %s\n  digest %s\n  media type %s\n", desc.Annotations[annotationContainerdName], desc.Digest, desc.MediaType)
		if desc.Platform != nil {
			fmt.Fprintf(w, "  platform %s\n", desc.Platform)
		}
		if err := describe(img, w); err != nil {
			return fmt.Errorf("image %s: %w", desc.Digest, err)
		}
		images = append(images, img)
	}
	return checkDockerManifest(archive, images, w)
}

// unpack extracts archive into dir, refusing names that leave it and
// entries other than files and directories.
func unpack(archive, dir string) error {
	f, err := os.Open(archive)
	if err != nil {
		return fmt.Errorf("reading the archive: %w", err)
	}
	defer func() { _ = f.Close() }() // read-only: nothing to lose on close
	files := fstest.MapFS{}
	for tr := tar.NewReader(f); ; {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("reading %s: %w", archive, err)
		}
		name := strings.TrimSuffix(h.Name, "/")
		switch {
		case !filepath.IsLocal(name):
			return fmt.Errorf("%s: entry %q is outside the archive", archive, h.Name)
		case h.Typeflag == tar.TypeDir: // made with the files in it
		case h.Typeflag == tar.TypeReg:
			data, err := io.ReadAll(tr)
			if err != nil {
				return fmt.Errorf("reading %s: %w", archive, err)
			}
			files[name] = &fstest.MapFile{Data: data, Mode: 0o644}
		default:
			return fmt.Errorf("%s: entry %q has type %q; want files and directories", archive, h.Name, h.Typeflag)
		}
	}
	if err := os.CopyFS(dir, files); err != nil {
		return fmt.Errorf("unpacking %s: %w", archive, err)
	}
	return nil
}

// describe prints the config and the layers of img, and checks its files.
func describe(img v1.Image, w *strings.Builder) error {
	cfg, err := img.ConfigFile()
	if err != nil {
		return fmt.Errorf("reading the config: %w", err)
	}
	c, err := json.MarshalIndent(cfg.Config, "  ", "  ")
	if err != nil {
		return fmt.Errorf("encoding the config: %w", err)
	}
	fmt.Fprintf(w, "  created %s\n  config %s\n", cfg.Created.UTC().Format("2006-01-02T15:04:05Z"), c)
	layers, err := img.Layers()
	if err != nil {
		return fmt.Errorf("reading the layers: %w", err)
	}
	files := map[string]bool{}
	for i, l := range layers {
		d, err := l.Digest()
		if err != nil {
			return fmt.Errorf("layer %d: %w", i, err)
		}
		size, err := l.Size()
		if err != nil {
			return fmt.Errorf("layer %d: %w", i, err)
		}
		mt, err := l.MediaType()
		if err != nil {
			return fmt.Errorf("layer %d: %w", i, err)
		}
		fmt.Fprintf(w, "  layer %s %d bytes %s\n", d, size, mt)
		if err := listLayer(l, files, w); err != nil {
			return fmt.Errorf("layer %s: %w", d, err)
		}
	}
	if len(cfg.Config.Entrypoint) == 0 {
		return errors.New("no entrypoint")
	}
	if ep := strings.TrimPrefix(path.Clean(cfg.Config.Entrypoint[0]), "/"); !files[ep] {
		return fmt.Errorf("entrypoint %s is not an executable file of the image", cfg.Config.Entrypoint[0])
	}
	return nil
}

// listLayer prints every entry of layer l and records its executable files
// in execs; an executable ELF file must be statically linked.
func listLayer(l v1.Layer, execs map[string]bool, w *strings.Builder) (err error) {
	rc, err := l.Uncompressed()
	if err != nil {
		return err
	}
	defer func() {
		if cErr := rc.Close(); cErr != nil && err == nil {
			err = cErr
		}
	}()
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		kind := ""
		if h.Typeflag == tar.TypeReg && h.Mode&0o111 != 0 {
			execs[strings.TrimSuffix(h.Name, "/")] = true
			data, err := io.ReadAll(tr)
			if err != nil {
				return err
			}
			if kind, err = linkage(data); err != nil {
				return fmt.Errorf("%s: %w", h.Name, err)
			}
		}
		fmt.Fprintf(w, "    %s %4d:%-4d %10d %s %s\n", h.FileInfo().Mode(), h.Uid, h.Gid, h.Size, h.Name, kind)
	}
}

// linkage says how an executable is linked, and fails for a dynamically
// linked ELF file: it names a program interpreter or needs shared
// libraries, neither of which a scratch image has.
func linkage(data []byte) (string, error) {
	if !bytes.HasPrefix(data, []byte(elf.ELFMAG)) {
		return "(not ELF)", nil
	}
	f, err := elf.NewFile(bytes.NewReader(data))
	if err != nil {
		return "", fmt.Errorf("reading ELF: %w", err)
	}
	defer func() { _ = f.Close() }() // in memory
	if i := slices.IndexFunc(f.Progs, func(p *elf.Prog) bool { return p.Type == elf.PT_INTERP }); i >= 0 {
		return "", errors.New("dynamically linked: it has a program interpreter; build with CGO_ENABLED=0")
	}
	libs, err := f.ImportedLibraries()
	if err != nil {
		return "", fmt.Errorf("reading its dynamic section: %w", err)
	}
	if len(libs) > 0 {
		return "", fmt.Errorf("dynamically linked against %v; build with CGO_ENABLED=0", libs)
	}
	return fmt.Sprintf("(ELF %s, static)", f.Machine), nil
}

// checkDockerManifest reads the archive the way `docker load` does, from
// manifest.json, and checks that it finds the same images.
func checkDockerManifest(archive string, images []v1.Image, w *strings.Builder) error {
	if len(images) != 1 {
		return nil // manifest.json is written for single-platform archives only
	}
	img, err := tarball.ImageFromPath(archive, nil)
	if err != nil {
		return fmt.Errorf("reading manifest.json like docker load: %w", err)
	}
	if err := validate.Image(img); err != nil {
		return fmt.Errorf("the image of manifest.json is inconsistent: %w", err)
	}
	got, err := img.ConfigName()
	if err != nil {
		return fmt.Errorf("manifest.json: %w", err)
	}
	want, err := images[0].ConfigName()
	if err != nil {
		return fmt.Errorf("index.json: %w", err)
	}
	if got != want {
		return fmt.Errorf("manifest.json names config %s, index.json %s", got, want)
	}
	fmt.Fprintf(w, "manifest.json (docker load): the same image, config %s\n", got)
	return nil
}
