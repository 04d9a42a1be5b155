package store

import (
	"errors"

	"github.com/cidstore/cidstore/cid"
)

var (
	// ErrClosed is returned by every write and by Close after the store
	// has been closed.
	ErrClosed = errors.New("cidstore: store is closed")
	// ErrInvalidOptions is returned (wrapped) by Open for bad Options.
	ErrInvalidOptions = errors.New("cidstore: invalid options")
	// ErrInvalidCID is returned (wrapped) when a write uses the reserved
	// all-zero CID as key or value. It is the same value as
	// cid.ErrInvalidCID.
	ErrInvalidCID = cid.ErrInvalidCID
)
