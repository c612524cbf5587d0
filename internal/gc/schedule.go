package gc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/skiff-registry/skiff/internal/storage"
)

// checkpointKey is the settings item that holds the scheduled passes'
// state: one conditional single-item write per claim and per save.
const checkpointKey = "gc/checkpoint"

// maxCheckpointListed caps the deletions a stored checkpoint lists (the
// counts go on): the item must stay far below DynamoDB's 400 KB.
const maxCheckpointListed = 200

// Scheduled runs passes from scheduled invocations that each last a
// while (a Lambda function's 15 minutes at most): an invocation goes on
// with the pass in progress, or starts one if the last finished Interval
// ago, and stores where it stopped. One invocation at a time holds the
// pass: it claims it until its deadline with a conditional write, so an
// invocation delivered twice, or one that overlaps a slow one, leaves.
type Scheduled struct {
	Collector *Collector
	Settings  storage.Settings
	// Interval is the time from a pass's end to the next one's start.
	Interval time.Duration
	// Margin is kept free before the deadline to store the checkpoint;
	// default 30s.
	Margin time.Duration
}

// Invocation is what one invocation did.
type Invocation struct {
	// Outcome: "busy" (another invocation holds the pass), "idle" (the
	// last pass finished less than Interval ago), "progress" (the pass goes
	// on next time) or "finished".
	Outcome string     `json:"outcome"`
	Phase   string     `json:"phase"`
	Steps   int        `json:"steps"`
	Report  Report     `json:"report"`
	Next    *time.Time `json:"next,omitempty"` // idle: when the next pass starts
}

// scheduledState is the stored checkpoint and its claim.
type scheduledState struct {
	Checkpoint
	Holder string    `json:"holder,omitempty"`
	Until  time.Time `json:"until,omitzero"`
}

// Invoke runs one invocation that must end by deadline, as holder (the
// invocation's id).
func (s *Scheduled) Invoke(ctx context.Context, deadline time.Time, holder string) (Invocation, error) {
	now := s.Collector.opts.Now().UTC()
	margin := s.Margin
	if margin <= 0 {
		margin = 30 * time.Second
	}
	var st scheduledState
	var version int64
	cur, err := s.Settings.GetSetting(ctx, checkpointKey)
	switch {
	case errors.Is(err, storage.ErrNotFound):
	case err != nil:
		return Invocation{}, fmt.Errorf("read the collection checkpoint: %w", err)
	default:
		if err := json.Unmarshal(cur.Value, &st); err != nil {
			return Invocation{}, fmt.Errorf("decode the collection checkpoint: %w", err)
		}
		version = cur.Version
	}
	inv := Invocation{Phase: st.Phase, Steps: st.Steps, Report: st.Report}
	switch {
	case st.Holder != "" && st.Holder != holder && now.Before(st.Until):
		inv.Outcome = "busy"
		return inv, nil
	case st.Phase == PhaseDone && now.Before(st.Report.Finished.Add(s.Interval)):
		next := st.Report.Finished.Add(s.Interval)
		inv.Outcome, inv.Next = "idle", &next
		return inv, nil
	}
	st.Holder, st.Until = holder, deadline
	if version, err = s.save(ctx, st, version); errors.Is(err, storage.ErrConflict) {
		inv.Outcome = "busy" // claimed by another meanwhile
		return inv, nil
	} else if err != nil {
		return inv, err
	}
	// The step stops between units at deadline - margin; one that runs
	// long is cut at deadline - margin/2 (its store calls fail), which
	// leaves the checkpoint at the last unit done and time to store it.
	stepCtx, cancelStep := context.WithDeadline(ctx, deadline.Add(-margin/2))
	stepErr := s.Collector.Step(stepCtx, &st.Checkpoint, deadline.Add(-margin))
	cancelStep()
	st.Holder, st.Until = "", time.Time{}
	// Stored even after an error: the checkpoint is a valid place to go
	// on from. A context already ended gets a short one of its own.
	saveCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if _, err := s.save(saveCtx, st, version); err != nil {
		return inv, errors.Join(stepErr, err)
	}
	inv = Invocation{Outcome: "progress", Phase: st.Phase, Steps: st.Steps, Report: st.Report}
	if st.Phase == PhaseDone {
		inv.Outcome = "finished"
	}
	return inv, stepErr
}

// save stores st if the item is still at version prev, and returns the
// new version.
func (s *Scheduled) save(ctx context.Context, st scheduledState, prev int64) (int64, error) {
	if n := len(st.Report.Deleted); n > maxCheckpointListed {
		st.Report.Deleted = st.Report.Deleted[n-maxCheckpointListed:]
		st.Report.Truncated = true
	}
	b, err := json.Marshal(st)
	if err != nil {
		return prev, err
	}
	if err := s.Settings.PutSetting(ctx, storage.Setting{Key: checkpointKey, Value: b}, prev); err != nil {
		return prev, fmt.Errorf("store the collection checkpoint: %w", err)
	}
	return prev + 1, nil
}
