#!/usr/bin/env python3
"""Interoperability test of `cidstore serve` with real libzmq clients.

Runs with Debian's python3-zmq (pyzmq over libzmq) and python3-msgpack,
exactly as clients of the Python CIDStore service use them. scripts/interop
starts the server and runs this script; see there.

    interop.py ADDRS.json [--triples N] [--phase write|verify]
               [--max-message BYTES] [--bench]

ADDRS.json is the server's -ready-file: {"zmq": "tcp://...", "push": ...}.
--phase write (default) checks every command, alias, CID form and error
over REQ, DEALER, PUSH and SUB, inserting deterministic data; --phase
verify only checks that the data of an earlier write phase is there (after
a restart). --bench prints the batch insert rate of the Python client
workload (the CIDSem mock-up's: batches of 1000 E(h,l) triples).
"""

import json
import random
import sys
import threading
import time

import msgpack
import zmq

TIMEOUT_MS = 30000
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what, flush=True)


def pack(obj):
    return msgpack.packb(obj, use_bin_type=True)


def unpack(b):
    return msgpack.unpackb(b, raw=False)


class Req:
    """A REQ client, as the Python service's clients use one."""

    def __init__(self, ctx, addr):
        self.s = ctx.socket(zmq.REQ)
        self.s.setsockopt(zmq.LINGER, 0)
        self.s.connect(addr)

    def raw(self, data):
        self.s.send(data)
        if not self.s.poll(TIMEOUT_MS):
            raise TimeoutError("no reply within %d ms" % TIMEOUT_MS)
        return unpack(self.s.recv())

    def call(self, msg):
        return self.raw(pack(msg))

    def close(self):
        self.s.close()


def ok(reply, what):
    check(isinstance(reply, dict) and reply.get("status") == "ok" and reply.get("version") == "1.0",
          "%s: want status ok, got %r" % (what, reply))
    return reply


def err(reply, code, what):
    check(isinstance(reply, dict) and reply.get("error_code") == code and reply.get("version") == "1.0"
          and isinstance(reply.get("error_msg"), str),
          "%s: want error %d, got %r" % (what, code, reply))


def e4(words):
    return "E(%d,%d,%d,%d)" % tuple(words)


def words_of_e2(s):
    h, l = s[2:-1].split(",")
    return (0, 0, int(h), int(l))


def cidsem_triples(n, seed=42):
    """The CIDSem mock-up's generator: random 128-bit E(high,low) CIDs."""
    rng = random.Random(seed)

    def one():
        return "E(%d,%d)" % (rng.randint(0, 2**64 - 1), rng.randint(0, 2**64 - 1))

    return [(one(), one(), one()) for _ in range(n)]


def insert_batches(req, triples, batch=1000):
    inserted = 0
    for i in range(0, len(triples), batch):
        chunk = triples[i:i + batch]
        r = req.call({"command": "batch_insert", "triples": [{"s": s, "p": p, "o": o} for s, p, o in chunk]})
        if r.get("status") != "ok":
            check(False, "batch_insert at %d: %r" % (i, r))
            return inserted
        inserted += r["inserted"]
    return inserted


def verify_sample(req, triples, sample):
    rng = random.Random(7)
    idx = rng.sample(range(len(triples)), min(sample, len(triples)))
    found = 0
    for i in idx:
        s, p, o = triples[i]
        r = req.call({"command": "query", "s": s, "p": p, "o": o})
        want = [e4(words_of_e2(x)) for x in (s, p, o)]
        if r.get("status") == "ok" and r.get("count") == 1 and r.get("results") == [want]:
            found += 1
        else:
            check(False, "query of triple %d: %r" % (i, r))
    return found, len(idx)


PAIR_KEY = "E(11,22,33,44)"


def phase_write(ctx, a, n):
    req = Req(ctx, a["zmq"])

    # The Python client workload: batches of 1000, then sampled queries.
    triples = cidsem_triples(n)
    t0 = time.time()
    inserted = insert_batches(req, triples)
    dt = time.time() - t0
    check(inserted == n, "inserted %d of %d new triples" % (inserted, n))
    found, sampled = verify_sample(req, triples, 500)
    print("python client: %d triples in batches of 1000 in %.2fs (%.0f triples/s); %d/%d sampled found"
          % (n, dt, n / dt, found, sampled), flush=True)
    # Inserting again adds nothing.
    r = ok(req.call({"command": "batch_insert", "triples": [{"s": s, "p": p, "o": o} for s, p, o in triples[:10]]}), "re-insert")
    check(r.get("inserted") == 0, "re-insert counted %r" % r)

    # Every command and alias.
    ok(req.call({"command": "ping"}), "ping")
    ok(req.call({"op_code": "PING"}), "PING")
    r = ok(req.call({"command": "insert", "s": "E(1,2,3,4)", "p": "E(5,6,7,8)", "o": "E(9,10,11,12)"}), "insert triple")
    check(r.get("inserted") == 1, "insert triple: %r" % r)
    ok(req.call({"op_code": "INSERT", "s": [1, 2, 3, 4], "p": [5, 6, 7, 8], "o": [2**64 - 1, 0, 0, 1]}), "INSERT triple, word lists")
    ok(req.call({"command": "insert", "key": PAIR_KEY, "value": "E(0,1)"}), "insert pair")
    ok(req.call({"command": "INSERT", "key": [11, 22, 33, 44], "value": "%064x" % 2}), "insert pair, hex value")
    ok(req.call({"command": "insert", "key": PAIR_KEY, "value": bytes(31) + b"\x03"}), "insert pair, raw bytes")
    r = ok(req.call({"command": "lookup", "key": PAIR_KEY}), "lookup")
    check(r.get("results") == ["E(0,0,0,1)", "E(0,0,0,2)", "E(0,0,0,3)"] and r.get("count") == 3, "lookup: %r" % r)
    r = ok(req.call({"op_code": "LOOKUP", "key": "E(0,0,0,999)"}), "LOOKUP absent")
    check(r.get("results") == [], "LOOKUP absent: %r" % r)
    r = ok(req.call({"command": "query", "key": PAIR_KEY}), "query by key (Python's lookup)")
    check(r.get("count") == 3, "query by key: %r" % r)

    # The eight query patterns over two triples sharing s and p.
    s, p, o1, o2 = "E(1,2,3,4)", "E(5,6,7,8)", "E(9,10,11,12)", "E(18446744073709551615,0,0,1)"
    for pat, want in [({"s": s, "p": p, "o": o1}, 1), ({"s": s, "p": p}, 2), ({"s": s}, 2), ({"p": p, "o": o2}, 1),
                      ({"p": p}, 2), ({"o": o1}, 1), ({"s": s, "o": o2}, 1), ({"s": s, "p": None, "o": None}, 2)]:
        r = ok(req.call(dict(command="query", **pat)), "query %r" % pat)
        check(r.get("count") == want and len(r.get("results", [])) == want and r.get("truncated") is False,
              "query %r: want %d, got %r" % (pat, want, r))
    r = ok(req.call({"command": "query", "limit": 5}), "query all, limit 5")
    check(r.get("count") == 5 and r.get("truncated") is True, "query limit: %r" % r)

    r = ok(req.call({"command": "delete", "s": s, "p": p, "o": o2}), "delete triple")
    check(r.get("deleted") == 1, "delete triple: %r" % r)
    r = ok(req.call({"op_code": "BATCH_DELETE", "triples": [[s, p, o1], [s, p, o2]]}), "BATCH_DELETE triples")
    check(r.get("deleted") == 1, "BATCH_DELETE: %r" % r)
    ok(req.call({"command": "delete", "key": PAIR_KEY, "value": "E(0,0,0,3)"}), "delete pair")
    ok(req.call({"op_code": "BATCH_INSERT", "entries": [{"key": "E(7,7)", "value": "E(1,1)"}, ["E(7,7)", "E(2,2)"]]}), "BATCH_INSERT entries")
    ok(req.call({"command": "batch_delete", "entries": [{"key": "E(7,7)", "value": None}]}), "batch_delete key")
    r = ok(req.call({"command": "lookup", "key": "E(7,7)"}), "lookup deleted key")
    check(r.get("results") == [], "deleted key: %r" % r)
    r = ok(req.call({"command": "metrics"}), "metrics")
    check(r.get("triples", 0) >= n and r.get("keys", 0) >= 1, "metrics: %r" % r)

    # Errors are replies, and the server stays up.
    err(req.raw(b"\xc1"), 400, "malformed msgpack")
    err(req.raw(b""), 400, "empty message")
    err(req.raw(pack([1, 2, 3])), 400, "a list, not a map")
    err(req.raw(pack("insert")), 400, "a string, not a map")
    err(req.call({"command": "frobnicate"}), 400, "unknown command")
    err(req.call({"nothing": 1}), 400, "no command")
    err(req.call({"command": "insert", "s": "E(1,2,3)", "p": "E(1,1)", "o": "E(1,1)"}), 400, "three-word CID")
    err(req.call({"command": "insert", "s": "E(1,x)", "p": "E(1,1)", "o": "E(1,1)"}), 400, "bad CID text")
    err(req.call({"command": "insert", "s": [1, -2, 3, 4], "p": "E(1,1)", "o": "E(1,1)"}), 400, "negative word")
    err(req.call({"command": "insert", "s": "E(0,0,0,0)", "p": "E(1,1)", "o": "E(1,1)"}), 400, "zero CID")
    err(req.call({"command": "insert", "s": "E(1,1)", "p": "E(1,1)"}), 400, "missing o")
    err(req.call({"command": "batch_insert"}), 400, "missing triples")
    err(req.call({"command": "batch_insert", "triples": [{"s": "E(1,1)"}]}), 400, "triple missing p and o")
    err(req.call({"command": "lookup"}), 400, "lookup without key")
    err(req.call({"command": "query", "limit": -1}), 400, "negative limit")
    err(req.raw(b"\x81\xa7command\xa6insert" + b"\x00"), 400, "trailing bytes")
    big = a.get("max_message", 1 << 20)
    err(req.raw(b"\x00" * (big + 1)), 413, "message over the size limit")
    ok(req.call({"command": "ping"}), "ping after the errors")

    # Many REQ clients at once, each on its own connection.
    def worker(k, out):
        r = Req(ctx, a["zmq"])
        try:
            mine = cidsem_triples(2000, seed=1000 + k)
            out[k] = insert_batches(r, mine, batch=250) == 2000 and verify_sample(r, mine, 50)[0] == 50
        finally:
            r.close()

    results = {}
    threads = [threading.Thread(target=worker, args=(k, results)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    check(all(results.get(k) for k in range(8)), "concurrent REQ clients: %r" % results)

    # DEALER clients on the ROUTER endpoint, with and without the empty
    # delimiter frame a REQ socket adds.
    d = ctx.socket(zmq.DEALER)
    d.setsockopt(zmq.LINGER, 0)
    d.connect(a["router"])
    d.send_multipart([b"", pack({"op_code": "LOOKUP", "key": PAIR_KEY})])
    check(d.poll(TIMEOUT_MS), "DEALER reply")
    frames = d.recv_multipart()
    check(len(frames) == 2 and frames[0] == b"" and unpack(frames[1]).get("count") == 2, "DEALER LOOKUP: %r" % frames)
    d.send(pack({"op_code": "METRICS"}))
    check(d.poll(TIMEOUT_MS), "DEALER METRICS reply")
    frames = d.recv_multipart()
    check(len(frames) == 1 and unpack(frames[0]).get("status") == "ok", "DEALER METRICS: %r" % frames)
    # Pipelined: three requests before reading, replies in order.
    for i in range(3):
        d.send_multipart([b"", pack({"command": "lookup", "key": "E(0,%d)" % (900 + i)})])
    for i in range(3):
        check(d.poll(TIMEOUT_MS), "DEALER pipelined reply %d" % i)
        d.recv_multipart()
    d.close()

    # SUB: a heartbeat, then the notification of a mutation.
    sub = ctx.socket(zmq.SUB)
    sub.setsockopt(zmq.LINGER, 0)
    sub.setsockopt(zmq.SUBSCRIBE, b"")
    sub.connect(a["pub"])
    deadline = time.time() + 10
    beat = None
    while time.time() < deadline and beat is None:
        if sub.poll(1000):
            m = unpack(sub.recv())
            if m.get("type") == "heartbeat":
                beat = m
    check(beat is not None and beat.get("version") == "1.0", "heartbeat: %r" % beat)
    ok(req.call({"command": "insert", "key": "E(5,5)", "value": "E(6,6)"}), "insert to notify")
    note = None
    while time.time() < deadline and note is None:
        if sub.poll(1000):
            m = unpack(sub.recv())
            if m.get("type") == "insert":
                note = m
    check(note is not None and note.get("args") == ["E(0,0,5,5)", "E(0,0,6,6)"] and note.get("kind") == "pair",
          "insert notification: %r" % note)
    sub.close()

    # PUSH: fire-and-forget mutations, seen by a REQ lookup soon after;
    # a bad one is logged by the server and changes nothing.
    push = ctx.socket(zmq.PUSH)
    push.setsockopt(zmq.LINGER, 5000)
    push.connect(a["push"])
    push.send(pack({"op_code": "INSERT", "key": "E(8,8)", "value": "E(1,1)"}))
    push.send(b"\xc1 garbage")
    push.send(pack({"op_code": "BATCH_INSERT", "entries": [{"key": "E(8,8)", "value": "E(0,0,0,%d)" % v} for v in range(2, 1002)]}))
    push.send(pack({"op_code": "DELETE", "key": "E(8,8)", "value": "E(1,1)"}))
    push.send(pack({"op_code": "BATCH_DELETE", "entries": [{"key": "E(8,8)", "value": "E(0,0,0,%d)" % v} for v in range(2, 502)]}))
    push.send(pack({"op_code": "INSERT", "key": "E(8,9)", "value": "E(1,1)"}))  # last: marks the end
    push.close()
    deadline = time.time() + 20
    while time.time() < deadline:
        if req.call({"command": "lookup", "key": "E(8,9)"}).get("count") == 1:
            break
        time.sleep(0.05)
    r = req.call({"command": "lookup", "key": "E(8,8)"})
    check(r.get("count") == 500, "PUSH mutations: lookup has %r values, want 500" % r.get("count"))

    req.close()


def phase_verify(ctx, a, n):
    req = Req(ctx, a["zmq"])
    triples = cidsem_triples(n)
    found, sampled = verify_sample(req, triples, 500)
    check(found == sampled, "after restart: %d of %d sampled triples found" % (found, sampled))
    r = req.call({"command": "lookup", "key": "E(8,8)"})
    check(r.get("count") == 500, "after restart: E(8,8) has %r values, want 500" % r.get("count"))
    r = req.call({"command": "lookup", "key": PAIR_KEY})
    check(r.get("count") == 2, "after restart: %s has %r values, want 2" % (PAIR_KEY, r.get("count")))
    req.close()


def bench(ctx, a, n):
    req = Req(ctx, a["zmq"])
    triples = cidsem_triples(n, seed=99)
    batches = [pack({"command": "batch_insert", "triples": [{"s": s, "p": p, "o": o} for s, p, o in triples[i:i + 1000]]})
               for i in range(0, n, 1000)]
    t0 = time.time()
    for b in batches:
        r = req.raw(b)
        if r.get("status") != "ok":
            check(False, "bench batch: %r" % r)
            break
    dt = time.time() - t0
    print("python client bench: %d triples in %d batches of 1000 in %.2fs: %.0f triples/s (client encoding excluded)"
          % (n, len(batches), dt, n / dt), flush=True)
    req.close()


def main():
    args = sys.argv[1:]
    if not args:
        print(__doc__)
        sys.exit(2)
    with open(args[0]) as f:
        a = json.load(f)
    n, phase, do_bench = 20000, "write", False
    i = 1
    while i < len(args):
        if args[i] == "--triples":
            n, i = int(args[i + 1]), i + 2
        elif args[i] == "--phase":
            phase, i = args[i + 1], i + 2
        elif args[i] == "--max-message":
            a["max_message"], i = int(args[i + 1]), i + 2
        elif args[i] == "--bench":
            do_bench, i = True, i + 1
        else:
            print("unknown argument", args[i])
            sys.exit(2)
    ctx = zmq.Context()
    try:
        if do_bench:
            bench(ctx, a, n)
        elif phase == "write":
            phase_write(ctx, a, n)
        else:
            phase_verify(ctx, a, n)
    finally:
        ctx.destroy(linger=0)
    if failures:
        print("interop: %d failures" % len(failures))
        sys.exit(1)
    print("interop: %s phase ok (pyzmq %s, libzmq %s, msgpack %s)"
          % ("bench" if do_bench else phase, zmq.__version__, zmq.zmq_version(), ".".join(map(str, msgpack.version))))


if __name__ == "__main__":
    main()
