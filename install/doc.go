// Package install puts the fibguard plugin on a Kubernetes node and takes it
// off again. It is the logic of cmd/fibguard-install, which runs in a
// DaemonSet pod with the host's CNI directories mounted:
//
//   - it copies the fibguard binary into the host's CNI bin dir, and next to
//     it the event binary fibguard-event, which the plugin runs to record
//     Kubernetes Events (CopyBinary);
//   - it writes a kubeconfig for the plugin from the pod's service account
//     and rewrites it whenever the kubelet rotates the projected token, and
//     at the latest at 80% of the token's lifetime (Kubeconfig);
//   - it finds the CNI configuration the container runtime uses (FindPrimary)
//     and chains fibguard into it as the last plugin (InsertEntry), turning
//     a single-plugin .conf into a .conflist when needed. Its entry carries
//     the mark "managedBy": "fibguard-install". A fibguard entry someone
//     else wrote, wherever it stands, is taken over: its settings are kept
//     where the installer's configuration does not set them, and its exact
//     bytes are kept in the installer's entry ("handWritten"). A list of
//     fibguard alone is refused (CheckEntry, the readiness check, fails
//     until the list is as InsertEntry leaves it);
//   - it watches the configuration directory and puts the entry back when
//     the primary CNI plugin rewrites its file (Watch, Installer.Run);
//   - on uninstall it removes its entry, puts back the entries it took
//     over, byte for byte, restores a converted .conf, and removes its
//     kubeconfig and binaries — the binaries only when no configuration
//     names fibguard any more (RemoveEntry, EntriesLeft, Installer.Uninstall);
//   - when its pod stops, it uninstalls only if no other installer pod will
//     take over: not while its DaemonSet remains, as during an update
//     (Successor).
//
// The configuration files belong to someone else — the primary CNI plugin,
// which may rewrite them at any moment, and the container runtime, which
// reads them at any moment. So every change is a whole new file written
// next to the old one, flushed, and renamed over it: a reader sees the old
// file or the new one, never a mix, even if the installer is killed half
// way. Edits are made on the file's bytes: fibguard's entry is spliced into
// the "plugins" array and everything else — key order, number formats,
// unknown fields, whitespace — stays as the other plugin wrote it, so that
// uninstalling gives back the original bytes.
//
// Files the installer creates besides its entry: in the conf dir the
// kubeconfig (fibguard-kubeconfig by default) and, for a converted .conf,
// the backup <name>.conf.fibguard-orig; in the bin dir the binaries
// fibguard and fibguard-event; while writing, temporary files
// .<name>.fibguard-tmp-<random>. None has an
// extension the runtimes read. Every change takes an flock on the
// directory, so two installers on a node (old and new pod of a DaemonSet
// update) and the goroutines of one take turns.
//
// Every file is read as a regular file of at most MaxConfigFile bytes,
// checked before it is opened and opened without blocking: a FIFO, a
// device or a huge file in the conf dir is skipped (or refused), never
// waited on.
//
// Limits: a primary configuration without an inline "plugins" list (CNI
// 1.3 can load the plugins from <confdir>/<name>/*.conf) and a primary that
// is a symlink are refused with an error rather than edited; with both
// inline plugins and such files, the entry is last among the inline ones.
// A conversion outlives the primary plugin's own cleanup: it deletes the
// .conf, which is already gone. The installer checks the shape of
// fibguard's options, not their meaning: the plugin's STATUS command does.
package install
