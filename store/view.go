package store

import (
	"context"
	"io"

	"github.com/cidstore/cidstore/shard"
	"github.com/cidstore/cidstore/snapshot"
	"github.com/cidstore/cidstore/triples"
)

// View is a consistent, read-only, point-in-time view of a whole store,
// taken now and exported later. Taking it costs what a checkpoint's cut
// costs: every shard is locked in turn just long enough to clone its
// B-tree (O(1)). A replicated state machine uses it to snapshot exactly
// the state at one log index while writes go on; Export, by contrast,
// cuts when it is called.
//
// A View keeps the cloned trees alive: while it lives, writers copy the
// tree nodes they change. Drop it once exported.
type View struct {
	s      *Store
	views  []*shard.View
	tviews []*triples.View // the SPO triple index
	lsn    uint64
}

// View returns a view of the store as it is now. It fails with ErrClosed
// after Close.
func (s *Store) View() (*View, error) {
	views, tviews, mark := s.cutAll()
	if views == nil {
		return nil, ErrClosed
	}
	return &View{s: s, views: views, tviews: tviews, lsn: mark.lsn}, nil
}

// Keys returns the number of keys in the view.
func (v *View) Keys() int {
	n := 0
	for _, sv := range v.views {
		n += sv.Len()
	}
	return n
}

// Export writes the view to w in the snapshot format, as Store.Export
// writes the live store; Import and Restore read it. It may be called more
// than once, from any goroutine, also after the store was closed.
func (v *View) Export(ctx context.Context, w io.Writer) (snapshot.Summary, error) {
	parts, h := snapshotParts(v.views, v.tviews, v.lsn)
	return snapshot.Write(ctx, w, h, parts, v.s.snapshotOptions(nil)...)
}
