package main

import (
	"bytes"
	"context"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"testing"

	"go.uber.org/goleak"
)

// cliEnv, set in the environment to a file name, makes the test binary
// run cidstore with its arguments instead of the tests, and write its peak
// RSS (VmHWM, KiB) to that file, so that tests can run the commands as
// processes of their own and measure them (see runTool).
const cliEnv = "CIDSTORE_TEST_RUN_CLI"

func TestMain(m *testing.M) {
	if rssFile := os.Getenv(cliEnv); rssFile != "" {
		code := run(context.Background(), os.Args[1:], os.Stdout, os.Stderr)
		// VmHWM is the peak of this process since its exec; the rusage
		// a parent gets also counts the parent's memory it shared until
		// then.
		status, err := os.ReadFile("/proc/self/status")
		if err == nil {
			for _, line := range strings.Split(string(status), "\n") {
				if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
					err = os.WriteFile(rssFile, []byte(strings.TrimSpace(strings.TrimSuffix(v, "kB"))), 0o600)
				}
			}
		}
		if err != nil {
			code = 3
		}
		os.Exit(code)
	}
	if os.Getenv(serveChildEnv) != "" {
		// A child process of a test: run the command given as arguments,
		// as main does (which keeps catching signals until it exits).
		ctx, _ := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
	}
	goleak.VerifyTestMain(m)
}

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
