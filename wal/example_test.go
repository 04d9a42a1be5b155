package wal_test

import (
	"fmt"
	"io"
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

// Recover reads the records as the one pass over the log validates them,
// then opens the log for appending.
func ExampleRecover() {
	dir, _ := os.MkdirTemp("", "wal-example")
	defer os.RemoveAll(dir)
	l, _ := wal.Open(wal.Options{Dir: dir})
	for _, s := range []string{"a", "b"} {
		lsn, _ := l.Append(1, []byte(s))
		l.WaitDurable(lsn)
	}
	l.Close()

	r, err := wal.Recover(wal.Options{Dir: dir})
	if err != nil {
		panic(err)
	}
	defer r.Close() // releases the lock if Finish is never reached
	for {
		rec, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			panic(err) // damage: a *wal.CorruptError
		}
		fmt.Println(rec.LSN, string(rec.Payload))
	}
	l, err = r.Finish()
	if err != nil {
		panic(err)
	}
	defer l.Close()
	lsn, _ := l.Append(1, []byte("c"))
	fmt.Println("next", lsn)
	// Output:
	// 1 a
	// 2 b
	// next 3
}
