#!/usr/bin/env python3
"""The registration side of the soak's kill -9 check (scripts/soak.sh).

Reads the times SIPp received each 200 to a REGISTER (the log lines of
bench/soak/register.xml: "<user> <date>\\t<time>\\t<epoch seconds>") and
the stored bindings, as `edgepbx ext list <TENANT> --json` prints them
when no server runs (it then reads the store itself). A registration
counts as acknowledged before the kill when its 200 came more than
--margin seconds before the kill (the write-behind window,
store.write_delay_ms, is 50 ms by default) and its expiry had not run
out at the kill. Every user with such a registration must have a stored
binding with its contact (sip:USER@HOST:PORT of the registering SIPp).

Prints a JSON summary and the missing users; writes the users that must
have a binding to --expected (one a line, for the check after the
restart); exits 1 when one is missing.

Usage: bindings.py --kill EPOCH --margin S --stored FILE --expected OUT
                   --log FILE,EXPIRES,HOST:PORT [--log ...]
"""

import argparse
import json
import sys


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--kill", type=float, required=True, help="wall time of the kill -9")
    p.add_argument("--margin", type=float, default=2.0)
    p.add_argument("--stored", required=True, help="`edgepbx ext list --json` output")
    p.add_argument("--expected", required=True, help="file to write the users that must be bound")
    p.add_argument("--log", action="append", required=True,
                   help="SIPp log of acknowledged registrations, its expiry, and its address")
    args = p.parse_args()

    # user -> (contact prefix, latest ack before the kill less the margin, any ack later)
    latest, within_margin, contact = {}, {}, {}
    for spec in args.log:
        path, expires, addr = spec.split(",")
        expires = float(expires)
        with open(path) as f:
            for line in f:
                fields = line.split()
                if len(fields) < 4:
                    continue
                user, at = fields[0], float(fields[3])
                if at > args.kill:
                    continue
                if at > args.kill - args.margin:
                    within_margin[user] = at
                    continue
                if at + expires <= args.kill:
                    continue
                if at > latest.get(user, 0):
                    latest[user] = at
                    contact[user] = f"sip:{user}@{addr}"

    with open(args.stored) as f:
        stored = json.load(f)
    bound = {}
    for ext in stored:
        bound[ext["number"]] = [b["contact"] for b in ext.get("bindings", [])]

    missing = []
    for user in sorted(latest):
        if not any(c.startswith(contact[user]) for c in bound.get(user, [])):
            missing.append(user)
    with open(args.expected, "w") as f:
        for user in sorted(latest):
            f.write(user + "\n")
    newest = max(latest.values(), default=None)
    summary = {
        "users_acknowledged_before_kill": len(latest),
        "newest_checked_ack_before_kill_s": round(args.kill - newest, 3) if newest else None,
        "acks_within_margin_not_required": len(within_margin),
        "stored_bindings": sum(len(v) for v in bound.values()),
        "missing": len(missing),
    }
    print(json.dumps(summary))
    for user in missing[:50]:
        ack = latest[user]
        print(f"  MISSING stored binding of {user} ({contact[user]}), acknowledged "
              f"{args.kill - ack:.3f} s before the kill; stored: {bound.get(user, [])}")
    sys.exit(1 if missing else 0)


if __name__ == "__main__":
    main()
