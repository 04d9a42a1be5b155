package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestCLI(t *testing.T) {
	tests := []struct {
		args []string
		code int
		out  string
	}{
		{[]string{"version"}, 0, "cidstore "},
		{[]string{"help"}, 0, "commands:"},
		{nil, 2, "usage:"},
		{[]string{"nope"}, 2, ""},
		{[]string{"version", "x"}, 2, ""},
		{[]string{"bench", "-shards", "0"}, 2, ""},
		{[]string{"bench", "-bogus"}, 2, ""},
		{[]string{"bench", "-shards", "1,2", "-duration", "20ms", "-keys", "1000"}, 0, "vs first"},
	}
	for _, tt := range tests {
		var out, errOut bytes.Buffer
		code := run(context.Background(), tt.args, &out, &errOut)
		if code != tt.code || !strings.Contains(out.String(), tt.out) {
			t.Errorf("cidstore %v: exit %d, want %d; stdout %q stderr %q", tt.args, code, tt.code, out.String(), errOut.String())
		}
	}
}
