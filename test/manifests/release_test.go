package manifests

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"helm.sh/helm/v4/pkg/chart/common"
)

// pinnedImage is how a release references the image: by digest only.
var pinnedImage = regexp.MustCompile(`^ghcr\.io/fibguard/fibguard@sha256:[0-9a-f]{64}$`)

// copyTree copies the manifests and the chart into a new directory, for
// hack/release.sh to edit there (RELEASE_ROOT).
func copyTree(t *testing.T) string {
	t.Helper()
	dst := t.TempDir()
	for _, dir := range []string{"manifests", chartDir} {
		if err := os.CopyFS(filepath.Join(dst, dir), os.DirFS(filepath.Join(setup.root, dir))); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

// runRelease runs hack/release.sh with args on the tree.
func runRelease(t *testing.T, tree string, args ...string) error {
	t.Helper()
	cmd := exec.Command(filepath.Join(setup.root, "hack", "release.sh"), args...)
	cmd.Env = append(os.Environ(), "RELEASE_ROOT="+tree)
	out, err := cmd.CombinedOutput()
	t.Logf("hack/release.sh %s: %s", strings.Join(args, " "), strings.TrimSpace(string(out)))
	return err
}

// renderTree renders the tree's kustomize base and the chart with the
// tree's values.yaml (as `helm install -f` would give them).
func renderTree(t *testing.T, tree string) (base, chart *objects) {
	t.Helper()
	needKubectl(t)
	dir := filepath.Join(tree, "manifests", "base")
	out, err := exec.Command(setup.kubectl, "kustomize", dir).Output()
	if err != nil {
		t.Fatalf("kubectl kustomize %s: %v", dir, err)
	}
	if base, err = decode(out); err != nil {
		t.Fatal(err)
	}
	vals, err := common.ReadValuesFile(filepath.Join(tree, chartDir, "values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	return base, renderChart(t, vals.AsMap())
}

// imageOf is the installer's image in o's DaemonSet.
func imageOf(o *objects) string { return o.DaemonSet.Spec.Template.Spec.Containers[0].Image }

// TestReleasePinsDigest: hack/release.sh pin makes the kustomize base and
// the chart render the same repository@sha256:<64 hex>, the digest given,
// and otherwise still the same objects (the golden comparison of
// TestHelmChartEqualsKustomize); unpin brings back the tag, byte for byte;
// a malformed digest is refused.
func TestReleasePinsDigest(t *testing.T) {
	tree := copyTree(t)
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		t.Fatal(err)
	}
	digest := "sha256:" + hex.EncodeToString(raw)
	if err := runRelease(t, tree, "pin", digest); err != nil {
		t.Fatalf("pin: %v", err)
	}
	base, chart := renderTree(t, tree)
	if b, c := imageOf(base), imageOf(chart); !pinnedImage.MatchString(b) || b != c || !strings.HasSuffix(b, "@"+digest) {
		t.Errorf("pinned: the base deploys %q, the chart %q; want both ghcr.io/fibguard/fibguard@%s", b, c, digest)
	}
	checkChartEquals(t, base, chart, filepath.Join(tree, "manifests", "base"))
	for _, bad := range []string{"sha256:xyz", "sha512:" + hex.EncodeToString(raw) + hex.EncodeToString(raw), strings.ToUpper(digest)} {
		if err := runRelease(t, tree, "pin", bad); err == nil {
			t.Errorf("pin %s: accepted", bad)
		}
	}
	if err := runRelease(t, tree, "unpin"); err != nil {
		t.Fatalf("unpin: %v", err)
	}
	for _, f := range []string{"manifests/base/kustomization.yaml", chartDir + "/values.yaml"} {
		got, err := os.ReadFile(filepath.Join(tree, f))
		want, err2 := os.ReadFile(filepath.Join(setup.root, f))
		if err != nil || err2 != nil || string(got) != string(want) {
			t.Errorf("%s after pin and unpin differs from the checkout's (%v, %v)", f, err, err2)
		}
	}
}

// TestCheckedInImageAgrees: as checked in, the base and the chart deploy
// the same image — both the tag (development) or both the same digest (a
// release).
func TestCheckedInImageAgrees(t *testing.T) {
	b, c := renderTree(t, setup.root)
	base, chart := imageOf(b), imageOf(c)
	if base != chart {
		t.Errorf("the base deploys %q, the chart %q", base, chart)
	}
	if base != image && !pinnedImage.MatchString(base) {
		t.Errorf("the base deploys %q: want the tag %s or a digest", base, image)
	}
}
