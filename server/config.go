package server

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"time"
	"unicode"

	"github.com/cidstore/cidstore/store"
)

// The live configuration as JSON (GET and PUT /config): one member per
// field of store.Config, named in snake_case (CheckpointWALBytes is
// "checkpoint_wal_bytes"). Durations are Go duration strings ("10m0s",
// "100ms"; 0 also reads as zero), the sync policy is its name ("always",
// "interval", "never"), numbers are numbers. A PUT body names only the
// fields it changes; an unknown field or a value of the wrong type is an
// error, and the result must pass the store's validation, or nothing
// changes.

var durationType = reflect.TypeOf(time.Duration(0))

// jsonName returns the snake_case name of a Go field name, treating a run
// of capitals as one word: CheckpointWALBytes -> checkpoint_wal_bytes.
func jsonName(field string) string {
	r := []rune(field)
	var b strings.Builder
	for i, c := range r {
		if unicode.IsUpper(c) && i > 0 {
			prevLower := unicode.IsLower(r[i-1]) || unicode.IsDigit(r[i-1])
			nextLower := i+1 < len(r) && unicode.IsLower(r[i+1])
			if prevLower || (unicode.IsUpper(r[i-1]) && nextLower) {
				b.WriteByte('_')
			}
		}
		b.WriteRune(unicode.ToLower(c))
	}
	return b.String()
}

// configJSON renders c as a JSON object.
func configJSON(c store.Config) map[string]any {
	v := reflect.ValueOf(c)
	out := make(map[string]any, v.NumField())
	for i := range v.NumField() {
		f := v.Type().Field(i)
		if !f.IsExported() {
			continue
		}
		fv := v.Field(i)
		switch {
		case f.Type == durationType:
			out[jsonName(f.Name)] = time.Duration(fv.Int()).String()
		case f.Type.Implements(stringerType) && fv.Kind() != reflect.String:
			out[jsonName(f.Name)] = fv.Interface().(fmt.Stringer).String()
		default:
			out[jsonName(f.Name)] = fv.Interface()
		}
	}
	return out
}

var stringerType = reflect.TypeOf((*fmt.Stringer)(nil)).Elem()

// patchConfig applies a JSON object of changed fields to c.
func patchConfig(c *store.Config, patch map[string]json.RawMessage) error {
	v := reflect.ValueOf(c).Elem()
	fields := map[string]int{}
	for i := range v.NumField() {
		if f := v.Type().Field(i); f.IsExported() {
			fields[jsonName(f.Name)] = i
		}
	}
	for name, raw := range patch {
		i, ok := fields[name]
		if !ok {
			return fmt.Errorf("unknown field %q", name)
		}
		if err := setField(v.Field(i), raw); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
	}
	return nil
}

func setField(fv reflect.Value, raw json.RawMessage) error {
	t := fv.Type()
	switch {
	case t == durationType:
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			var n float64
			if json.Unmarshal(raw, &n) == nil && n == 0 {
				fv.SetInt(0)
				return nil
			}
			return fmt.Errorf("want a duration such as \"10m\" or \"100ms\"")
		}
		d, err := time.ParseDuration(s)
		if err != nil {
			return err
		}
		fv.SetInt(int64(d))
		return nil
	case t.Implements(stringerType) && (fv.CanInt() || fv.CanUint()):
		// An enumeration with names (the sync policy): a name or a number.
		var s string
		if err := json.Unmarshal(raw, &s); err == nil {
			probe := reflect.New(t).Elem()
			for n := range 256 {
				if probe.CanInt() {
					probe.SetInt(int64(n))
				} else {
					probe.SetUint(uint64(n))
				}
				if probe.Interface().(fmt.Stringer).String() == s {
					fv.Set(probe)
					return nil
				}
			}
			return fmt.Errorf("unknown value %q", s)
		}
	}
	p := reflect.New(t)
	if err := json.Unmarshal(raw, p.Interface()); err != nil {
		return fmt.Errorf("want a JSON %s", t.Kind())
	}
	fv.Set(p.Elem())
	return nil
}
