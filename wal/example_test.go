package wal_test

import (
	"fmt"
	"os"

	"github.com/cidstore/cidstore/wal"
)

func Example() {
	dir, _ := os.MkdirTemp("", "wal-example")
	defer os.RemoveAll(dir)

	l, err := wal.Open(wal.Options{Dir: dir, Sync: wal.SyncAlways})
	if err != nil {
		panic(err)
	}
	lsn, _ := l.Append(1, []byte("hello"))     // never waits for the disk
	if err := l.WaitDurable(lsn); err != nil { // group-committed fsync
		panic(err)
	}
	l.Close()

	l, _ = wal.Open(wal.Options{Dir: dir})
	defer l.Close()
	l.Replay(1, func(lsn uint64, typ uint8, payload []byte) error {
		fmt.Println(lsn, typ, string(payload))
		return nil
	})
	// Output: 1 1 hello
}
