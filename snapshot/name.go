package snapshot

import (
	"fmt"
	"strconv"
	"strings"
)

// Ext is the file name extension of snapshot files.
const Ext = ".snap"

// Name returns the file name of the snapshot whose cut is lsn: the LSN as
// 20 decimal digits followed by ".snap", so that names sort by LSN.
func Name(lsn uint64) string { return fmt.Sprintf("%020d%s", lsn, Ext) }

// ParseName reports the LSN encoded in a snapshot file name produced by
// Name. It returns ok == false for any other name, including temporary
// files ("….snap.tmp").
func ParseName(name string) (lsn uint64, ok bool) {
	digits, found := strings.CutSuffix(name, Ext)
	if !found || len(digits) != 20 {
		return 0, false
	}
	for i := 0; i < len(digits); i++ {
		if digits[i] < '0' || digits[i] > '9' {
			return 0, false
		}
	}
	lsn, err := strconv.ParseUint(digits, 10, 64)
	if err != nil {
		return 0, false
	}
	return lsn, true
}
