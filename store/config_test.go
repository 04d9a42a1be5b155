package store

import (
	"errors"
	"math"
	"reflect"
	"testing"
	"time"
)

func TestDefaultConfigIsValid(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		mod  func(*Config)
		ok   bool
	}{
		{"default", func(*Config) {}, true},
		{"size trigger off", func(c *Config) { c.CheckpointWALBytes = 0 }, true},
		{"size trigger tiny", func(c *Config) { c.CheckpointWALBytes = 1000 }, false},
		{"negative interval", func(c *Config) { c.CheckpointInterval = -1 }, false},
		{"interval off", func(c *Config) { c.CheckpointInterval = 0 }, true},
		{"interval too short", func(c *Config) { c.CheckpointInterval = time.Millisecond }, false},
		{"no snapshots", func(c *Config) { c.SnapshotsKept = 0 }, false},
		{"many snapshots", func(c *Config) { c.SnapshotsKept = 101 }, false},
		{"bad sync", func(c *Config) { c.Sync = 9 }, false},
		{"negative sync", func(c *Config) { c.Sync = -1 }, false},
		{"sync interval zero", func(c *Config) { c.SyncInterval = 0 }, false},
		{"inline zero", func(c *Config) { c.InlineValues = 0 }, false},
		{"inline max", func(c *Config) { c.InlineValues = 4096 }, true},
		{"inline too big", func(c *Config) { c.InlineValues = 4097 }, false},
		{"compact off", func(c *Config) { c.CompactInterval = 0 }, true},
		{"compact too fast", func(c *Config) { c.CompactInterval = time.Millisecond }, false},
		{"scrub negative", func(c *Config) { c.ScrubInterval = -time.Second }, false},
		{"parallelism zero", func(c *Config) { c.Parallelism = 0 }, false},
		{"duty zero", func(c *Config) { c.WorkerDuty = 0 }, false},
		{"duty above one", func(c *Config) { c.WorkerDuty = 1.5 }, false},
		{"duty NaN", func(c *Config) { c.WorkerDuty = math.NaN() }, false},
		{"duty off", func(c *Config) { c.WorkerDuty = 1 }, true},
	}
	for _, tt := range tests {
		c := DefaultConfig()
		tt.mod(&c)
		err := c.Validate()
		if (err == nil) != tt.ok || (err != nil && !errors.Is(err, ErrInvalidOptions)) {
			t.Errorf("%s: Validate = %v", tt.name, err)
		}
	}
}

// No setting can be given in two places: Options holds only what is fixed
// at Open, Config what may change, and no field name appears in both (so
// no precedence rule is needed between them).
func TestNoSettingInTwoPlaces(t *testing.T) {
	ot, ct := reflect.TypeFor[Options](), reflect.TypeFor[Config]()
	for i := range ot.NumField() {
		name := ot.Field(i).Name
		if _, dup := ct.FieldByName(name); dup {
			t.Errorf("%s is both an Options and a Config field", name)
		}
	}
}

// The store runs exactly the sync policy the caller asked for, including
// SyncAlways, the zero SyncMode, asked for on top of a configuration that
// said SyncNever (once, Options.Sync = SyncAlways was mistaken for "not
// set" and the Config's SyncNever ran instead). The policy is checked by
// its effect on the log: under SyncAlways every acknowledged write is
// fsynced; under SyncNever, and SyncInterval with an interval longer than
// the test, none is.
func TestOpenRunsTheRequestedSyncMode(t *testing.T) {
	never := DefaultConfig()
	never.Sync = SyncNever
	never.SyncInterval = time.Hour
	for _, mode := range []SyncMode{SyncAlways, SyncInterval, SyncNever} {
		t.Run(mode.String(), func(t *testing.T) {
			c := never
			c.Sync = mode
			s := openDir(t, t.TempDir(), Options{Config: &c, NoPreallocate: true})
			defer s.Close()
			if got := s.Config().Sync; got != mode {
				t.Fatalf("Config().Sync = %v, want %v", got, mode)
			}
			const writes = 5
			for i := range uint64(writes) {
				must(t, s.Insert(w(1), w(i+1)))
			}
			st := s.Stats().WAL
			if mode == SyncAlways {
				if st.Fsyncs < writes || st.DurableLSN != st.LastLSN {
					t.Fatalf("SyncAlways: %d fsyncs for %d writes, durable LSN %d of %d", st.Fsyncs, writes, st.DurableLSN, st.LastLSN)
				}
				return
			}
			if st.Fsyncs != 0 || st.DurableLSN == st.LastLSN {
				t.Fatalf("%v: %d fsyncs for %d writes, durable LSN %d of %d", mode, st.Fsyncs, writes, st.DurableLSN, st.LastLSN)
			}
		})
	}
}
