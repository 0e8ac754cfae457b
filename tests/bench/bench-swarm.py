#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""The swarm benchmark: one scheduled 128 kbit/s station, N listeners, the
origin's uplink capped at a few times the bitrate, measured twice in one
invocation: with Alluvium (every listener an alluvium-core swarming from
its peers and the origin) and with the Icecast-style baseline (the same
cores with gateway=none, each fetching the station straight from the
origin).

Everything runs on 127.0.0.1.  The origin is a static web server written
for the purpose, in this script: HTTP/1.1 with keep-alive and Range, its
total upload capped at --origin-rate times the bitrate (body bytes) and
shared fairly between its connections, a chunk at a time in turn, as an
uplink with fair queueing shares it (tc on loopback was tried first: the
kernels here have no fair-queueing qdisc, and a plain FIFO there drops the
handshakes of new connections for seconds).  The OCN gateway is
`alluvium-server gateway --docroot --base-url ORIGIN`, which hashes the
same files from disk; it is not rate limited.  Every listener is a real
alluvium-core on a private D-Bus session bus with its own cache and
config, its upload capped by its own upload-limit at --peer-rate times
the bitrate.  Listeners tune in at random times over the first
--join-window seconds (fixed --seed), each at the live position, and a
reader per listener consumes its local stream as a player would: it
starts after 2 s of audio, then plays at the bitrate; a stall is the
buffer running empty (it resumes after 1 s is buffered again).  A reader
whose stream ended with the last item's last bytes has played the
schedule out when its buffer runs empty after them: that is the end of
its stream, not a stall (a listener plays from where its core started
the stream, a moment after it tuned in, so it may reach the end a
fraction of a second before the slot does).

With --origin-model droptail the origin is nginx instead, serving the same
files, and its uplink is capped by tc as a home line is: an htb class at
--origin-rate times the bitrate with a byte FIFO (drop-tail) of about one
second behind it, on the loopback of a private network namespace (MTU
and GSO size 1500), shaping only the packets nginx sends.  The script re-executes
itself under `unshare --net --pid --fork --kill-child --mount-proc`, so
the qdisc, nginx and everything else die with the namespace; it needs
root, nginx, tc and unshare.  Origin bytes are then read from nginx's
access log (media body bytes) and from the tc class (wire bytes).

With --video the station is a WebM video station instead: 1 Mbit/s items
(VP8 160x120 noise at about 900 kbit/s CBR with a keyframe every 2 s, and
Opus at 96 kbit/s), every rate above (origin and listener uplinks, the
reader's 2 s of start-up buffer) scaled to that bitrate; the local stream
then serves it as one live WebM stream, listeners joining on keyframes.

Prints a table per scenario, a side-by-side summary, and a JSON summary
as its last line.  Usage:

    tests/bench/bench-swarm.py [--builddir _build] [-n 16] ...
    tests/bench/bench-swarm.py --video ...                     # 1 Mbit/s WebM
    tests/bench/bench-swarm.py --origin-model droptail ...     # as root
"""

import argparse
import json
import os
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from datetime import datetime, timedelta, timezone

BITRATE = 128000                # bits per second of the station (--video: 1 Mbit/s)
BYTE_RATE = BITRATE // 8        # 16000 bytes per second
VIDEO_BITRATE = 1000000
START_AUDIO = 2.0               # seconds buffered before playback starts
RESUME_AUDIO = 1.0              # seconds buffered before playback resumes


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, **kw)


# --- the rate-limited origin -------------------------------------------------

class FairShaper:
    """A token bucket shared by every response body, handed out a chunk at
    a time to the waiting senders in turn (round robin), so a small answer
    is never stuck behind bulk transfers."""

    CHUNK = 1448

    def __init__(self, rate):
        self.rate = float(rate)
        self.lock = threading.Condition()
        self.queue = []          # tickets waiting, in order
        self.next_ticket = 0
        self.tokens = 0.0
        self.stamp = time.monotonic()
        self.sent = 0

    def take(self, n):
        with self.lock:
            ticket = self.next_ticket
            self.next_ticket += 1
            self.queue.append(ticket)
            while True:
                now = time.monotonic()
                self.tokens = min(self.tokens + (now - self.stamp) * self.rate, 4 * self.CHUNK)
                self.stamp = now
                if self.queue[0] == ticket and self.tokens >= n:
                    self.tokens -= n
                    self.queue.pop(0)
                    self.sent += n
                    self.lock.notify_all()
                    return
                wait = max((n - self.tokens) / self.rate, 0.001) if self.queue[0] == ticket else 0.05
                self.lock.wait(wait)


class Origin(threading.Thread):
    """Static files of @root over HTTP/1.1, bodies paced by a FairShaper."""

    TYPES = {".rss": "application/x-alluvium", ".mp3": "audio/mpeg", ".ogg": "audio/ogg",
             ".webm": "video/webm"}

    def __init__(self, root, port, rate):
        super().__init__(daemon=True)
        import http.server
        shaper = self.shaper = FairShaper(rate)
        origin = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_HEAD(self):
                self.answer(False)

            def do_GET(self):
                self.answer(True)

            def answer(self, body):
                path = os.path.normpath(urllib.parse.unquote(urllib.parse.urlsplit(self.path).path))
                full = os.path.join(root, path.lstrip("/"))
                if ".." in path.split("/") or not os.path.isfile(full):
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                size = os.path.getsize(full)
                start, end, status = 0, size - 1, 200
                m = re.fullmatch(r"bytes=(\d*)-(\d*)", self.headers.get("Range", ""))
                if m and (m.group(1) or m.group(2)):
                    if m.group(1):
                        start = int(m.group(1))
                        end = min(int(m.group(2)), size - 1) if m.group(2) else size - 1
                    else:
                        start = max(size - int(m.group(2)), 0)
                    if start > end or start >= size:
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{size}")
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                    status = 206
                self.send_response(status)
                self.send_header("Content-Type", Origin.TYPES.get(os.path.splitext(full)[1],
                                                                  "application/octet-stream"))
                self.send_header("Accept-Ranges", "bytes")
                self.send_header("Content-Length", str(end - start + 1))
                if status == 206:
                    self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
                self.end_headers()
                if not body:
                    return
                with open(full, "rb") as f:
                    f.seek(start)
                    left = end - start + 1
                    while left > 0:
                        n = min(left, FairShaper.CHUNK)
                        shaper.take(n)
                        self.wfile.write(f.read(n))
                        left -= n

        class Server(http.server.ThreadingHTTPServer):
            daemon_threads = True
            allow_reuse_address = True

            def handle_error(self, request, client_address):
                # a listener that goes away mid-body (a cancelled request,
                # a core stopping) is normal here
                if not isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
                    super().handle_error(request, client_address)

        self.server = Server(("127.0.0.1", port), Handler)
        self.port = self.server.server_address[1]

    def run(self):
        self.server.serve_forever(poll_interval=0.2)

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class FairOrigin:
    """The fair-queued origin above, behind the interface scenario() uses."""

    model = "fair"

    def __init__(self, station, work, rate_x):
        self.srv = Origin(station, 0, rate_x * BYTE_RATE)
        self.port = self.srv.port
        self.sent0 = 0
        self.started = False

    def start(self):
        self.srv.start()
        self.started = True

    def mark(self):
        self.sent0 = self.srv.shaper.sent

    def progress(self):
        return self.srv.shaper.sent - self.sent0

    def stop(self):
        if self.started:        # shutdown() waits for serve_forever() to end
            self.srv.stop()
        else:
            self.srv.server.server_close()

    def result(self, media):
        return {"origin_bytes": self.srv.shaper.sent - self.sent0}


NETNS_MARK = "ALLUVIUM_BENCH_NETNS"    # set when re-executed inside the namespace


def in_private_netns():
    """True if this process runs where the drop-tail mode may change lo:
    the marker is set and lo is the only network interface."""
    if os.environ.get(NETNS_MARK) != "1":
        return False
    out = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True,
                         check=True).stdout
    names = [line.split(":")[1].strip() for line in out.splitlines() if line.strip()]
    return names == ["lo"]


TC_CLASS = re.compile(r"class htb 1:1 .*?\n\s*Sent (\d+) bytes (\d+) pkt "
                      r"\(dropped (\d+), overlimits (\d+)", re.S)


class DropTailOrigin:
    """nginx serving @station on 127.0.0.1, its outgoing packets (TCP source
    port = its port) through an htb class capped at @rate_x times the
    bitrate, with a byte FIFO of about one second of that rate behind it:
    a home uplink's drop-tail queue.  Everything else on lo is unshaped.
    Only ever used inside the private network namespace."""

    model = "droptail"
    TYPES = {"rss": "application/x-alluvium", "mp3": "audio/mpeg", "ogg": "audio/ogg",
             "webm": "video/webm"}

    def __init__(self, station, work, rate_x):
        if not in_private_netns():
            raise RuntimeError("the drop-tail origin runs only in its private network namespace")
        self.dir = os.path.join(work, "nginx")
        os.makedirs(os.path.join(self.dir, "tmp"))
        self.port = free_port()
        self.rate_bit = int(rate_x * BITRATE)
        self.queue_bytes = max(int(rate_x * BYTE_RATE), 4 * 1514)   # about 1 s of the cap
        self.access_log = os.path.join(self.dir, "access.log")
        types = "".join(f"        {t} {ext};\n" for ext, t in self.TYPES.items())
        tmp = os.path.join(self.dir, "tmp")
        with open(os.path.join(self.dir, "nginx.conf"), "w") as f:
            f.write(f"""# written by bench-swarm.py --origin-model droptail
daemon off;
worker_processes 1;
user root;
pid {self.dir}/nginx.pid;
error_log {self.dir}/error.log notice;
events {{ worker_connections 1024; }}
http {{
    types {{
{types}    }}
    default_type application/octet-stream;
    log_format bench '$msec $status "$request_method" "$uri" $body_bytes_sent $bytes_sent';
    access_log {self.access_log} bench;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    sendfile on;
    keepalive_timeout 65s;
    server_tokens off;
    server {{
        listen 127.0.0.1:{self.port} sndbuf=32k;
        root {station};
        location / {{ }}
    }}
}}
""")
        self.proc = None
        self.log_offset = 0
        self.tc0 = (0, 0, 0, 0)
        self.tc_text = ""

    def tc(self, *args):
        subprocess.run(["tc"] + list(args), check=True, capture_output=True, text=True, timeout=10)

    def start(self):
        # the cap: htb class 1:1 with a drop-tail byte FIFO; default 0 leaves
        # every packet the filter does not match (the gateway, the peers,
        # the requests to nginx) unshaped
        self.tc("qdisc", "add", "dev", "lo", "root", "handle", "1:", "htb", "default", "0")
        self.tc("class", "add", "dev", "lo", "parent", "1:", "classid", "1:1", "htb",
                "rate", f"{self.rate_bit}bit", "ceil", f"{self.rate_bit}bit")
        self.tc("qdisc", "add", "dev", "lo", "parent", "1:1", "handle", "10:", "bfifo",
                "limit", str(self.queue_bytes))
        self.tc("filter", "add", "dev", "lo", "parent", "1:", "protocol", "ip", "u32",
                "match", "ip", "sport", str(self.port), "0xffff", "flowid", "1:1")
        self.proc = Proc("nginx", ["nginx", "-p", self.dir + "/", "-e", os.path.join(self.dir, "error.log"),
                                   "-c", os.path.join(self.dir, "nginx.conf")], logdir=self.dir)
        for _ in range(100):
            if self.proc.p.poll() is not None:
                with open(os.path.join(self.dir, "error.log"), errors="replace") as f:
                    raise RuntimeError(f"nginx did not start: {f.read().strip()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("nginx did not listen")

    def tc_counters(self):
        out = subprocess.run(["tc", "-s", "class", "show", "dev", "lo"], capture_output=True,
                             text=True, timeout=10).stdout
        m = TC_CLASS.search(out)
        return out, (tuple(int(x) for x in m.groups()) if m else (0, 0, 0, 0))

    def mark(self):
        self.log_offset = os.path.getsize(self.access_log) if os.path.exists(self.access_log) else 0
        self.tc0 = self.tc_counters()[1]

    def progress(self):
        return self.tc_counters()[1][0] - self.tc0[0]

    def stop(self):
        # the wire counters once nginx is done, then the qdisc goes (the
        # next scenario sets up its own)
        if self.proc is not None:
            self.proc.stop()
        self.tc_text, tc1 = self.tc_counters()
        self.tc1 = tuple(b - a for a, b in zip(self.tc0, tc1))
        subprocess.run(["tc", "qdisc", "del", "dev", "lo", "root"], capture_output=True, timeout=10)

    def result(self, media):
        """Body bytes of the media files from nginx's log since mark(), and
        the wire bytes of the capped class over the same time."""
        names = {"/media/" + os.path.basename(m) for m in media}
        media_bytes = media_requests = other_bytes = other_requests = 0
        with open(self.access_log, "rb") as f:
            f.seek(self.log_offset)
            for line in f.read().decode(errors="replace").splitlines():
                m = re.fullmatch(r'[\d.]+ (\d+) "[A-Z]*" "([^"]*)" (\d+) (\d+)', line)
                if m is None:
                    continue
                if m.group(2) in names:
                    media_bytes += int(m.group(3))
                    media_requests += 1
                else:
                    other_bytes += int(m.group(3))
                    other_requests += 1
        wire, pkts, dropped, overlimits = self.tc1
        return {"origin_bytes": media_bytes, "origin_requests": media_requests,
                "origin_other_body_bytes": other_bytes, "origin_other_requests": other_requests,
                "origin_wire_bytes": wire, "origin_wire_packets": pkts,
                "origin_dropped_packets": dropped, "origin_overlimits": overlimits}


def netns_setup():
    """Inside the namespace: lo up, with Ethernet-sized packets.  The MTU
    alone is not enough: TCP still hands loopback GSO packets of up to
    64 KiB, which the ~1 s FIFO drops whole (one nginx connection then got
    a third of the cap here); gso_max_size 1500 makes every packet one
    segment, as on a home line."""
    run(["ip", "link", "set", "lo", "up"])
    run(["ip", "link", "set", "lo", "mtu", "1500"])
    r = subprocess.run(["ip", "link", "set", "lo", "gso_max_size", "1500"],
                       capture_output=True, text=True)
    if r.returncode != 0:
        log("bench-swarm: warning: could not set lo's gso_max_size to 1500 "
            f"({r.stderr.strip()}): the cap sees 64 KiB packets and drops them whole")


def reexec_in_netns():
    """Runs this script again, with the same arguments, as PID 1 of a
    private network and PID namespace; does not return."""
    if os.geteuid() != 0:
        sys.exit("bench-swarm: --origin-model droptail needs root (unshare --net, tc)")
    missing = [t for t in ("unshare", "ip", "tc") if shutil.which(t) is None]
    if missing:
        sys.exit(f"bench-swarm: --origin-model droptail needs {', '.join(missing)} "
                 "(apt-get install util-linux iproute2)")
    if shutil.which("nginx") is None:
        sys.exit("bench-swarm: --origin-model droptail needs nginx: apt-get install nginx")
    env = dict(os.environ, **{NETNS_MARK: "1"})
    argv = ["unshare", "--net", "--pid", "--fork", "--kill-child", "--mount-proc", "--",
            sys.executable, os.path.abspath(__file__)] + sys.argv[1:]
    log("bench-swarm: drop-tail origin: re-running inside a private network namespace")
    sys.stdout.flush()
    os.execvpe("unshare", argv, env)


def reap(pid, timeout=5.0):
    """Waits (bounded) for a child that this process adopted: inside the
    PID namespace this script is PID 1, and the forked dbus-daemons are
    its children; elsewhere they are not, and nothing is waited for."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if os.waitpid(pid, os.WNOHANG)[0] == pid:
                return
        except ChildProcessError:
            return
        time.sleep(0.05)


# --- the station ------------------------------------------------------------

def make_video_media(directory, n_items, seconds):
    """WebM items of @seconds: VP8 noise (every frame new, so the encoder
    spends its whole budget) at about 900 kbit/s CBR, a keyframe every 2 s,
    and Opus at 96 kbit/s: 1 Mbit/s in all."""
    os.makedirs(directory, exist_ok=True)
    paths = []
    for i in range(n_items):
        path = os.path.join(directory, f"item{i + 1}.webm")
        paths.append(path)
        if os.path.exists(path):
            continue
        frames = int(seconds * 25)
        run(["gst-launch-1.0", "-q", "webmmux", "name=mux",
             "videotestsrc", "pattern=snow", f"num-buffers={frames}",
             "!", "video/x-raw,width=160,height=120,framerate=25/1",
             "!", "vp8enc", "end-usage=cbr", "target-bitrate=900000", "keyframe-max-dist=50",
             "deadline=1", "cpu-used=8", "!", "queue", "!", "mux.",
             "audiotestsrc", "wave=pink-noise", f"volume=0.{2 + i}", f"num-buffers={int(seconds * 50)}",
             "samplesperbuffer=960", "!", "audio/x-raw,rate=48000,channels=2",
             "!", "opusenc", "bitrate=96000", "!", "queue", "!", "mux.",
             "mux.", "!", "filesink", f"location={path}.part"], stdout=subprocess.DEVNULL)
        os.rename(path + ".part", path)
    return paths


def make_media(directory, n_items, seconds, seed):
    """MP3 items of @seconds of filtered noise at 128 kbit/s CBR, titled."""
    os.makedirs(directory, exist_ok=True)
    paths = []
    for i in range(n_items):
        path = os.path.join(directory, f"item{i + 1}.mp3")
        paths.append(path)
        if os.path.exists(path):
            continue
        frames = int(seconds * 44100 / 1152)
        run(["gst-launch-1.0", "-q", "audiotestsrc", "wave=pink-noise", f"volume=0.{2 + i}",
             f"num-buffers={frames}", "samplesperbuffer=1152",
             "!", "audio/x-raw,rate=44100,channels=2",
             "!", "lamemp3enc", "target=bitrate", f"bitrate={BITRATE // 1000}", "cbr=true",
             "!", "id3v2mux",
             "!", "filesink", f"location={path}.part"], stdout=subprocess.DEVNULL)
        os.rename(path + ".part", path)
    return paths


def w3c(t):
    return datetime.fromtimestamp(t, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


class Proc:
    """A child process whose output goes to a log file."""

    def __init__(self, name, argv, env=None, logdir="."):
        self.name = name
        self.log = open(os.path.join(logdir, name + ".log"), "w")
        self.p = subprocess.Popen(argv, env=env, stdout=self.log, stderr=subprocess.STDOUT,
                                  start_new_session=True)

    def stop(self):
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(10)
            except subprocess.TimeoutExpired:
                # the whole group: nginx's worker goes with its master
                os.killpg(self.p.pid, signal.SIGKILL)
                self.p.wait()
        self.log.close()


def wait_http(url, timeout=20):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                return r.status
        except urllib.error.HTTPError as e:
            return e.code
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer")


# --- listeners --------------------------------------------------------------

class Reader(threading.Thread):
    """Reads a local stream and records (time, bytes) of every chunk, and
    the stream's last TAIL bytes."""

    TAIL = 4096

    def __init__(self, url, stop_at):
        super().__init__(daemon=True)
        self.url = urllib.parse.urlsplit(url)
        self.stop_at = stop_at
        self.arrivals = []
        self.tail = b""
        self.error = None
        self.connected_at = None

    def run(self):
        try:
            s = socket.create_connection((self.url.hostname, self.url.port), timeout=30)
            s.sendall(f"GET {self.url.path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n".encode())
            self.connected_at = time.time()
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = s.recv(4096)
                if not chunk:
                    raise RuntimeError("closed before the headers")
                head += chunk
            body = head.split(b"\r\n\r\n", 1)[1]
            if body:
                self.arrivals.append((time.time(), len(body)))
                self.tail = body[-self.TAIL:]
            s.settimeout(1.0)
            while time.time() < self.stop_at:
                try:
                    chunk = s.recv(65536)
                except socket.timeout:
                    continue
                if not chunk:
                    break
                self.arrivals.append((time.time(), len(chunk)))
                self.tail = (self.tail + chunk)[-self.TAIL:]
            s.close()
        except Exception as e:  # reported in the results, never fatal
            self.error = str(e)


def ends_with_item(tail, last_item):
    """Whether a stream's last bytes are the end of the schedule's last
    item (the file's last 1 KiB, within the last few)."""
    with open(last_item, "rb") as f:
        f.seek(max(os.path.getsize(last_item) - 8 * Reader.TAIL, 0))
        end = f.read()
    return len(tail) >= 1024 and tail[-1024:] in end[-2 * Reader.TAIL:]


def playback(arrivals, t_tune, t_end, complete=False):
    """Simulates a player on the arrival log: returns startup delay to the
    first byte and to 2 s of audio, the stalls (count, seconds) and when
    each stall began (seconds after t_tune).  With @complete (the stream
    ended with the schedule's last bytes), running empty once every byte
    has arrived is the end of the stream, not a stall."""
    if not arrivals:
        return None, None, 0, 0.0, []
    first = arrivals[0][0] - t_tune
    step = 0.05
    received = 0
    idx = 0
    t = arrivals[0][0]
    playing = False
    played = 0.0
    started = None
    stalls = 0
    stalled = 0.0
    stall_from = None
    stall_times = []
    while t < t_end:
        while idx < len(arrivals) and arrivals[idx][0] <= t:
            received += arrivals[idx][1]
            idx += 1
        buffered = received - played
        if not playing:
            need = START_AUDIO if started is None else RESUME_AUDIO
            if buffered >= need * BYTE_RATE:
                playing = True
                if started is None:
                    started = t - t_tune
                else:
                    stalled += t - stall_from
        else:
            want = step * BYTE_RATE
            if buffered >= want:
                played += want
            else:
                played += max(buffered, 0)
                if complete and idx == len(arrivals):
                    break
                playing = False
                stalls += 1
                stall_from = t
                stall_times.append(t - t_tune)
        t += step
    if not playing and started is not None and stall_from is not None:
        stalled += t_end - stall_from
    return first, started, stalls, stalled, stall_times


class Listener:
    def __init__(self, index, root, builddir, gateway, upload_limit, verbose=False):
        self.index = index
        self.home = os.path.join(root, f"listener{index:02d}")
        cfg = os.path.join(self.home, "config", "alluvium")
        os.makedirs(cfg, exist_ok=True)
        os.makedirs(os.path.join(self.home, "cache"), exist_ok=True)
        # every listener reaches the others from 127.0.0.1, so the peer
        # port's cap per client address (a household behind one NAT) would
        # count the whole swarm as one client
        with open(os.path.join(cfg, "core.conf"), "w") as f:
            f.write("[core]\nidle-timeout=0\npeer-address=127.0.0.1\nnat=off\n"
                    "peer-connections-per-address=4096\n"
                    f"upload-limit={upload_limit}\ngateway={gateway}\n")
        out = subprocess.run(["dbus-daemon", "--session", "--fork", "--print-address=1",
                              "--print-pid=2"], capture_output=True, text=True, check=True)
        self.bus = out.stdout.strip()
        self.bus_pid = int(out.stderr.strip())
        self.env = dict(os.environ, DBUS_SESSION_BUS_ADDRESS=self.bus,
                        XDG_CONFIG_HOME=os.path.join(self.home, "config"),
                        XDG_CACHE_HOME=os.path.join(self.home, "cache"),
                        GIO_USE_PROXY_RESOLVER="dummy", GSETTINGS_BACKEND="memory")
        if verbose:
            self.env["G_MESSAGES_DEBUG"] = "alluvium-core"
        self.core = Proc(f"core{index:02d}", [os.path.join(builddir, "core", "alluvium-core")],
                         env=self.env, logdir=self.home)
        self.t_tune = None
        self.reader = None
        self.stats = {}

    def gdbus(self, *args):
        return subprocess.run(["gdbus", "call", "--session", "--dest", "org.alluvium.Core1",
                               "--object-path", "/org/alluvium/Core1", "--method"] + list(args),
                              env=self.env, capture_output=True, text=True, timeout=30)

    def wait_ready(self):
        for _ in range(200):
            r = self.gdbus("org.freedesktop.DBus.Properties.Get", "org.alluvium.Core1", "State")
            if r.returncode == 0:
                return
            time.sleep(0.05)
        raise RuntimeError(f"listener {self.index}: the core did not start")

    def tune(self, playlist, stop_at):
        self.t_tune = time.time()
        r = self.gdbus("org.alluvium.Core1.Tune", playlist)
        m = re.search(r"'(http://[^']+)'", r.stdout)
        if r.returncode != 0 or m is None:
            raise RuntimeError(f"listener {self.index}: Tune failed: {r.stderr.strip()}")
        self.reader = Reader(m.group(1), stop_at)
        self.reader.start()

    def collect(self):
        r = self.gdbus("org.freedesktop.DBus.Properties.Get", "org.alluvium.Core1", "Statistics")
        for k, v in re.findall(r"'([a-z-]+)': <(?:uint64|uint32) (\d+)>", r.stdout):
            self.stats[k] = int(v)
        mem = 0
        try:
            with open(f"/proc/{self.core.p.pid}/status") as f:
                for line in f:
                    if line.startswith("VmHWM:"):
                        mem = int(line.split()[1])
        except OSError:
            pass
        self.stats["vm-hwm-kib"] = mem
        # CPU seconds of the core so far (utime + stime, /proc/PID/stat)
        try:
            with open(f"/proc/{self.core.p.pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            self.stats["cpu-s"] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, IndexError, ValueError):
            self.stats["cpu-s"] = 0.0

    def stop(self):
        self.core.stop()
        try:
            os.kill(self.bus_pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        reap(self.bus_pid)


# --- one scenario ------------------------------------------------------------

def scenario(name, args, root, media, sizes, swarm):
    """Runs the station once; returns (rows, summary)."""
    builddir = os.path.abspath(args.builddir)
    server = os.path.join(builddir, "server", "alluvium-server")
    work = os.path.join(root, name)
    os.makedirs(work)
    station = os.path.join(root, "station")
    model = DropTailOrigin if args.origin_model == "droptail" else FairOrigin
    origin_srv = model(station, work, args.origin_rate)
    origin = f"http://127.0.0.1:{origin_srv.port}/"
    gateway_port = free_port()
    gateway = f"http://127.0.0.1:{gateway_port}/"

    # the schedule: item 1 began --lead seconds before the first tune, and
    # the first tune comes once the playlist is written and every process
    # is up (the margin is generous: 16 cores start in a few seconds)
    t0 = time.time() + 20 + args.n * 0.3
    start = t0 - args.lead
    with open(os.path.join(work, "playlist.log"), "w") as f:
        run([server, "playlist", "--base-url", origin, "--root", station,
             "--title", "Bench Station", "--start", w3c(start),
             "-o", os.path.join(station, "station.rss")] + media, stdout=f, stderr=f)
    slots = [(start + i * args.seconds, start + (i + 1) * args.seconds) for i in range(len(media))]
    end = slots[-1][1] + 2

    procs = []
    listeners = []
    try:
        origin_srv.start()
        procs.append(Proc("gateway", [server, "gateway", "--docroot", station, "--base-url", origin,
                                      "--port", str(gateway_port), "--rate-limit=0",
                                      f"--block-size={args.block_size}",
                                      "--state-dir", os.path.join(work, "gateway-state")],
                          logdir=work))
        wait_http(origin + "station.rss")
        wait_http(gateway + "status")
        # the station prepares its items before their slots (from disk)
        for m in media:
            url = origin + "media/" + os.path.basename(m)
            for _ in range(100):
                if wait_http(gateway + "resolve?url=" + urllib.parse.quote(url, safe="")) == 200:
                    break
                time.sleep(0.2)
        origin_srv.mark()

        listeners = [Listener(i, work, builddir, gateway if swarm else "none",
                              args.peer_rate * BYTE_RATE, args.verbose) for i in range(args.n)]
        for li in listeners:
            li.wait_ready()
        rng = random.Random(args.seed)
        joins = sorted(rng.uniform(0, args.join_window) for _ in listeners)
        playlist = origin + "station.rss"
        if time.time() > t0:
            log(f"{name}: setting up took {time.time() - t0:.1f} s longer than planned")
        while time.time() < t0:
            time.sleep(0.05)
        log(f"{name}: {args.n} listeners tune in over {args.join_window:g} s; "
            f"the schedule ends in {end - time.time():.0f} s")
        for li, at in zip(listeners, joins):
            while time.time() < t0 + at:
                time.sleep(0.01)
            li.tune(playlist, end)
        next_report = time.time() + 15
        while time.time() < end:
            time.sleep(0.5)
            if time.time() >= next_report:
                next_report += 15
                log(f"{name}: {end - time.time():.0f} s to go, origin sent "
                    f"{origin_srv.progress() / 1e6:.2f} MB"
                    + (" (wire)" if origin_srv.model == "droptail" else ""))
        for li in listeners:
            li.reader.join(5)
            li.collect()
        origin_result = origin_srv.result(media) if origin_srv.model == "fair" else None
    finally:
        for li in listeners:
            li.stop()
        for p in procs:
            p.stop()
        origin_srv.stop()
    if origin_result is None:
        # nginx logs a request once it ends: read after everything stopped
        origin_result = origin_srv.result(media)
    served = origin_result["origin_bytes"]

    rows = []
    for li in listeners:
        complete = ends_with_item(li.reader.tail, media[-1])
        first, startup, stalls, stalled, stall_times = playback(
            li.reader.arrivals, li.t_tune, end - 2, complete)
        rows.append({
            "listener": li.index,
            "tune_at": round(li.t_tune - t0, 2),
            "first_byte_s": None if first is None else round(first, 3),
            "startup_s": None if startup is None else round(startup, 3),
            "stalls": stalls,
            "stall_s": round(stalled, 2),
            # the stream ended with the schedule's last bytes
            "complete": complete,
            # when each stall began, seconds after the first item's slot
            # start (item changes are at multiples of --seconds)
            "stall_at": [round(li.t_tune + s - start, 1) for s in stall_times],
            "from_origin": li.stats.get("bytes-from-origin", 0),
            "from_peers": li.stats.get("bytes-from-peers", 0),
            "uploaded": li.stats.get("bytes-uploaded", 0),
            "rejected": li.stats.get("blocks-rejected", 0),
            "vm_hwm_kib": li.stats.get("vm-hwm-kib", 0),
            "cpu_s": round(li.stats.get("cpu-s", 0.0), 2),
            "error": li.reader.error,
        })
    total = sum(sizes)
    startups = [r["startup_s"] if r["startup_s"] is not None else float(end - t0) for r in rows]
    summary = {
        "scenario": name,
        "listeners": args.n,
        "origin_bytes": served,
        "item_bytes": total,
        "origin_copies_per_item": round(served / total, 3),
        "origin_received_by_listeners": sum(r["from_origin"] for r in rows),
        "bytes_from_peers": sum(r["from_peers"] for r in rows),
        "startup_mean_s": round(statistics.mean(startups), 3),
        "startup_p95_s": round(sorted(startups)[max(0, int(round(0.95 * len(startups))) - 1)], 3),
        "stall_free": sum(1 for r in rows if r["stalls"] == 0 and r["startup_s"] is not None),
        "stall_free_fraction": round(sum(1 for r in rows if r["stalls"] == 0
                                         and r["startup_s"] is not None) / len(rows), 3),
        "stall_seconds": round(sum(r["stall_s"] for r in rows), 2),
        # streams that ended with the schedule's last bytes
        "played_out": sum(1 for r in rows if r["complete"]),
        # one core relaying the station: CPU share over the run, peak memory
        "core_cpu_percent_mean": round(100 * statistics.mean(r["cpu_s"] for r in rows) / (end - t0), 2),
        "core_vm_hwm_mib_max": round(max(r["vm_hwm_kib"] for r in rows) / 1024, 1),
    }
    summary.update((k, v) for k, v in origin_result.items() if k != "origin_bytes")
    if origin_srv.model == "droptail":
        summary["origin_wire_copies_per_item"] = round(origin_result["origin_wire_bytes"] / total, 3)
        print(f"\n{name}: origin (nginx log): {served} media body bytes in "
              f"{origin_result['origin_requests']} requests = {served / total:.3f} copies/item; "
              f"{origin_result['origin_other_body_bytes']} bytes in "
              f"{origin_result['origin_other_requests']} other requests (playlist)")
        print(f"{name}: origin (tc class 1:1, wire): {origin_result['origin_wire_bytes']} bytes = "
              f"{origin_result['origin_wire_bytes'] / total:.3f} copies/item, "
              f"{origin_result['origin_wire_packets']} packets, "
              f"{origin_result['origin_dropped_packets']} dropped, "
              f"{origin_result['origin_overlimits']} overlimits")
        print(f"{name}: tc -s class show dev lo (at the end):")
        print("\n".join("    " + line for line in origin_srv.tc_text.strip().splitlines()))
    return rows, summary


def print_rows(name, rows):
    print(f"\n{name}: per listener")
    print(f"{'#':>3} {'tune':>6} {'1st byte':>9} {'startup':>8} {'stalls':>6} {'stall s':>8} "
          f"{'origin kB':>10} {'peers kB':>9} {'up kB':>8} {'mem MiB':>8} {'cpu s':>6}")
    for r in rows:
        fb = "-" if r["first_byte_s"] is None else f"{r['first_byte_s']:.2f}"
        st = "-" if r["startup_s"] is None else f"{r['startup_s']:.2f}"
        print(f"{r['listener']:>3} {r['tune_at']:>6.1f} {fb:>9} {st:>8} {r['stalls']:>6} "
              f"{r['stall_s']:>8.1f} {r['from_origin'] / 1000:>10.0f} {r['from_peers'] / 1000:>9.0f} "
              f"{r['uploaded'] / 1000:>8.0f} {r['vm_hwm_kib'] / 1024:>8.1f} {r['cpu_s']:>6.1f}"
              + (f"  stalls at {', '.join(f'{s:g}' for s in r['stall_at'])} s" if r["stall_at"] else "")
              + (f"  error: {r['error']}" if r["error"] else ""))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--builddir", default=os.environ.get("BUILDDIR", "_build"))
    ap.add_argument("-n", "--listeners", dest="n", type=int, default=16)
    ap.add_argument("--items", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=60, help="length of each item (60-120)")
    ap.add_argument("--lead", type=float, default=10,
                    help="seconds the first item has been on air when the first listener tunes")
    ap.add_argument("--join-window", type=float, default=20)
    ap.add_argument("--origin-rate", type=float, default=4, help="origin uplink, times the bitrate")
    ap.add_argument("--peer-rate", type=float, default=2, help="listener uplink, times the bitrate")
    ap.add_argument("--origin-model", choices=("fair", "droptail"), default="fair",
                    help="fair: the script's own fair-queued origin; droptail: nginx behind a "
                         "tc drop-tail cap in a private network namespace (needs root and nginx)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--video", action="store_true",
                    help="a 1 Mbit/s WebM video station (VP8 + Opus) instead of 128 kbit/s MP3")
    ap.add_argument("--block-size", type=int, default=8192, help="the gateway's block size (its default: 8192)")
    ap.add_argument("--skip-baseline", action="store_true")
    ap.add_argument("--keep", action="store_true", help="keep the work directory (logs)")
    ap.add_argument("--verbose", action="store_true", help="debug logs of every core (with --keep)")
    args = ap.parse_args()
    if args.video:
        global BITRATE, BYTE_RATE
        BITRATE = VIDEO_BITRATE
        BYTE_RATE = BITRATE // 8
    for tool in ("gst-launch-1.0", "dbus-daemon", "gdbus"):
        if shutil.which(tool) is None:
            sys.exit(f"bench-swarm: {tool} is needed")
    if args.origin_model == "droptail":
        if os.environ.get(NETNS_MARK) != "1":
            reexec_in_netns()
        if not in_private_netns():
            sys.exit("bench-swarm: not in a private network namespace; not touching lo")
        netns_setup()

    def terminate(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")
    # as PID 1 of its namespace, the script would ignore a SIGTERM it has
    # no handler for; with one, every process is stopped on the way out
    signal.signal(signal.SIGTERM, terminate)
    root = tempfile.mkdtemp(prefix="alluvium-bench-")
    try:
        station = os.path.join(root, "station")
        log(f"bench-swarm: making {args.items} items of {args.seconds:g} s in {station}")
        if args.video:
            media = make_video_media(os.path.join(station, "media"), args.items, args.seconds)
        else:
            media = make_media(os.path.join(station, "media"), args.items, args.seconds, args.seed)
        sizes = [os.path.getsize(m) for m in media]
        kind = "WebM video (VP8 + Opus)" if args.video else "MP3"
        print(f"station: {args.items} items of {args.seconds:g} s of {kind} at {BITRATE // 1000} kbit/s "
              f"(measured {sum(sizes) * 8 / (args.items * args.seconds) / 1000:.0f} kbit/s, "
              f"{sum(sizes)} bytes); {args.n} listeners joining over {args.join_window:g} s "
              f"(seed {args.seed})")
        if args.origin_model == "droptail":
            cap = (f"nginx, capped by tc on a private loopback (htb {int(args.origin_rate * BITRATE)} bit/s "
                   f"on the wire, drop-tail bfifo of ~1 s)")
        else:
            cap = (f"{int(args.origin_rate * BYTE_RATE)} body bytes/s, capped by the benchmark's own "
                   f"origin (fair between connections)")
        print(f"origin uplink: {args.origin_rate:g}x the bitrate, {cap}; "
              f"listener uplink: {args.peer_rate:g}x the bitrate, the core's own upload-limit; "
              f"blocks of {args.block_size} bytes")
        results = []
        scenarios = [("alluvium", True)] + ([] if args.skip_baseline else [("baseline", False)])
        for name, swarm in scenarios:
            rows, summary = scenario(name, args, root, media, sizes, swarm)
            print_rows(name, rows)
            results.append(summary)
        print(f"\n{'summary':<20}" + "".join(f"{s['scenario']:>14}" for s in results))
        lines = [("origin_copies_per_item", "origin copies/item"),
                 ("startup_mean_s", "startup mean s"),
                 ("startup_p95_s", "startup p95 s"),
                 ("stall_free", "stall-free"),
                 ("stall_seconds", "stall seconds"),
                 ("played_out", "played to the end"),
                 ("core_cpu_percent_mean", "core CPU % (mean)"),
                 ("core_vm_hwm_mib_max", "core peak MiB (max)"),
                 ("bytes_from_peers", "bytes from peers")]
        if args.origin_model == "droptail":
            lines += [("origin_bytes", "origin body bytes"),
                      ("origin_wire_bytes", "origin wire bytes"),
                      ("origin_wire_copies_per_item", "wire copies/item"),
                      ("origin_dropped_packets", "origin drops (pkt)")]
        for key, label in lines:
            cells = (f"{s[key]}/{s['listeners']}" if key in ("stall_free", "played_out") else str(s[key])
                     for s in results)
            print(f"{label:<20}" + "".join(f"{c:>14}" for c in cells))
        print(json.dumps({"bench": "swarm", "media": "webm-video" if args.video else "mp3",
                          "bitrate": BITRATE, "origin_rate_x": args.origin_rate,
                          "peer_rate_x": args.peer_rate, "origin_model": args.origin_model,
                          "rate_limit": ("nginx behind a tc htb cap with a drop-tail bfifo"
                                         if args.origin_model == "droptail" else
                                         "rate-limiting origin (fair share per connection)"),
                          "block_size": args.block_size,
                          "results": results}))
    finally:
        if args.keep:
            log(f"bench-swarm: logs kept in {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
