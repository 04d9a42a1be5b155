// Command cidstore is the CIDStore command-line tool.
//
//	cidstore version              print the version
//	cidstore bench [flags]        run the benchmark over shard counts
//	cidstore inspect [-metrics] DIR
//	cidstore verify DIR
//	cidstore repair [-v] DIR
//	cidstore dump DIR FILE
//	cidstore load FILE DIR
//
// Run "cidstore help" for the full list.
package main
