package replica

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/cidstore/cidstore/cid"
	"github.com/cidstore/cidstore/store"
)

var genCorpus = flag.Bool("gencorpus", false, "rewrite the checked-in seed corpora of the fuzz targets")

// seedCommands are valid encodings of every command kind and op code.
func seedCommands() [][]byte {
	enc := func(c Command) []byte {
		b, err := c.MarshalBinary()
		if err != nil {
			panic(err)
		}
		return b
	}
	return [][]byte{
		enc(Insert(key(1), val(2))),
		enc(Delete(key(1), val(2))),
		enc(DeleteKey(key(3))),
		enc(InsertBatch([]store.Pair{{Key: key(1), Value: val(1)}, {Key: key(2), Value: val(2)}, {Key: key(1), Value: val(3)}})),
		enc(ApplyBatch(mixedOps(key(1), key(2), val(1)))),
		enc(ApplyTriples([]store.TripleOp{{Triple: store.Triple{S: key(1), P: key(2), O: key(3)}}, {Delete: true, Triple: store.Triple{S: key(4), P: key(5), O: key(6)}}})),
		enc(InsertTriples([]store.Triple{{S: key(1), P: key(2), O: key(3)}})),
		enc(DeleteTriples([]store.Triple{{S: key(1), P: key(2), O: key(3)}, {S: key(7), P: key(2), O: key(3)}})),
		enc(metaCommand("n1", map[string]string{"resp": "127.0.0.1:6379"})),
		enc(metaCommand("n2", nil)),
	}
}

// mixedOps is a mixed pair batch: insert, delete the key, delete the
// value.
func mixedOps(k1, k2, v cid.CID) []store.PairOp {
	return []store.PairOp{{Kind: store.OpInsert, Key: k1, Value: v}, {Kind: store.OpDeleteKey, Key: k2}, {Kind: store.OpDelete, Key: k1, Value: v}}
}

// FuzzDecodeCommand feeds DecodeCommand arbitrary bytes: it must never
// panic, must fail with ErrBadCommand or ErrUnsupported, and whatever it
// accepts must encode again to bytes that decode to the same command.
func FuzzDecodeCommand(f *testing.F) {
	for _, s := range seedCommands() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := DecodeCommand(b)
		if err != nil {
			if !errors.Is(err, ErrBadCommand) && !errors.Is(err, ErrUnsupported) {
				t.Fatalf("error %v is neither ErrBadCommand nor ErrUnsupported", err)
			}
			return
		}
		if err := c.validate(); err != nil {
			t.Fatalf("decoded an invalid command: %v", err)
		}
		again, err := c.MarshalBinary()
		if err != nil {
			t.Fatalf("decoded command does not encode: %v", err)
		}
		c2, err := DecodeCommand(again)
		if err != nil {
			t.Fatalf("re-encoded command does not decode: %v", err)
		}
		if !reflect.DeepEqual(c, c2) {
			t.Fatalf("round trip changed the command:\n%+v\n%+v", c, c2)
		}
	})
}

// FuzzRestore feeds the state machine's Restore arbitrary snapshot
// streams: it must never panic, and when it fails the store must be as it
// was.
func FuzzRestore(f *testing.F) {
	for _, s := range seedSnapshots(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		fm := newFSM(t)
		must(t, fm.st.Insert(key(1), val(1)))
		must(t, fm.st.InsertTriple(store.Triple{S: key(1), P: val(1), O: key(2)}))
		before := contents(fm.st)
		if err := fm.Restore(nopRC{bytes.NewReader(b)}); err != nil {
			if !contents(fm.st).equal(before) {
				t.Fatalf("a failed restore (%v) changed the store", err)
			}
		}
	})
}

// seedSnapshots are replica snapshots of a few states, whole and cut.
func seedSnapshots(tb testing.TB) [][]byte {
	var out [][]byte
	for _, n := range []int{0, 3, 40} {
		st, err := store.Open("", store.Options{InMemory: true, Shards: 2})
		if err != nil {
			tb.Fatal(err)
		}
		for i := range n {
			if err := st.Insert(key(uint64(1+i%7)), val(uint64(1+i))); err != nil {
				tb.Fatal(err)
			}
			if _, err := st.InsertTriples([]store.Triple{{S: key(uint64(1 + i%5)), P: val(1), O: val(uint64(1 + i))}}); err != nil {
				tb.Fatal(err)
			}
		}
		v, err := st.View()
		if err != nil {
			tb.Fatal(err)
		}
		s := &fsmSnapshot{ctx: tb.Context(), view: v, hdr: snapshotHeader{Applied: uint64(n),
			Meta: map[string]map[string]string{"n1": {"resp": "x"}}}}
		sink := &memSink{}
		if err := s.Persist(sink); err != nil {
			tb.Fatal(err)
		}
		st.Close()
		out = append(out, sink.Bytes())
	}
	return append(out, out[1][:len(out[1])/2])
}

// TestGenerateReplicaCorpus rewrites the checked-in seed corpora of
// FuzzDecodeCommand and FuzzRestore (run with -gencorpus).
func TestGenerateReplicaCorpus(t *testing.T) {
	if !*genCorpus {
		t.Skip("run with -gencorpus to rewrite the seed corpora")
	}
	write := func(target string, seeds [][]byte) {
		dir := filepath.Join("testdata", "fuzz", target)
		must(t, os.MkdirAll(dir, 0o755))
		for i, s := range seeds {
			name := filepath.Join(dir, fmt.Sprintf("seed-%d", i+1))
			must(t, os.WriteFile(name, fmt.Appendf(nil, "go test fuzz v1\n[]byte(%q)\n", s), 0o644))
		}
	}
	write("FuzzDecodeCommand", seedCommands())
	write("FuzzRestore", seedSnapshots(t))
}

func TestDecodeCommandRejects(t *testing.T) {
	good := seedCommands()[3]
	zero, _ := Insert(key(1), val(1)).MarshalBinary()
	copy(zero[len(zero)-cid.Size:], make([]byte, cid.Size))
	cases := []struct {
		name string
		b    []byte
		want error
	}{
		{"empty", nil, ErrBadCommand},
		{"newer version", append([]byte{2}, good[1:]...), ErrUnsupported},
		{"unknown kind", []byte{1, 9, 1}, ErrUnsupported},
		{"no ops", []byte{1, kindPairs, 0}, ErrBadCommand},
		{"count beyond the bytes", []byte{1, kindPairs, 0x80, 0x80, 0x04, codeInsert}, ErrBadCommand},
		{"truncated", good[:len(good)-1], ErrBadCommand},
		{"trailing byte", append(bytes.Clone(good), 0), ErrBadCommand},
		{"unknown code", append([]byte{1, kindPairs, 1, 9}, make([]byte, 64)...), ErrBadCommand},
		{"zero CID", zero, ErrBadCommand},
		{"meta without ID", []byte(`` + "\x01\x03" + `{"meta":{}}`), ErrBadCommand},
		{"meta not JSON", []byte("\x01\x03{"), ErrBadCommand},
	}
	for _, tc := range cases {
		if _, err := DecodeCommand(tc.b); !errors.Is(err, tc.want) {
			t.Errorf("%s: DecodeCommand = %v, want %v", tc.name, err, tc.want)
		}
	}
	for _, s := range seedCommands() {
		if _, err := DecodeCommand(s); err != nil {
			t.Errorf("seed %x: %v", s, err)
		}
	}
}
