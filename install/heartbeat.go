package install

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Status is the content of the heartbeat file.
//
// The heartbeat is how a liveness probe tells a working installer from a
// hung one: Run writes, after every pass of its loop, when that pass
// ended, into a file inside its container (an emptyDir, not the host), and
// `fibguard-install -live` fails when that time is older than LiveBound.
// A pass that fails for an ordinary reason (the primary CNI has not
// written its configuration yet, an invalid file) still counts: the loop
// is alive, and readiness, not liveness, reports the installation. A
// pass that could not get a directory lock does not count: a loop that
// keeps waiting on a lock does no work, as one blocked on it would, and
// the probe's failure then names the lock and its holder.
//
// The same file tells the node agent, which serves the DaemonSet's
// metrics, whether the installation is in place and how often the entry
// had to be put back (fibguard_install_ready,
// fibguard_conflist_reinserts_total): Status is its content.
type Status struct {
	// Pass is when the last counted pass ended (or the loop started).
	Pass time.Time `json:"pass"`
	// Blocked, when not empty, is why the passes since Pass did not count.
	Blocked string `json:"blocked,omitempty"`
	// Installed: the last pass ended with the binaries in place and
	// fibguard chained; Error says why not otherwise.
	Installed bool   `json:"installed"`
	Error     string `json:"error,omitempty"`
	// Reinserts counts the passes, since the installer started, that
	// had to chain fibguard again (or update its entry) after it had been
	// chained: the primary CNI rewrote its configuration, say.
	Reinserts uint64 `json:"reinserts"`
}

// maxHeartbeat bounds the heartbeat file's size, as every file the
// installer reads is bounded.
const maxHeartbeat = 64 << 10

// heartbeatPerm: the file says nothing secret; the probe runs as the same
// user anyway.
const heartbeatPerm = 0o644

// LiveBound is how old the last pass may be before the installer counts
// as hung: Run makes a pass at least every resync, and a pass waits for
// at most two directory locks (lockWait each), so three resync periods
// and two lock waits leave room for a slow pass and a missed tick without
// ever taking a working installer for a hung one (96 s with the default
// resync of 30 s).
func LiveBound(resync time.Duration) time.Duration { return 3*resync + 2*lockWait }

// beat records the end of a pass in the heartbeat file, if there is one;
// a pass that failed on a lock leaves the time as it was. A failure to
// write is logged: the probe will report the stale time.
func (in *Installer) beat(passErr error) {
	if in.cfg.Heartbeat == "" {
		return
	}
	hb := Status{Pass: time.Now().UTC(), Installed: passErr == nil, Reinserts: in.reinserts}
	if errors.Is(passErr, errLocked) {
		hb.Pass, hb.Blocked = in.lastBeat, passErr.Error()
	}
	if passErr != nil {
		hb.Error = passErr.Error()
	}
	in.lastBeat = hb.Pass
	b, err := json.Marshal(hb)
	if err == nil {
		err = writeFile(in.cfg.Heartbeat, append(b, '\n'), heartbeatPerm, -1, -1, nil)
	}
	if err != nil {
		in.log.Error("writing the heartbeat failed; the liveness probe will fail", "path", in.cfg.Heartbeat, "err", err)
	}
}

// Live is the liveness check: nil if the heartbeat file at path says the
// run loop ended a pass within bound before now, otherwise an error
// saying how long ago, and why if the loop recorded it.
func Live(path string, bound time.Duration, now time.Time) error {
	if path == "" {
		return errors.New("no heartbeat file configured (-heartbeat-file): nothing to tell liveness by")
	}
	hb, err := ReadStatus(path)
	if err != nil {
		return err
	}
	age := now.Sub(hb.Pass)
	if age <= bound {
		return nil
	}
	msg := fmt.Sprintf("the installer's loop has ended no pass for %v (since %s), more than %v",
		age.Round(time.Second), hb.Pass.Format(time.RFC3339), bound)
	if hb.Blocked != "" {
		msg += ": " + hb.Blocked
	}
	return errors.New(msg)
}

// ReadStatus reads the heartbeat file at path.
func ReadStatus(path string) (Status, error) {
	b, _, err := readLimited(path, false, maxHeartbeat)
	if err != nil {
		return Status{}, fmt.Errorf("heartbeat: %w", err)
	}
	var st Status
	if err := json.Unmarshal(b, &st); err != nil {
		return Status{}, fmt.Errorf("heartbeat %s: %w", path, err)
	}
	return st, nil
}
