// Command cidstore is the CIDStore command-line tool.
//
//	cidstore version              print the version
//	cidstore bench [flags]        run the benchmark over shard counts
//	cidstore inspect [-metrics] DIR
//	cidstore verify DIR
//	cidstore repair [-v] DIR
//	cidstore dump DIR FILE
//	cidstore load FILE DIR
//	cidstore serve [flags] DIR   serve over ZeroMQ/msgpack, RESP and HTTP
//
// Run "cidstore help" for the full list.
//
// inspect, verify and dump only read: they open the store read-only and
// fail on a path that is not a store directory. repair moves what it drops
// aside (*.corrupt) and deletes nothing a store could still need; see
// store.Repair and the README section "Recovering a damaged store".
package main
