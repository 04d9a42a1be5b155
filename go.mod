module github.com/cidstore/cidstore

go 1.26

require (
	github.com/google/btree v1.1.3
	github.com/puzpuzpuz/xsync/v3 v3.5.1
	go.uber.org/goleak v1.3.0
)

require github.com/klauspost/compress v1.20.4 // indirect
