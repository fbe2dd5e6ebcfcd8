#!/usr/bin/env python3
"""A small speech-to-text server for edgepbx's end-to-end tests.

It speaks the OpenAI-compatible `POST /v1/audio/transcriptions` (multipart/
form-data: `file`, a WAV file, and `model`, any string; optional
`response_format`: `json`, the default, `text` or `verbose_json`;
`language` and `prompt` are accepted and ignored) around the offline
recogniser of PyPI's `pocketsphinx` (its en-us acoustic model, dictionary
and language model, which expect 16 kHz audio).

    server.py --listen 127.0.0.1:PORT [--ready-file PATH] [--api-key KEY]
    server.py --transcribe FILE.wav     # print the transcript and exit

Once listening it prints `transcriber ready http://127.0.0.1:PORT` (the
real port, also for port 0) and writes "ready\\n" to --ready-file.

The same input always gives the same text: every request is decoded by a
fresh decoder (a reused pocketsphinx decoder carries state from one
utterance to the next), and nothing is random. 8 kHz audio (telephony, as
edgepbx stores voicemail) is brought to 16 kHz by zero-stuffing, whose
mirror image of the 0-4 kHz band stands in for the missing upper band and
recognises better than a clean resampler with this wideband model;
`--resample linear` interpolates instead.

Only the standard library and pocketsphinx are used.
"""

import argparse
import array
import email.message
import email.utils
import hmac
import io
import json
import os
import sys
import threading
import time
import wave
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PATH = "/v1/audio/transcriptions"
RATE = 16000
MAX_BODY = 64 << 20
FORMATS = ("json", "text", "verbose_json")


class BadRequest(Exception):
    """A request to answer with 400 and this message."""

    def __init__(self, message, param=None):
        super().__init__(message)
        self.param = param


# --- audio -------------------------------------------------------------


def plain_pcm(data):
    """`data` with a WAVE_FORMAT_EXTENSIBLE header of PCM samples rewritten
    as plain PCM (format 1), which `wave` reads before Python 3.12."""
    if data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        return data
    pos = 12
    while pos + 8 <= len(data):
        kind, size = data[pos : pos + 4], int.from_bytes(data[pos + 4 : pos + 8], "little")
        if kind == b"fmt ":
            body = pos + 8
            tag = int.from_bytes(data[body : body + 2], "little")
            if tag == 0xFFFE and size >= 40 and data[body + 24 : body + 26] == b"\x01\x00":
                data = bytearray(data)
                data[body : body + 2] = b"\x01\x00"
                return bytes(data)
            return data
        pos += 8 + size + (size & 1)
    return data


def read_wav(data):
    """The samples (array of int16, mono) and sample rate of a WAV file."""
    data = plain_pcm(data)
    try:
        with wave.open(io.BytesIO(data), "rb") as w:
            channels = w.getnchannels()
            width = w.getsampwidth()
            rate = w.getframerate()
            frames = w.readframes(w.getnframes())
    except (wave.Error, EOFError, ValueError) as e:
        why = str(e) or "it ends too soon"
        raise BadRequest(f"the file is not a PCM WAV file: {why}", "file") from None
    if rate < 4000 or rate > 192000:
        raise BadRequest(f"unsupported sample rate {rate} Hz", "file")
    # Keep the top two bytes of each little-endian sample: 16-bit PCM.
    if width == 2:
        pcm = bytes(frames)
    elif width == 1:  # unsigned 8-bit
        pcm = bytearray(2 * len(frames))
        pcm[1::2] = frames.translate(bytes((b ^ 0x80) for b in range(256)))
    elif width in (3, 4):
        pcm = bytearray(2 * (len(frames) // width))
        pcm[0::2] = frames[width - 2 :: width]
        pcm[1::2] = frames[width - 1 :: width]
    else:
        raise BadRequest(f"unsupported sample width {width} bytes", "file")
    samples = array.array("h")
    samples.frombytes(bytes(pcm[: len(pcm) - len(pcm) % 2]))
    if sys.byteorder == "big":
        samples.byteswap()
    if channels > 1:
        n = len(samples) // channels
        samples = array.array(
            "h",
            (
                sum(samples[i * channels : (i + 1) * channels]) // channels
                for i in range(n)
            ),
        )
    return samples, rate


def to_16k(samples, rate, method):
    """`samples` at 16 kHz."""
    if rate == RATE:
        return samples
    if rate == 8000 and method == "fold":
        # Zero-stuffing (doubled, to keep the level): the band 0-4 kHz and
        # its mirror image in 4-8 kHz.
        out = array.array("h", bytes(4 * len(samples)))
        out[0::2] = array.array(
            "h", (max(-32768, min(32767, 2 * s)) for s in samples)
        )
        return out
    # Linear interpolation.
    n = len(samples)
    if n == 0:
        return array.array("h")
    m = n * RATE // rate
    step = rate / RATE
    out = array.array("h", bytes(2 * m))
    last = n - 1
    for i in range(m):
        t = i * step
        j = int(t)
        if j >= last:
            out[i] = samples[last]
        else:
            f = t - j
            out[i] = int(round(samples[j] * (1 - f) + samples[j + 1] * f))
    return out


# --- recogniser --------------------------------------------------------


class Recogniser:
    def __init__(self, resample="fold", config=None):
        import pocketsphinx  # noqa: F401  (fail early when it is missing)

        self.resample = resample
        self.config = dict(config or {})
        self.config.setdefault("loglevel", "FATAL")
        self.decoder()  # check the configuration once

    def decoder(self):
        from pocketsphinx import Decoder

        return Decoder(**self.config)

    def transcribe(self, wav):
        """The text said in `wav` (bytes of a WAV file) and its length, s."""
        samples, rate = read_wav(wav)
        duration = len(samples) / rate
        if len(samples) < rate // 100:  # less than one 10 ms frame
            return "", duration
        pcm = to_16k(samples, rate, self.resample)
        if sys.byteorder == "big":
            pcm.byteswap()
        # A fresh decoder each time: a reused one carries state from one
        # utterance to the next, and the text would depend on history.
        d = self.decoder()
        d.start_utt()
        d.process_raw(pcm.tobytes(), full_utt=True)
        d.end_utt()
        hyp = d.hyp()
        return (hyp.hypstr.strip() if hyp else ""), duration


# --- multipart/form-data -----------------------------------------------


def header_params(name, value):
    """The main value and parameters of a MIME header."""
    m = email.message.Message()
    m[name] = value
    params = m.get_params(header=name) or []
    main = params[0][0].lower() if params else ""
    return main, {
        k.lower(): email.utils.collapse_rfc2231_value(v) for k, v in params[1:]
    }


def parse_multipart(body, content_type):
    """{name: (filename, content type, bytes)} of a multipart/form-data body."""
    kind, params = header_params("content-type", content_type or "")
    if kind != "multipart/form-data":
        raise BadRequest("the body must be multipart/form-data")
    boundary = params.get("boundary")
    if not boundary:
        raise BadRequest("multipart/form-data without a boundary")
    delimiter = b"--" + boundary.encode("latin-1")
    start = body.find(delimiter)
    if start < 0 or (start > 0 and body[start - 2 : start] != b"\r\n"):
        raise BadRequest("bad multipart body: no opening boundary")
    fields = {}
    pos = start + len(delimiter)
    closed = False
    while True:
        if body.startswith(b"--", pos):
            closed = True
            break
        eol = body.find(b"\r\n", pos)
        if eol < 0 or body[pos:eol].strip(b" \t"):
            raise BadRequest("bad multipart body: malformed boundary line")
        end = body.find(b"\r\n" + delimiter, eol)
        if end < 0:
            break
        part = body[eol + 2 : end]
        pos = end + 2 + len(delimiter)
        head, sep, content = part.partition(b"\r\n\r\n")
        if not sep:
            if part.startswith(b"\r\n"):  # a part with no headers
                head, content = b"", part[2:]
            else:
                raise BadRequest("bad multipart body: a part without headers")
        headers = {}
        for line in head.decode("utf-8", "replace").split("\r\n"):
            if ":" in line:
                k, v = line.split(":", 1)
                headers[k.strip().lower()] = v.strip()
        disposition, dparams = header_params(
            "content-disposition", headers.get("content-disposition", "")
        )
        if disposition != "form-data" or "name" not in dparams:
            raise BadRequest("bad multipart body: a part without a form-data name")
        fields.setdefault(
            dparams["name"],
            (dparams.get("filename"), headers.get("content-type"), content),
        )
    if not closed:
        raise BadRequest("bad multipart body: no closing boundary")
    return fields


# --- HTTP --------------------------------------------------------------


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "edgepbx-test-transcriber/1"

    def log_message(self, fmt, *args):
        sys.stderr.write("transcriber: %s %s\n" % (self.address_string(), fmt % args))

    def send(self, status, body, content_type="application/json"):
        if isinstance(body, (dict, list)):
            body = json.dumps(body, ensure_ascii=False) + "\n"
        data = body.encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", f"{content_type}; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def error(self, status, message, kind="invalid_request_error", param=None):
        self.send(
            status,
            {"error": {"message": message, "type": kind, "param": param, "code": None}},
        )

    def read_body(self):
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks, size = [], 0
            while True:
                line = self.rfile.readline(1024)
                try:
                    n = int(line.split(b";")[0].strip(), 16)
                except ValueError:
                    raise BadRequest("bad chunked body") from None
                if n == 0:
                    while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                size += n
                if size > MAX_BODY:
                    return None
                chunks.append(self.rfile.read(n))
                self.rfile.readline(1024)
        length = self.headers.get("Content-Length")
        if length is None:
            raise BadRequest("a body with a Content-Length is required")
        try:
            length = int(length)
        except ValueError:
            raise BadRequest("bad Content-Length") from None
        if length > MAX_BODY:
            return None
        return self.rfile.read(length)

    def drain(self):
        """Read and drop a body not wanted, so that the client sees the answer."""
        try:
            length = int(self.headers.get("Content-Length", "0"))
        except ValueError:
            return
        if 0 < length <= MAX_BODY:
            self.rfile.read(length)

    def do_GET(self):
        if self.path.split("?")[0] == "/health":
            self.send(200, {"status": "ok"})
        else:
            self.error(404, f"no such path: {self.path}", "not_found")

    do_HEAD = do_GET

    def do_POST(self):
        opts = self.server.opts
        path = self.path.split("?")[0]
        record = {"path": path, "authorization": "Authorization" in self.headers}
        try:
            if path != PATH:
                record["status"] = 404
                self.drain()
                self.close_connection = True
                self.error(404, f"no such path: {path}", "not_found")
                return
            if opts.api_key is not None:
                auth = self.headers.get("Authorization", "")
                scheme, _, key = auth.partition(" ")
                if scheme.lower() != "bearer" or not hmac.compare_digest(
                    key.strip().encode(), opts.api_key.encode()
                ):
                    record["status"] = 401
                    self.drain()
                    self.close_connection = True
                    self.error(401, "incorrect API key", "invalid_api_key")
                    return
            body = self.read_body()
            if body is None:
                record["status"] = 413
                self.close_connection = True
                self.error(413, f"the body is larger than {MAX_BODY} bytes")
                return
            fields = parse_multipart(body, self.headers.get("Content-Type"))
            text_field = lambda name: (
                fields[name][2].decode("utf-8", "replace") if name in fields else None
            )
            fmt = text_field("response_format") or "json"
            record.update(
                model=text_field("model"),
                response_format=fmt,
                language=text_field("language"),
                fields=sorted(fields),
            )
            if "file" in fields:
                filename, ctype, _ = fields["file"]
                record.update(
                    filename=filename, content_type=ctype, bytes=len(fields["file"][2])
                )
            if "file" not in fields:
                raise BadRequest("the field `file` is required", "file")
            if not record["model"]:
                raise BadRequest("the field `model` is required", "model")
            if fmt not in FORMATS:
                raise BadRequest(
                    f"unsupported response_format {fmt!r}: one of {', '.join(FORMATS)}",
                    "response_format",
                )
            if opts.delay:
                time.sleep(opts.delay)
            if opts.fail:
                record["status"] = opts.fail
                self.error(opts.fail, "failing on purpose (--fail)", "server_error")
                return
            with self.server.slots:
                text, duration = self.server.recogniser.transcribe(fields["file"][2])
            record.update(status=200, text=text)
            if fmt == "text":
                self.send(200, text + "\n", "text/plain")
            elif fmt == "verbose_json":
                self.send(
                    200,
                    {
                        "task": "transcribe",
                        "language": "english",
                        "duration": round(duration, 3),
                        "text": text,
                        "segments": [],
                    },
                )
            else:
                self.send(200, {"text": text})
        except BadRequest as e:
            record["status"] = 400
            self.close_connection = True
            self.error(400, str(e), param=e.param)
        except Exception as e:  # noqa: BLE001
            record["status"] = 500
            self.close_connection = True
            self.log_message("error: %r", e)
            self.error(500, f"transcription failed: {e}", "server_error")
        finally:
            if opts.request_log:
                with self.server.log_lock, open(opts.request_log, "a") as f:
                    f.write(json.dumps(record) + "\n")


class Server(ThreadingHTTPServer):
    daemon_threads = True


# --- command line ------------------------------------------------------


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--listen", metavar="HOST:PORT", help="e.g. 127.0.0.1:8080 (port 0: any)")
    p.add_argument("--ready-file", metavar="PATH", help='write "ready\\n" here once listening')
    p.add_argument("--api-key", metavar="KEY", help="require `Authorization: Bearer KEY`")
    p.add_argument("--transcribe", metavar="FILE.wav", help="print the transcript of a file and exit")
    p.add_argument(
        "--resample",
        choices=("fold", "linear"),
        default="fold",
        help="how 8 kHz audio becomes 16 kHz (default fold); other rates: linear",
    )
    p.add_argument(
        "--ps",
        metavar="KEY=VALUE",
        action="append",
        default=[],
        help="a pocketsphinx setting (hmm, lm, dict, beam, ...); repeatable",
    )
    p.add_argument("--request-log", metavar="PATH", help="append one JSON line per request")
    p.add_argument("--fail", metavar="STATUS", type=int, help="answer every transcription with this error status")
    p.add_argument("--delay", metavar="SECONDS", type=float, default=0, help="wait before answering")
    p.add_argument("--workers", type=int, default=2, help="transcriptions at once (default 2)")
    opts = p.parse_args()

    config = {}
    for item in opts.ps:
        key, sep, value = item.partition("=")
        if not sep:
            p.error(f"--ps {item}: KEY=VALUE expected")
        config[key] = value
    try:
        recogniser = Recogniser(opts.resample, config)
    except Exception as e:  # noqa: BLE001
        print(f"transcriber: cannot start the recogniser: {e}", file=sys.stderr)
        return 1

    if opts.transcribe:
        try:
            with open(opts.transcribe, "rb") as f:
                text, _ = recogniser.transcribe(f.read())
        except (OSError, BadRequest) as e:
            print(f"transcriber: {opts.transcribe}: {e}", file=sys.stderr)
            return 2
        print(text)
        return 0

    if not opts.listen:
        p.error("--listen HOST:PORT or --transcribe FILE is required")
    host, sep, port = opts.listen.rpartition(":")
    if not sep or not port.isdigit():
        p.error("--listen HOST:PORT expected")
    host = host.strip("[]") or "127.0.0.1"
    if ":" in host:
        Server.address_family = __import__("socket").AF_INET6
    server = Server((host, int(port)), Handler)
    server.opts = opts
    server.recogniser = recogniser
    server.slots = threading.BoundedSemaphore(max(1, opts.workers))
    server.log_lock = threading.Lock()
    bound = server.server_address[1]
    shown = f"[{host}]" if ":" in host else host
    print(f"transcriber ready http://{shown}:{bound}", flush=True)
    if opts.ready_file:
        tmp = opts.ready_file + ".tmp"
        with open(tmp, "w") as f:
            f.write("ready\n")
        os.replace(tmp, opts.ready_file)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
