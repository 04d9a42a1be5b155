// Package replica replicates a store over raft (github.com/hashicorp/raft),
// so that a cluster of three nodes survives the loss of any one: writes go
// through the leader's log, every node applies the log to its own store,
// reads come from the leader (linearizable) or from any node (local,
// possibly stale).
//
// It imports store and cid and nothing above them; a server wires a Node
// in place of a store (see "Serving" below).
//
// # The log and the state machine
//
// A raft log entry carries one Command (format in command.go): an atomic
// batch of pair operations (inserts, deletes and key deletes in any mix;
// a single insert is a batch of one), an atomic batch of triple inserts
// and deletes, or a node's published metadata. Each node's state machine
// applies committed entries in log order to its store. The pair commands
// that raft hands over together are gathered into one Store.ApplyBatch
// (Store.InsertBatch when they only insert): the store applies a batch in
// order, so this is the same as applying them one after the other, with
// the shard locks taken once. A triple command is one Store.ApplyTriples,
// and its count of changed triples is what the leader's Apply returns. An
// error every replica meets alike (a
// command the store refuses as invalid; commands are validated before they
// are logged, so this does not happen) is the command's answer; any other
// store error (a persistent store that turned read-only, a store closed
// under the node) means this replica no longer follows the log: it stops
// applying, shuts its raft down and answers ErrStopped, leaving the work to
// the others.
//
// Every operation is an idempotent assignment: add a value, remove a
// value, remove a key (and likewise for triples). Whether a value is in a
// key's set after applying a sequence of them depends only on the last one
// that touched it, or on the state before when none did. So applying
// entries s+1..n to a store that already applied 1..a (s <= a <= n) gives
// exactly the state of applying 1..n once. Recovery relies on this
// (TestReapplyConverges checks it on random logs).
//
// # Snapshots
//
// raft snapshots the state machine when SnapshotThreshold entries were
// logged since the last snapshot, and then drops all but TrailingLogs
// entries of its log. Snapshot is called between two applies and takes the
// store's O(1) cut (Store.View), so the snapshot holds exactly the state at
// raft's snapshot index while applies go on; Persist then streams a small
// header (snapshot.go: the applied index and every node's metadata) and
// the store's own snapshot format (package snapshot, as Store.Export
// writes it) into raft's snapshot store. A follower too far behind for the
// trailing log receives the leader's newest snapshot, and Restore loads it
// with Store.Restore, which replaces the store's contents whatever they
// were: atomically for ordered iteration, and crash-safely for a
// persistent store. TestSnapshotInstall has a follower miss 100k commands.
//
// # Durability: which fsyncs, and how they combine
//
// raft's log and its stable store (current term, vote) live in one bbolt
// database per node, raft.db, through raft-boltdb/v2, behind raft's
// in-memory cache of the last 512 entries; snapshots are files in
// snapshots/ (raft's file snapshot store). The project's WAL was the other
// candidate. raft needs of its log store what the WAL does not offer:
// reading any entry by index (to replicate it to a lagging follower),
// deleting a suffix (a follower drops entries the new leader does not
// have) as well as a prefix, and a small durable key-value store for the
// term and the vote. An adapter would need an in-memory index of entries
// to segment offsets, truncation records replayed at open, and a stable
// store of its own: new code on the path every acknowledged write takes,
// where bbolt and raft-boltdb are what Consul and Nomad run. The price is
// bbolt's commit: two fdatasyncs (data pages, then the meta page) where
// the WAL needs one; BENCHMARKS.md shows it does not bound throughput
// with batches, which the CPU bounds when three replicas share two cores,
// but is most of a single write's cost, which a log store over the WAL
// would lower.
//
// A write is acknowledged when it is committed and applied on the leader:
//
//  1. the leader appends the entry to its log in one bbolt transaction
//     (fsynced; concurrent writes are grouped, up to MaxAppendEntries
//     entries a transaction);
//  2. followers append it to theirs, fsynced, and answer; once a majority
//     (the leader counts) has it on disk it is committed;
//  3. the leader applies it to its store, in memory, and answers.
//
// hashicorp/raft takes steps 1 and 2 one after the other (the leader's
// log write completes before its replicators are told of the entry), so
// one write alone waits for two fsyncs and a round trip; under load the
// groups of entries overlap, each step working on a different group.
//
// Nothing is fsynced twice: each node fsyncs each entry once, in raft.db.
// The store is in memory (recommended): its state is not written at all,
// raft's log and snapshots are the durable record. Snapshot files are
// fsynced once when written (file, metadata, directory).
//
// Recovery after a crash, on every node: Open restores the newest snapshot
// from snapshots/ into the store (Store.Restore), which sets the applied
// index to the snapshot's; the entries after it are then applied from
// raft.db as soon as the node learns that they are committed (from the
// leader's next message, or, for a node that wins the election, once the
// no-op entry of its new term commits). A node has lost nothing it
// acknowledged to its peers, since that was fsynced; the cluster has lost
// nothing acknowledged to a client, since that was on a majority of disks.
// TestKill checks this by SIGKILLing a one- and a three-node cluster under
// load, again and again in the same directories.
//
// A persistent store (Config.Store opened on a directory) also works, with
// SyncNever since it need not be durable: it recovers its own snapshot and
// WAL at Open, and then raft restores its snapshot on top (replacing the
// contents) and replays its log, which converges as shown above. Its WAL
// and checkpoints are then work that buys nothing: raft's log and snapshots
// already are the record. A node that has no raft state yet (it never
// bootstrapped or joined) must start with an empty store (ErrStoreNotEmpty):
// the log would be applied on top of pairs the others do not have.
//
// # Reads
//
// Read(ctx, Local) returns the store at once, on any node: it reflects a
// prefix of the committed log that only grows on that node, possibly
// behind the leader. Read(ctx, Linearizable), on the leader only, first
// makes sure the leader's store has applied every entry committed by
// earlier leaders (one raft Barrier per leadership term, issued as soon as
// the node becomes leader) and then confirms with a majority that it is
// still the leader (VerifyLeader: one round of heartbeats, no disk write).
// Since a leader acknowledges a write only after applying it, the store
// then holds every write acknowledged before the read began. The argument
// is spelt out at Read. TestLinearizable checks, with porcupine, a
// recorded history of concurrent inserts, deletes and Contains reads of a
// few pairs across 20 leader kills (scripts/linearizable runs more).
//
// # Writes
//
// Apply and the store-shaped methods (Insert, Delete, DeleteKey,
// InsertBatch, ApplyBatch, InsertTriples, DeleteTriples, ApplyTriples)
// work on the leader; elsewhere they return a
// *NotLeaderError naming the leader and its metadata. The errors say
// whether a write can have taken effect (ErrNotLeader, ErrTimeout: no;
// ErrUnknownOutcome: maybe), see Apply.
//
// Small pair commands (up to 64 operations) that reach the leader together
// share log entries (gather.go): up to four entries are in raft at once,
// and commands arriving meanwhile wait for the next one, which carries
// all of them (at most 4096 operations) as one pair command. Each command
// stays atomic and in order inside it, and each gets the entry's outcome.
// A log entry costs every node the same whatever its size, so this cuts
// the cost of many clients' single inserts several times.
//
// # Membership
//
// Bootstrap makes a node the first voter of a new cluster (a no-op on a
// node with state). The leader adds voters (AddVoter) and removes members
// (RemoveServer). Each node publishes Config.Meta, typically its client
// addresses, through the log when it becomes leader, and the leader
// publishes a joining node's metadata before adding it; Leader, Servers
// and NotLeaderError carry it, so a follower can redirect a client to the
// leader's address for the client's protocol. A removed node keeps
// running, alone, until it is closed.
//
// Change membership one server at a time, and let each change reach every
// member (Status.Servers on each) before the next change or before taking
// a node down: hashicorp/raft adds a voter in one step, and a follower
// that has not yet seen a voter's addition refuses it its vote, so losing
// the leader in that window can leave no majority able to elect anyone
// until the old leader returns.
//
// # Timeouts
//
// Followers start an election after HeartbeatTimeout (default 500 ms, raft
// picks a random time between one and two timeouts) without hearing from
// the leader; a leader that does not hear from a majority for
// LeaderLeaseTimeout (500 ms) steps down. With these defaults, the time
// from a leader's death to the first write acknowledged by its successor
// is about one second (BenchmarkFailover: mean and worst in
// BENCHMARKS.md), against about two with raft's defaults.
//
// # Serving
//
// A server holds a *Node where it held a *store.Store: writes call the
// store-shaped methods (or Apply); reads call Read with the read mode the
// server was started with and then read the returned store; a
// *NotLeaderError becomes a redirect to Leader.Meta's address, or the
// request is forwarded there; Status and Servers feed a cluster status
// endpoint; AddVoter and RemoveServer back authenticated membership
// commands.
//
// # Goroutines
//
// Close waits for calls in flight (raft answers each within its timeouts),
// shuts raft down and closes what the node opened; every goroutine the node
// started has ended when it returns. raft does not answer futures still
// queued when it shuts down, so shutdown waits for the calls first.
package replica
