// Package cluster serves a replicated store: it puts a replica.Node behind
// the server's Backend interface and adds the cluster's endpoints to the
// server's HTTP control plane. It imports server and replica, which know
// nothing of each other; cmd/cidstore wires them together for
// `cidstore serve -raft-id ...` and `cidstore cluster ...`.
//
// # Writes and reads
//
// Backend sends every mutation through Node.Apply: the leader logs it,
// replicates it, and answers once a majority has it on disk and its own
// store applied it. A replica that is not the leader answers with a
// server.Error of CodeRedirect naming the leader's addresses (what the
// leader published as its replica metadata: one per endpoint), which
// every protocol renders in its own form; requests are not forwarded, so
// a client talks to the leader directly after one redirect. With no leader
// known (an election, about one second after a leader's loss with the
// default timeouts) the answer is 503 and the client retries.
//
// Reads go to the local store once Backend.BeforeRead allows them: with
// replica.Linearizable (the default) only the leader serves them, after
// confirming its leadership with a majority, and followers redirect; with
// replica.Local every node serves them from its own store at once, which
// may lag the leader.
//
// # HTTP endpoints
//
//	GET    /cluster              the cluster as this node sees it: leader,
//	                             term, commit index, and every member with
//	                             its applied index (asked of each member's
//	                             GET /cluster/node)
//	GET    /cluster/node         this node's own status
//	POST   /cluster/voters       add a voter: {"id", "raft_addr", "meta"};
//	                             bearer token; leader only (307 elsewhere)
//	DELETE /cluster/voters/{id}  remove a member; bearer token; leader only
//
// A follower answers the membership requests with 307 and "leader": the
// leader's HTTP address; Client follows it. Change membership one node at
// a time (see package replica).
package cluster
