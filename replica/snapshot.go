package replica

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/hashicorp/raft"
)

// A replica snapshot, as FSMSnapshot.Persist writes it into raft's
// snapshot store and as raft streams it to a follower that fell behind:
//
//	[0:8]    magic "CIDREPL\x00"
//	[8]      version 1
//	[9:13]   n, the header's length: uint32, little endian, at most maxHeaderSize
//	[13:13+n] header: JSON {"applied": uint64, "meta": {node ID: {string: string}}}
//	then     the store's snapshot stream (package snapshot's format, as
//	         Store.Export writes it), to the end
//
// applied is the index of the last log entry the store applied when the
// cut was taken; meta is every node's published metadata.
const (
	snapshotMagic   = "CIDREPL\x00"
	snapshotVersion = 1
	maxHeaderSize   = 1 << 20
)

type snapshotHeader struct {
	Applied uint64                       `json:"applied"`
	Meta    map[string]map[string]string `json:"meta"`
}

func writeSnapshotHeader(w io.Writer, h snapshotHeader) error {
	j, err := json.Marshal(h)
	if err != nil {
		return err
	}
	if len(j) > maxHeaderSize {
		return fmt.Errorf("%w: header of %d bytes, at most %d", ErrBadSnapshot, len(j), maxHeaderSize)
	}
	b := make([]byte, 0, len(snapshotMagic)+5+len(j))
	b = append(b, snapshotMagic...)
	b = append(b, snapshotVersion)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(j)))
	_, err = w.Write(append(b, j...))
	return err
}

// readSnapshotHeader reads the header and leaves r at the store's stream.
func readSnapshotHeader(r io.Reader) (snapshotHeader, error) {
	var h snapshotHeader
	var fixed [len(snapshotMagic) + 5]byte
	if _, err := io.ReadFull(r, fixed[:]); err != nil {
		return h, fmt.Errorf("%w: offset 0: %w", ErrBadSnapshot, err)
	}
	switch {
	case string(fixed[:len(snapshotMagic)]) != snapshotMagic:
		return h, fmt.Errorf("%w: offset 0: not a replica snapshot", ErrBadSnapshot)
	case fixed[len(snapshotMagic)] != snapshotVersion:
		return h, fmt.Errorf("%w: offset %d: version %d (this build reads %d)",
			ErrBadSnapshot, len(snapshotMagic), fixed[len(snapshotMagic)], snapshotVersion)
	}
	n := binary.LittleEndian.Uint32(fixed[len(snapshotMagic)+1:])
	if n > maxHeaderSize {
		return h, fmt.Errorf("%w: offset %d: header of %d bytes, at most %d", ErrBadSnapshot, len(snapshotMagic)+1, n, maxHeaderSize)
	}
	j := make([]byte, n)
	if _, err := io.ReadFull(r, j); err != nil {
		return h, fmt.Errorf("%w: offset %d: %w", ErrBadSnapshot, len(fixed), err)
	}
	if err := json.Unmarshal(j, &h); err != nil {
		return h, fmt.Errorf("%w: offset %d: %w", ErrBadSnapshot, len(fixed), err)
	}
	return h, nil
}

// Snapshot snapshots the store now into raft's snapshot store and
// compacts the log behind it (keeping TrailingLogs entries), as raft does
// on its own every SnapshotThreshold entries. Any node can. It is a no-op
// when nothing was applied since the last snapshot.
func (n *Node) Snapshot() error {
	if err := n.enter(); err != nil {
		return err
	}
	defer n.leave()
	err := n.raft.Snapshot().Error()
	if errors.Is(err, raft.ErrNothingNewToSnapshot) {
		return nil
	}
	return n.raftErr(err)
}
