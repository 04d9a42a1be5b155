package server

import (
	"bytes"
	"errors"
	"slices"
	"testing"

	"github.com/cidstore/cidstore/cid"
)

// Inline words split, quote and unescape as Redis's sdssplitargs does.
func TestSplitInline(t *testing.T) {
	for _, tc := range []struct {
		line string
		want []string // nil: a protocol error
	}{
		{"", []string{}},
		{"  \t ", []string{}},
		{"PING", []string{"PING"}},
		{" SADD  a\tb\vc\fd ", []string{"SADD", "a", "b", "c", "d"}},
		{`ECHO "a b"`, []string{"ECHO", "a b"}},
		{`ECHO ""`, []string{"ECHO", ""}},
		{`ECHO ''`, []string{"ECHO", ""}},
		{`ECHO "\x41\x4a\x4B\n\r\t\b\a\"\\\q"`, []string{"ECHO", "AJK\n\r\t\b\a\"\\q"}},
		{`ECHO "\x4" "\xZZ"`, []string{"ECHO", "x4", "xZZ"}},
		{`ECHO 'it\'s \n "x"'`, []string{"ECHO", `it's \n "x"`}},
		{`ECHO a"b c"`, []string{"ECHO", "ab c"}},
		{`ECHO a'b c'`, []string{"ECHO", "ab c"}},
		{`ECHO a\"b"`, []string{"ECHO", `a\b`}}, // no escapes outside quotes
		{`ECHO "a"b`, nil},
		{`ECHO 'a'b`, nil},
		{`ECHO "a`, nil},
		{`ECHO 'a`, nil},
		{`ECHO "a\`, nil},
		{`ECHO "a\"`, nil},
	} {
		line := []byte(tc.line)
		argv, tooMany, err := splitInline(line, nil, 16)
		if tc.want == nil {
			if !errors.Is(err, errProtocol) {
				t.Errorf("%q: err %v, want a protocol error", tc.line, err)
			}
			continue
		}
		got := []string{}
		for _, a := range argv {
			got = append(got, string(a))
		}
		if err != nil || tooMany || !slices.Equal(got, tc.want) {
			t.Errorf("%q: %q, %v, %v; want %q", tc.line, got, tooMany, err, tc.want)
		}
	}
	// Words past the limit are refused, and argv is left as it was.
	prev := [][]byte{[]byte("x")}
	argv, tooMany, err := splitInline([]byte("a b c"), prev, 2)
	if err != nil || !tooMany || len(argv) != 1 {
		t.Fatalf("over the word limit: %q, %v, %v", argv, tooMany, err)
	}
}

// A raw 32-byte key or member is read without allocating; a 32-byte
// "E(...)" is read as text.
func TestArgCIDRaw(t *testing.T) {
	raw := bytes.Repeat([]byte{0xab}, cid.Size)
	if n := testing.AllocsPerRun(100, func() {
		if _, err := argCID(raw); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Errorf("argCID of raw bytes: %v allocations", n)
	}
	if v, err := argCID(raw); err != nil || v != cid.CID(raw) {
		t.Errorf("argCID(raw) = %v, %v", v, err)
	}
	text := []byte("E(1,2,3,00000000000000000000004)")
	if len(text) != cid.Size {
		t.Fatalf("test text is %d bytes", len(text))
	}
	if v, err := argCID(text); err != nil || v != cid.FromWords(1, 2, 3, 4) {
		t.Errorf("argCID(%q) = %v, %v", text, v, err)
	}
}
