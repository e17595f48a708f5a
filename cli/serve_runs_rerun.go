package cli

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/lakehouse-dev/lakehouse/catalog"
	"github.com/lakehouse-dev/lakehouse/flight"
	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
	"github.com/lakehouse-dev/lakehouse/runtime/runrec"
)

// Rerun implements flight.Runs.
func (lr *localRuns) Rerun(ctx context.Context, b flight.RerunBody, send func(*flight.RunEvent) error) error {
	e := lr.e
	runs, err := lr.store()
	if err != nil {
		return err
	}
	orig, err := runs.Get(b.RunID)
	if err != nil {
		return err
	}
	if b.Preview == "" {
		b.Preview = "off"
	}
	f, err := runFlagsOf(b.Strict, true, false, b.Preview, b.KeepFailed, b.Launcher, b.Isolation)
	if err != nil {
		return err
	}
	prio, err := checkPriority(b.Priority)
	if err != nil {
		return err
	}
	if b.Detach && !lr.served {
		return detachError()
	}
	if orig.Live() == runrec.StatusRunning {
		return errdefs.New(errdefs.ErrFailedPrecondition, "run %s is still running; rerun it when it has ended", orig.ID)
	}
	if orig.StartCommit == "" {
		return errdefs.New(errdefs.ErrFailedPrecondition, "run %s never started (it has no start commit) and cannot be rerun", orig.ID)
	}
	// The code is the run's only if it still hashes as recorded.
	if err := runs.VerifyCode(orig); err != nil {
		return err
	}
	tgt := b.Ref
	if tgt == "" {
		tgt = orig.Target
	}
	target, err := catalog.ParseBranchName(tgt)
	if err != nil {
		return errdefs.WithHint(errdefs.ErrInvalidArgument, "name a branch with -r", "%s is not a branch a rerun can write to", tgt)
	}
	svc, err := e.Service(ctx)
	if err != nil {
		return err
	}
	var params []string
	for k, v := range orig.Params {
		if v == nil {
			continue
		}
		params = append(params, k+"="+paramString(v))
	}
	sort.Strings(params)
	code := runs.CodeDir(orig.ID)
	plan, err := e.planProject(ctx, code, catalog.Ref{Commit: orig.StartCommit}, "", "", params, f)
	if err != nil {
		return err
	}
	// The target is created only for a rerun that plans: a refused rerun
	// changes nothing.
	if _, err := svc.GetBranch(ctx, target); errdefs.Is(err, errdefs.ErrNotFound) {
		if _, err := svc.CreateBranch(ctx, target, catalog.Ref{Commit: orig.StartCommit}); err != nil {
			return err
		}
		send(&flight.RunEvent{Type: flight.EventPrint, Text: fmt.Sprintf("created branch %s at %s", target, short12(orig.StartCommit))})
	} else if err != nil {
		return err
	}
	job := runJob{plan: plan, dir: code, target: target, flags: f, rerunOf: orig.ID, user: b.User,
		id: runrec.NewID(time.Now().UTC())}
	return lr.start(ctx, job, prio, b.Detach, func() {}, func(ev *flight.RunEvent) error {
		if ev.Type != flight.EventFinished || ev.Error != nil {
			return send(ev)
		}
		return lr.compareRerun(orig, ev, send)
	})
}

// compareRerun says whether each output of a rerun that succeeded matches
// the original run's, in the record and in lines after its end.
func (lr *localRuns) compareRerun(orig *runrec.Record, ev *flight.RunEvent, send func(*flight.RunEvent) error) error {
	rec := ev.Record
	rec.Matches = map[string]bool{}
	var differ, older []string
	for _, m := range rec.Models {
		o := orig.Model(m.Name)
		if m.Kind != "model" || o == nil || o.Fingerprint == "" {
			continue
		}
		if len(o.Fingerprint) != len(m.Fingerprint) {
			// Recorded by a lakehouse whose fingerprints hashed display
			// text: the two cannot be compared.
			older = append(older, m.Name)
			continue
		}
		same := o.Fingerprint == m.Fingerprint && o.Rows == m.Rows
		rec.Matches[m.Name] = same
		if !same {
			differ = append(differ, fmt.Sprintf("%s (%d rows, originally %d)", m.Name, m.Rows, o.Rows))
		}
	}
	if runs, err := lr.store(); err == nil {
		runs.Save(rec)
	}
	if err := send(ev); err != nil {
		return err
	}
	say := func(format string, args ...any) {
		send(&flight.RunEvent{Type: flight.EventPrint, Text: fmt.Sprintf(format, args...)})
	}
	if len(older) > 0 {
		say("not compared (run %s was recorded by an older lakehouse): %s", orig.ID, strings.Join(older, ", "))
	}
	switch {
	case len(differ) == 0 && len(rec.Matches) == 0:
	case len(differ) == 0:
		say("all %d output(s) match run %s", len(rec.Matches), orig.ID)
	default:
		say("outputs that differ from run %s: %s", orig.ID, strings.Join(differ, ", "))
		return errRerunDiffers
	}
	return nil
}

// errRerunDiffers ends a rerun whose outputs differ from the original's.
var errRerunDiffers = errors.New("the rerun's outputs differ from the original run's")
