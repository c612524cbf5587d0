package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"

	"github.com/skiff-registry/skiff/internal/copier"
)

// reporter shows a copy's events: progress bars on a terminal (stderr),
// else one JSON line per event on stdout (every event but the byte counts
// of a blob being sent, which only a bar shows).
type reporter struct {
	mu   sync.Mutex
	enc  *json.Encoder // JSON lines, or nil
	out  io.Writer     // the summary, for people
	bars *mpb.Progress
	open map[string]*mpb.Bar // by image and digest
}

func newReporter(stdout, stderr io.Writer, forceJSON bool) *reporter {
	if f, ok := stderr.(*os.File); ok && !forceJSON && isTerminal(f) {
		return newBarsReporter(f)
	}
	return &reporter{out: stdout, open: map[string]*mpb.Bar{}, enc: json.NewEncoder(stdout)}
}

// newBarsReporter draws bars and prints its lines and the summary on term.
func newBarsReporter(term io.Writer) *reporter {
	return &reporter{out: term, open: map[string]*mpb.Bar{},
		bars: mpb.New(mpb.WithOutput(term), mpb.WithWidth(40), mpb.WithRefreshRate(150*time.Millisecond), mpb.ForceAutoRefresh())}
}

func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

func (r *reporter) event(e copier.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.enc != nil {
		if e.Kind != copier.KindBlobProgress {
			_ = r.enc.Encode(e)
		}
		return
	}
	key := e.Image + " " + e.Digest
	switch e.Kind {
	case copier.KindBlobStart:
		if b := r.open[key]; b != nil {
			b.SetCurrent(0) // a retry starts over
			return
		}
		r.open[key] = r.bars.AddBar(e.Size,
			mpb.PrependDecorators(decor.Name(shortDigest(e.Digest), decor.WC{W: 20, C: decor.DindentRight})),
			mpb.AppendDecorators(decor.CountersKibiByte("% .1f / % .1f", decor.WC{W: 22}), decor.AverageSpeed(decor.SizeB1024(0), " % .1f", decor.WC{W: 14})),
			mpb.BarRemoveOnComplete())
	case copier.KindBlobProgress:
		if b := r.open[key]; b != nil {
			b.SetCurrent(min(e.Done, e.Size))
		}
	case copier.KindBlobCopied:
		if b := r.open[key]; b != nil {
			// Complete it whatever its size (a bar of 0 bytes never
			// completes by its count).
			b.SetCurrent(e.Size)
			b.SetTotal(-1, true)
			delete(r.open, key)
		}
	case copier.KindImage:
		fmt.Fprintf(r.bars, "copy %s %s\n", e.Image, e.Note)
	case copier.KindWarning:
		fmt.Fprintf(r.bars, "warning: %s: %s\n", e.Image, e.Note)
	case copier.KindImageDone:
		fmt.Fprintf(r.bars, "done %s: %s\n", e.Image, e.Note)
	case copier.KindImageFailed:
		r.abort(e.Image + " ")
		fmt.Fprintf(r.bars, "FAILED %s: %s\n", e.Image, e.Error)
	}
}

// abort drops the bars of blobs whose keys start with prefix (all with
// ""): their uploads ended without completing.
func (r *reporter) abort(prefix string) {
	for k, b := range r.open {
		if len(k) >= len(prefix) && k[:len(prefix)] == prefix {
			b.Abort(true)
			delete(r.open, k)
		}
	}
}

// summary ends the report with what the run did.
func (r *reporter) summary(s copier.Summary) {
	r.mu.Lock()
	if r.bars != nil {
		r.abort("")
		r.mu.Unlock()
		r.bars.Wait()
		r.mu.Lock()
	}
	defer r.mu.Unlock()
	if r.enc != nil {
		_ = r.enc.Encode(struct {
			Event string `json:"event"`
			copier.Summary
		}{"summary", s})
		return
	}
	fmt.Fprintln(r.out, summaryText(s))
}

// summaryText says what a run did, in a line.
func summaryText(s copier.Summary) string {
	var what string
	if s.Copied() {
		what = fmt.Sprintf("%d manifests and %d blobs copied (%s), %d manifests and %d blobs skipped",
			s.ManifestsCopied, s.BlobsCopied, humanBytes(s.Bytes), s.ManifestsSkipped, s.BlobsSkipped)
	} else {
		what = fmt.Sprintf("nothing to copy: the destination had all %d manifests and %d blobs", s.ManifestsSkipped, s.BlobsSkipped)
	}
	line := fmt.Sprintf("%d image(s): %s, in %s", s.Images, what, s.Duration.Round(time.Millisecond))
	if len(s.Failures) > 0 {
		line += fmt.Sprintf("; %d failed", len(s.Failures))
	}
	return line
}

func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

func shortDigest(d string) string {
	if len(d) > 19 {
		return d[:19]
	}
	return d
}
