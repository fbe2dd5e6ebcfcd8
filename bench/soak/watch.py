#!/usr/bin/env python3
"""The subscriptions of the soak (scripts/soak.sh), over UDP from one socket.

One SUBSCRIBE dialog (RFC 6665) per line of the pairs file,
``user;password;target;package`` (package ``dialog`` or ``presence``):
the SUBSCRIBE is challenged (407) and sent again with digest credentials
(MD5 or SHA-256, qop=auth), every NOTIFY is answered 200, and the dialog is
refreshed in-dialog at half its granted expiry, with credentials again
when challenged. A refresh answered 481 (the server restarted and forgot
the dialog: subscriptions live in its memory only), a terminated
subscription, another error or a transaction that times out (RFC 3261
timers: T1 = 500 ms doubling up to T2 = 4 s, given up after 32 s) makes a
new subscription a second later, as a phone would.

Every 5 s it replaces the status file with one JSON line: the counts so
far and ``alive``, the subscriptions whose last 2xx is younger than their
granted expiry and that nothing has ended since. On SIGTERM it ends every
live subscription (Expires: 0), waits up to 5 s for the answers, writes
the status once more and exits.

SIPp cannot do this: it computes every digest of a process for one URI,
while edgepbx checks the digest URI against the Request-URI, which is the
watched extension here, and a SIPp scenario cannot take NOTIFYs at any
moment of a refresh cycle.

Usage: watch.py --server HOST:PORT --domain D --pairs FILE --expires S
                --status FILE
"""

import argparse
import hashlib
import json
import os
import random
import select
import signal
import socket
import time

T1 = 0.5
T2 = 4.0
GIVE_UP = 32.0
RETRY_AFTER = 1.0
ACCEPT = {"dialog": "application/dialog-info+xml", "presence": "application/pidf+xml"}


class Message:
    """A received SIP message: start line and headers (the body is not needed)."""

    COMPACT = {"v": "via", "f": "from", "t": "to", "i": "call-id", "m": "contact", "o": "event"}

    def __init__(self, data):
        text = data.decode("utf-8", "replace")
        head = text.split("\r\n\r\n", 1)[0]
        lines = head.split("\r\n")
        self.start = lines[0]
        self.headers = []
        for line in lines[1:]:
            if ":" in line:
                name, value = line.split(":", 1)
                name = name.strip().lower()
                self.headers.append((self.COMPACT.get(name, name), value.strip()))

    def all(self, name):
        return [v for n, v in self.headers if n == name]

    def get(self, name):
        values = self.all(name)
        return values[0] if values else None

    @property
    def status(self):
        if self.start.startswith("SIP/2.0 "):
            try:
                return int(self.start[8:11])
            except ValueError:
                return None
        return None

    @property
    def method(self):
        return None if self.status is not None else self.start.split(" ", 1)[0]

    def cseq(self):
        value = self.get("cseq") or "0 X"
        number, _, method = value.partition(" ")
        try:
            return int(number), method.strip()
        except ValueError:
            return 0, ""

    def reply(self, status):
        out = [f"SIP/2.0 {status}"]
        out += [f"Via: {v}" for v in self.all("via")]
        for name, label in (("from", "From"), ("to", "To"), ("call-id", "Call-ID"), ("cseq", "CSeq")):
            value = self.get(name)
            if value is not None:
                out.append(f"{label}: {value}")
        out.append("Content-Length: 0")
        return ("\r\n".join(out) + "\r\n\r\n").encode()


def uri_of(value):
    """The URI inside <...> of a name-addr, or the value up to its parameters."""
    if "<" in value and ">" in value:
        return value[value.index("<") + 1 : value.index(">")]
    return value.split(";", 1)[0].strip()


def challenge_params(value):
    """The parameters of a Digest challenge, lower-case names."""
    value = value.strip()
    if value.lower().startswith("digest"):
        value = value[6:]
    params, rest = {}, value.strip()
    while rest:
        if "=" not in rest:
            break
        name, rest = rest.split("=", 1)
        name = name.strip().strip(",").strip().lower()
        rest = rest.lstrip()
        if rest.startswith('"'):
            end = rest.find('"', 1)
            end = len(rest) if end < 0 else end
            params[name] = rest[1:end]
            rest = rest[end + 1 :]
        else:
            end = rest.find(",")
            end = len(rest) if end < 0 else end
            params[name] = rest[:end].strip()
            rest = rest[end:]
        rest = rest.lstrip().lstrip(",").lstrip()
    return params


HASHES = {"MD5": hashlib.md5, "SHA-256": hashlib.sha256}


def credentials(msg, method, uri, user, password):
    """The (Proxy-)Authorization header answering the first challenge of msg we can answer."""
    header, answer = ("www-authenticate", "Authorization") if msg.status == 401 else (
        "proxy-authenticate", "Proxy-Authorization")
    for value in msg.all(header):
        p = challenge_params(value)
        algorithm = p.get("algorithm", "MD5").upper()
        if algorithm not in HASHES or "nonce" not in p or "realm" not in p:
            continue
        h = lambda text: HASHES[algorithm](text.encode()).hexdigest()  # noqa: E731
        ha1 = h(f"{user}:{p['realm']}:{password}")
        ha2 = h(f"{method}:{uri}")
        out = (f'{answer}: Digest username="{user}", realm="{p["realm"]}", '
               f'nonce="{p["nonce"]}", uri="{uri}", algorithm={algorithm}')
        if "auth" in [q.strip() for q in p.get("qop", "").split(",")]:
            cnonce, nc = f"{random.getrandbits(64):016x}", "00000001"
            response = h(f"{ha1}:{p['nonce']}:{nc}:{cnonce}:auth:{ha2}")
            out += f', response="{response}", cnonce="{cnonce}", qop=auth, nc={nc}'
        else:
            out += f', response="{h(ha1 + ":" + p["nonce"] + ":" + ha2)}"'
        if "opaque" in p:
            out += f', opaque="{p["opaque"]}"'
        return out
    return None


class Subscription:
    def __init__(self, index, line):
        self.index = index
        self.user, self.password, self.target, self.package = line.split(";")
        self.generation = 0
        self.state = "idle"  # idle, subscribing, active, refreshing, ending, ended
        self.start_at = 0.0
        self.granted_until = 0.0  # when the last 2xx's expiry runs out
        self.refresh_at = None
        self.txn = None

    def new_dialog(self, pid):
        self.generation += 1
        self.call_id = f"s{self.index}g{self.generation}.{pid}@soak"
        self.from_tag = f"w{self.index}g{self.generation}t{pid}"
        self.cseq = 0
        self.to = None
        self.remote = None
        self.routes = []


class Watcher:
    def __init__(self, args):
        host, port = args.server.rsplit(":", 1)
        self.server = (host, int(port))
        self.domain = args.domain
        self.expires = args.expires
        self.status_file = args.status
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        self.sock.bind(("127.0.0.1", 0))
        self.local = "%s:%d" % self.sock.getsockname()
        self.pid = os.getpid()
        self.branches = 0
        with open(args.pairs) as f:
            lines = [l.strip() for l in f if l.strip()]
        self.subs = [Subscription(i, l) for i, l in enumerate(lines)]
        self.by_call_id = {}
        now = time.monotonic()
        # The first subscriptions spread over a second.
        for s in self.subs:
            s.start_at = now + s.index / max(1, len(self.subs))
        self.counts = {"subscribed": 0, "refreshed": 0, "notifies": 0, "resubscribed": 0,
                       "timeouts": 0, "terminated_by_server": 0, "unsubscribed": 0, "errors": {}}
        self.stopping = False

    # ---- sending -----------------------------------------------------------
    def send(self, data):
        try:
            self.sock.sendto(data, self.server)
        except OSError:
            pass  # the server is down: the retransmissions carry on

    def request(self, s, expires, auth=None):
        """Sends s's next SUBSCRIBE (initial when it has no dialog) and starts its transaction."""
        s.cseq += 1
        self.branches += 1
        if s.to is None:
            ruri = f"sip:{s.target}@{self.domain}"
            to = f"<{ruri}>"
        else:
            ruri, to = s.remote, s.to
        lines = [f"SUBSCRIBE {ruri} SIP/2.0",
                 f"Via: SIP/2.0/UDP {self.local};branch=z9hG4bK{self.pid}x{self.branches};rport"]
        lines += [f"Route: {r}" for r in s.routes]
        lines += ["Max-Forwards: 70",
                  f"From: <sip:{s.user}@{self.domain}>;tag={s.from_tag}",
                  f"To: {to}",
                  f"Call-ID: {s.call_id}",
                  f"CSeq: {s.cseq} SUBSCRIBE",
                  f"Contact: <sip:{s.user}@{self.local};transport=udp>",
                  f"Event: {s.package}",
                  f"Accept: {ACCEPT[s.package]}",
                  f"Expires: {expires}"]
        if auth:
            lines.append(auth)
        lines.append("Content-Length: 0")
        data = ("\r\n".join(lines) + "\r\n\r\n").encode()
        now = time.monotonic()
        s.txn = {"data": data, "uri": ruri, "expires": expires, "authed": auth is not None,
                 "first": now, "interval": T1, "next": now + T1}
        self.send(data)

    def subscribe(self, s):
        self.by_call_id.pop(getattr(s, "call_id", None), None)
        s.new_dialog(self.pid)
        self.by_call_id[s.call_id] = s
        s.state = "subscribing"
        s.refresh_at = None
        self.request(s, self.expires)

    def restart(self, s, now, reason):
        """Forgets s's dialog and subscribes anew a second later."""
        if reason:
            errors = self.counts["errors"]
            errors[reason] = errors.get(reason, 0) + 1
        s.txn = None
        s.granted_until = 0.0
        if self.stopping:
            s.state = "ended"
            return
        s.state = "idle"
        s.start_at = now + RETRY_AFTER
        self.counts["resubscribed"] += 1

    # ---- receiving -----------------------------------------------------------
    def handle(self, data, now):
        msg = Message(data)
        s = self.by_call_id.get(msg.get("call-id"))
        if msg.method is not None:
            if msg.method == "NOTIFY":
                if s is None or s.state == "idle":
                    self.send(msg.reply("481 Call/Transaction Does Not Exist"))
                    return
                self.send(msg.reply("200 OK"))
                self.counts["notifies"] += 1
                state = (msg.get("subscription-state") or "").lower()
                if state.startswith("terminated") and s.state != "ending":
                    self.counts["terminated_by_server"] += 1
                    self.restart(s, now, None)
            elif msg.method == "OPTIONS":
                self.send(msg.reply("200 OK"))
            elif msg.method != "ACK":
                self.send(msg.reply("405 Method Not Allowed"))
            return
        if s is None or s.txn is None:
            return
        number, method = msg.cseq()
        if method != "SUBSCRIBE" or number != s.cseq:
            return
        status = msg.status
        if status < 200:
            return
        txn = s.txn
        if status in (401, 407) and not txn["authed"]:
            auth = credentials(msg, "SUBSCRIBE", txn["uri"], s.user, s.password)
            if auth:
                self.request(s, txn["expires"], auth)
                return
        if 200 <= status < 300:
            s.txn = None
            if s.state == "ending":
                s.state = "ended"
                self.counts["unsubscribed"] += 1
                return
            if s.to is None:
                s.to = msg.get("to")
                s.remote = uri_of(msg.get("contact") or f"<sip:{s.target}@{self.server[0]}:{self.server[1]}>")
                routes = []
                for value in msg.all("record-route"):
                    routes += [r.strip() for r in value.split(",") if r.strip()]
                s.routes = list(reversed(routes))
                self.counts["subscribed"] += 1
            else:
                self.counts["refreshed"] += 1
            try:
                granted = int((msg.get("expires") or str(txn["expires"])).split(";")[0])
            except ValueError:
                granted = txn["expires"]
            s.state = "active"
            s.granted_until = now + granted
            s.refresh_at = now + granted / 2
            return
        # Any other final answer: this dialog is over.
        if s.state == "ending":
            s.state = "ended"
            s.txn = None
            return
        self.restart(s, now, str(status))

    # ---- time ------------------------------------------------------------------
    def tick(self, now):
        for s in self.subs:
            if s.state == "idle" and not self.stopping and now >= s.start_at:
                self.subscribe(s)
            elif s.state == "active" and s.refresh_at is not None and now >= s.refresh_at and not self.stopping:
                s.state = "refreshing"
                s.refresh_at = None
                self.request(s, self.expires)
            txn = s.txn
            if txn is not None and now >= txn["next"]:
                if now - txn["first"] >= GIVE_UP:
                    self.counts["timeouts"] += 1
                    if s.state == "ending":
                        s.state = "ended"
                        s.txn = None
                    else:
                        self.restart(s, now, "timeout")
                    continue
                self.send(txn["data"])
                txn["interval"] = min(txn["interval"] * 2, T2)
                txn["next"] = now + txn["interval"]

    def alive(self, now):
        return sum(1 for s in self.subs
                   if s.state in ("active", "refreshing") and s.granted_until > now)

    def write_status(self, now):
        status = dict(self.counts, t=round(time.time(), 3), total=len(self.subs), alive=self.alive(now))
        tmp = self.status_file + ".tmp"
        with open(tmp, "w") as f:
            f.write(json.dumps(status) + "\n")
        os.replace(tmp, self.status_file)

    def run(self):
        signal.signal(signal.SIGTERM, lambda *_: setattr(self, "stopping", True))
        next_status = time.monotonic()
        stop_deadline = None
        while True:
            now = time.monotonic()
            if self.stopping and stop_deadline is None:
                stop_deadline = now + 5
                for s in self.subs:
                    if s.state in ("active", "refreshing") and s.granted_until > now and s.to is not None:
                        s.state = "ending"
                        self.request(s, 0)
                    elif s.state != "ending":
                        s.state = "ended"
                        s.txn = None
            if stop_deadline is not None and (
                    now >= stop_deadline or all(s.state == "ended" for s in self.subs)):
                self.write_status(now)
                return
            self.tick(now)
            if now >= next_status:
                self.write_status(now)
                next_status = now + 5
            try:
                ready, _, _ = select.select([self.sock], [], [], 0.05)
            except InterruptedError:
                continue
            if ready:
                try:
                    data = self.sock.recv(65535)
                except OSError:
                    continue
                self.handle(data, time.monotonic())


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--server", required=True)
    p.add_argument("--domain", required=True)
    p.add_argument("--pairs", required=True)
    p.add_argument("--expires", type=int, default=120)
    p.add_argument("--status", required=True)
    Watcher(p.parse_args()).run()


if __name__ == "__main__":
    main()
