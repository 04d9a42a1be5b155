package main

import (
	"io"
	"os"

	"github.com/schollz/progressbar/v3"
)

// isTerminal reports whether f is a character device (a terminal).
func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// progress shows a byte-count progress bar on stderr when stderr is a
// terminal; otherwise it is silent. total < 0 means unknown.
type progress struct{ bar *progressbar.ProgressBar }

func newProgress(total int64, what string) *progress {
	if !isTerminal(os.Stderr) {
		return &progress{}
	}
	return &progress{bar: progressbar.DefaultBytes(total, what)}
}

// reader counts bytes read from r.
func (p *progress) reader(r io.Reader) io.Reader {
	if p.bar == nil {
		return r
	}
	pr := progressbar.NewReader(r, p.bar)
	return &pr
}

// writer counts bytes written to w.
func (p *progress) writer(w io.Writer) io.Writer {
	if p.bar == nil {
		return w
	}
	return io.MultiWriter(w, p.bar)
}

func (p *progress) done() {
	if p.bar != nil {
		p.bar.Finish()
		os.Stderr.WriteString("\n")
	}
}
