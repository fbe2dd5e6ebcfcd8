#!/usr/bin/env python3
"""The REST API side of the soak (scripts/soak.sh).

traffic   Steady API traffic against one tenant: reads (lists, one extension,
          calls, call records, presence) and writes on a pool of extension
          numbers that start absent (create when the soak's model says
          absent; else patch name, dnd, away and ring timeout, or delete).
          A new HTTP connection per request, as a script with curl would.
          Every write goes to the ledger, one JSON line each:
            {"t": wall time, "op": "create|patch|delete|resync", "number",
             "status": HTTP status or null, "outcome", "state"}
          outcome: "ack" (2xx: the server acknowledged it; "state" is the
          extension as the answer shows it, null for a delete), "rejected"
          (4xx: nothing written), "refused" (no connection: nothing sent),
          "unknown" (5xx, reset or timeout after sending: maybe written).
          A number whose last write is unknown is read back ("resync")
          before it is written again. Anomalies (a write on a number the
          model holds that the server does not know, or the reverse; an
          acknowledged state other than the one asked for) go to the ledger
          as op "anomaly". While the pause file exists it stops between
          requests and says so by creating the paused file; it exits when
          the stop file exists.
check     Replays the ledger: each number's last acknowledged state (a
          number last written with an unknown outcome is left out), then
          reads every number of the pool and the base numbers back and
          compares. Prints a summary; exits 1 on any difference or anomaly.
counts    One JSON line of counts through the API: extensions, registered
          extensions (devices > 0), devices, calls in progress, call records
          (at most 1000, the API's cap).
registered  The numbers with at least one registered device, one a line.
"""

import argparse
import http.client
import json
import os
import random
import sys
import time

FIELDS = ("name", "dnd", "away", "ring_timeout_secs")


class Api:
    def __init__(self, addr, key):
        host, port = addr.rsplit(":", 1)
        self.host, self.port, self.key = host, int(port), key

    def call(self, method, path, body=None, timeout=15):
        """(status, parsed body or None, outcome); status None without an answer."""
        conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        headers = {"Authorization": f"Bearer {self.key}"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = (
                "application/merge-patch+json" if method == "PATCH" else "application/json")
        try:
            try:
                conn.connect()
            except OSError:
                return None, None, "refused"
            try:
                conn.request(method, path, body=data, headers=headers)
                resp = conn.getresponse()
                raw = resp.read()
            except (OSError, http.client.HTTPException):
                return None, None, "unknown"
        finally:
            conn.close()
        try:
            parsed = json.loads(raw) if raw else None
        except ValueError:
            parsed = None
        if 200 <= resp.status < 300:
            outcome = "ack"
        elif 400 <= resp.status < 500:
            outcome = "rejected"
        else:
            outcome = "unknown"
        return resp.status, parsed, outcome


def tracked(view):
    return {f: view.get(f) for f in FIELDS} if isinstance(view, dict) else None


def pool_of(spec):
    first, last = (int(x) for x in spec.split("-"))
    return [str(n) for n in range(first, last + 1)]


# ---- traffic ---------------------------------------------------------------

def traffic(args):
    api = Api(args.http, args.key)
    pool = pool_of(args.pool)
    model = {n: "absent" for n in pool}  # "absent", a dict of FIELDS, or "unknown"
    version = {n: 0 for n in pool}
    ledger = open(args.ledger, "a", buffering=1)
    rng = random.Random(args.seed)
    interval = 1.0 / args.rate
    next_at = time.monotonic()

    def log(op, number, status, outcome, state=None, note=None):
        entry = {"t": round(time.time(), 6), "op": op, "number": number, "status": status,
                 "outcome": outcome, "state": state}
        if note:
            entry["note"] = note
        ledger.write(json.dumps(entry) + "\n")

    def anomaly(number, note):
        log("anomaly", number, None, "anomaly", None, note)

    while not os.path.exists(args.stop):
        if os.path.exists(args.pause):
            open(args.paused, "w").close()
            while os.path.exists(args.pause) and not os.path.exists(args.stop):
                time.sleep(0.1)
            if os.path.exists(args.paused):
                os.remove(args.paused)
            next_at = time.monotonic()
            continue
        now = time.monotonic()
        if now < next_at:
            time.sleep(next_at - now)
        next_at += interval
        if time.monotonic() - next_at > 5:
            next_at = time.monotonic()  # the server was down: no burst to catch up
        if rng.random() < args.read_share:
            path = rng.choice([
                f"/api/v1/extensions?per_page=100&page={rng.randint(1, 5)}",
                f"/api/v1/extensions?q={rng.randint(10, 12)}&sort=name",
                f"/api/v1/extensions/{rng.choice(pool)}",
                f"/api/v1/extensions/{rng.randint(args.base_first, args.base_last)}/devices",
                "/api/v1/calls",
                "/api/v1/call-records?limit=20",
                "/api/v1/presence",
            ])
            api.call("GET", path)
            continue
        number = rng.choice(pool)
        current = model[number]
        if current == "unknown":
            status, body, outcome = api.call("GET", f"/api/v1/extensions/{number}")
            if status == 200:
                model[number] = tracked(body)
            elif status == 404:
                model[number] = "absent"
            log("resync", number, status, outcome, tracked(body) if status == 200 else None)
            continue
        version[number] += 1
        wanted = {
            "name": f"Soak {number} v{version[number]}",
            "dnd": rng.random() < 0.3,
            "away": rng.random() < 0.3,
            "ring_timeout_secs": rng.choice([None, 15, 20, 30, 45, 60]),
        }
        if current == "absent":
            op = "create"
            status, body, outcome = api.call(
                "POST", "/api/v1/extensions", dict(wanted, number=number, password=f"pw-{number}-Soak"))
        elif rng.random() < args.delete_share:
            op = "delete"
            status, body, outcome = api.call("DELETE", f"/api/v1/extensions/{number}")
        else:
            op = "patch"
            status, body, outcome = api.call("PATCH", f"/api/v1/extensions/{number}", wanted)
        state = tracked(body) if outcome == "ack" and op != "delete" else None
        log(op, number, status, outcome, state,
            (body or {}).get("title") or (body or {}).get("detail") if outcome == "rejected" else None)
        if outcome == "ack":
            if op != "delete" and state != wanted:
                anomaly(number, f"{op} acknowledged {state}, asked {wanted}")
            model[number] = "absent" if op == "delete" else state
        elif outcome == "unknown":
            model[number] = "unknown"
        elif outcome == "rejected":
            if op == "create" and status == 409:
                anomaly(number, f"create answered 409 on a number the model holds absent: {body}")
                model[number] = "unknown"
            elif op in ("patch", "delete") and status == 404:
                anomaly(number, f"{op} answered 404 on a number the model holds present")
                model[number] = "absent"
            elif status not in (409, 412):
                model[number] = "unknown"
    ledger.close()


# ---- check -----------------------------------------------------------------

def replay(path):
    """(expected, uncertain, acks, anomalies, last_ack): each number's last acknowledged state."""
    expected, uncertain, acks, anomalies, last_ack = {}, set(), {}, [], {}
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            e = json.loads(line)
            n = e["number"]
            if e["op"] == "anomaly":
                anomalies.append(e)
            elif e["op"] == "resync":
                continue
            elif e["outcome"] == "ack":
                expected[n] = None if e["op"] == "delete" else e["state"]
                uncertain.discard(n)
                acks[e["op"]] = acks.get(e["op"], 0) + 1
                last_ack[n] = e["t"]
            elif e["outcome"] == "unknown":
                uncertain.add(n)
    return expected, uncertain, acks, anomalies, last_ack


def check(args):
    api = Api(args.http, args.key)
    expected, uncertain, acks, anomalies, last_ack = replay(args.ledger)
    pool = pool_of(args.pool)
    problems = []
    checked_present = checked_absent = 0
    for n in pool:
        if n in uncertain:
            continue
        want = expected.get(n)  # never acknowledged: never created
        status, body, _ = api.call("GET", f"/api/v1/extensions/{n}")
        if want is None:
            checked_absent += 1
            if status != 404:
                problems.append(f"{n}: expected absent (last acknowledged write a delete, or none), got {status} {tracked(body)}")
        else:
            checked_present += 1
            if status != 200:
                problems.append(f"{n}: expected {want} (acknowledged at {last_ack.get(n)}), got {status}")
            elif tracked(body) != want:
                problems.append(f"{n}: expected {want} (acknowledged at {last_ack.get(n)}), got {tracked(body)}")
    base_missing = []
    if args.base_first is not None:
        status, body, _ = api.call("GET", "/api/v1/extensions?per_page=1000")
        have = {e["number"] for e in (body or {}).get("items", [])} if status == 200 else set()
        for n in range(args.base_first, args.base_last + 1):
            if str(n) not in have:
                base_missing.append(str(n))
        for n in args.also.split(",") if args.also else []:
            if n not in have:
                base_missing.append(n)
        if base_missing:
            problems.append(f"CLI-created extensions missing: {' '.join(base_missing[:20])}")
    recent = 0
    if args.kill_time:
        recent = sum(1 for t in last_ack.values() if args.kill_time - 2 <= t <= args.kill_time)
    total_acks = sum(acks.values())
    summary = {
        "acknowledged_writes": total_acks,
        "by_op": acks,
        "numbers_expected_present": checked_present,
        "numbers_expected_absent": checked_absent,
        "numbers_uncertain": len(uncertain),
        "last_acks_within_2s_before_kill": recent,
        "anomalies": len(anomalies),
        "differences": len(problems),
    }
    print(json.dumps(summary))
    for p in problems[:30]:
        print("  DIFFERENCE " + p)
    for a in anomalies[:30]:
        print("  ANOMALY " + json.dumps(a))
    sys.exit(1 if problems or anomalies else 0)


# ---- counts ------------------------------------------------------------------

def counts(args):
    api = Api(args.http, args.key)
    out = {}
    status, body, _ = api.call("GET", "/api/v1/extensions?per_page=1000")
    if status == 200:
        items = body.get("items", [])
        out["extensions"] = body.get("total")
        out["registered"] = sum(1 for e in items if e.get("devices", 0) > 0)
        out["devices"] = sum(e.get("devices", 0) for e in items)
    status, body, _ = api.call("GET", "/api/v1/calls")
    out["calls"] = len(body) if status == 200 and isinstance(body, list) else None
    status, body, _ = api.call("GET", "/api/v1/call-records?limit=1000")
    out["call_records"] = len(body) if status == 200 and isinstance(body, list) else None
    print(json.dumps(out))


def registered(args):
    api = Api(args.http, args.key)
    status, body, _ = api.call("GET", "/api/v1/extensions?per_page=1000")
    if status != 200:
        sys.exit(f"GET /api/v1/extensions answered {status}")
    for e in body.get("items", []):
        if e.get("devices", 0) > 0:
            print(e["number"])


def main():
    p = argparse.ArgumentParser(description="The REST API side of the soak (scripts/soak.sh).")
    sub = p.add_subparsers(dest="command", required=True)
    for name in ("traffic", "check", "counts", "registered"):
        s = sub.add_parser(name)
        s.add_argument("--http", required=True, help="HOST:PORT of the API")
        s.add_argument("--key", required=True, help="a read-write API key of the tenant")
        if name in ("traffic", "check"):
            s.add_argument("--ledger", required=True)
            s.add_argument("--pool", default="3000-3199", help="FIRST-LAST numbers the API writes")
            s.add_argument("--base-first", type=int)
            s.add_argument("--base-last", type=int)
    t = sub.choices["traffic"]
    t.add_argument("--rate", type=float, default=4.0, help="requests a second")
    t.add_argument("--read-share", type=float, default=0.4)
    t.add_argument("--delete-share", type=float, default=0.25, help="of the writes on a present number")
    t.add_argument("--seed", type=int, default=None)
    t.add_argument("--pause", required=True)
    t.add_argument("--paused", required=True)
    t.add_argument("--stop", required=True)
    c = sub.choices["check"]
    c.add_argument("--also", default="", help="more numbers that must exist, comma-separated")
    c.add_argument("--kill-time", type=float, default=None, help="wall time of the kill -9")
    args = p.parse_args()
    {"traffic": traffic, "check": check, "counts": counts, "registered": registered}[args.command](args)


if __name__ == "__main__":
    main()
