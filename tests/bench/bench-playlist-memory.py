#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""What a large or hostile playlist costs a real alluvium-core, in RSS.

One `alluvium-core` on a private session bus (gateway=none, no idle exit)
is tuned to a playlist served from memory on 127.0.0.1, then stopped; its
VmRSS is read from /proc before the Tune, after it and after the Stop.
Playlists: one item first (what the first Tune costs whatever the playlist:
libraries paged in, the HTTP session), then 300 000 comments around one
item (2.7 MB), then 10 000 items of one second each (1.5 MB).  The items lie in the future, so nothing is
downloaded: what is measured is the playlist alone.  A manual check, not a
test: RSS depends on the allocator and the machine.

    tests/bench/bench-playlist-memory.py --builddir _build
"""
import argparse
import datetime
import http.server
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

HEAD = ('<?xml version="1.0" encoding="utf-8"?>\n'
        '<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"\n'
        ' xmlns="http://purl.org/rss/1.0/"'
        ' xmlns:ev="http://purl.org/rss/1.0/modules/event/">\n'
        '<channel rdf:about="http://127.0.0.1/"><title>Bench</title></channel>\n')


def item(i, start):
    s = start + datetime.timedelta(seconds=i)
    e = s + datetime.timedelta(seconds=1)
    fmt = "%Y-%m-%dT%H:%M:%SZ"
    return (f'<item rdf:about="http://127.0.0.1:9/{i}.mp3">'
            f'<ev:startdate>{s.strftime(fmt)}</ev:startdate>'
            f'<ev:enddate>{e.strftime(fmt)}</ev:enddate></item>\n')


def playlists():
    start = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0) \
        + datetime.timedelta(days=1)
    comments = HEAD + item(0, start) + "<!--c-->\n" * 300000 + "</rdf:RDF>\n"
    items = HEAD + "".join(item(i, start) for i in range(10000)) + "</rdf:RDF>\n"
    small = HEAD + item(0, start) + "</rdf:RDF>\n"
    return {"1 item": small.encode(), "300000 comments": comments.encode(),
            "10000 items": items.encode()}


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def gdbus(env, method, *args):
    return subprocess.run(["gdbus", "call", "--session", "--dest", "org.alluvium.Core1",
                           "--object-path", "/org/alluvium/Core1", "--method",
                           "org.alluvium.Core1." + method, *args],
                          env=env, capture_output=True, text=True, timeout=60)


def stop(core, bus_pid):
    """Ends the core (SIGTERM, then SIGKILL after 5 s), then its bus."""
    if core is not None and core.poll() is None:
        core.send_signal(signal.SIGTERM)
        try:
            core.wait(5)
        except subprocess.TimeoutExpired:
            core.kill()
            core.wait()
    if bus_pid:
        try:
            os.kill(int(bus_pid), signal.SIGTERM)
        except ProcessLookupError:
            pass


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--builddir", default="_build")
    ap.add_argument("--settle", type=float, default=2.0,
                    help="seconds to wait before each reading (2)")
    args = ap.parse_args()

    core = os.path.join(os.path.abspath(args.builddir), "core", "alluvium-core")
    docs = playlists()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = docs.get(self.path.strip("/").replace("-", " "))
            if body is None:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/x-alluvium")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *a):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{httpd.server_address[1]}/"

    tmp = tempfile.mkdtemp(prefix="alv-playlist-memory-")
    c = bus_pid = None
    try:
        bus_out = subprocess.run(["dbus-daemon", "--session", "--fork", "--print-address=1",
                                  "--print-pid=1"], check=True, capture_output=True,
                                 text=True).stdout
        bus_addr, bus_pid = bus_out.split("\n")[:2]
        env = dict(os.environ, DBUS_SESSION_BUS_ADDRESS=bus_addr,
                   XDG_CONFIG_HOME=os.path.join(tmp, "config"),
                   XDG_CACHE_HOME=os.path.join(tmp, "cache"))
        os.makedirs(os.path.join(tmp, "config", "alluvium"))
        with open(os.path.join(tmp, "config", "alluvium", "core.conf"), "w") as f:
            f.write("[core]\nidle-timeout=0\ngateway=none\npeer-address=127.0.0.1\nnat=off\n")
        c = subprocess.Popen([core], env=env, stdout=subprocess.DEVNULL,
                             stderr=open(os.path.join(tmp, "core.log"), "w"))
        for _ in range(100):
            if gdbus(env, "Stop").stderr.find("ServiceUnknown") < 0:
                break
            time.sleep(0.1)
        time.sleep(args.settle)
        print(f"core at start: {rss_kib(c.pid) / 1024:.1f} MiB")
        for name, body in docs.items():
            before = rss_kib(c.pid)
            r = gdbus(env, "Tune", base + name.replace(" ", "-"))
            if r.returncode != 0:
                sys.exit(f"Tune failed: {r.stderr.strip()}")
            time.sleep(args.settle)
            tuned = rss_kib(c.pid)
            gdbus(env, "Stop")
            time.sleep(args.settle)
            stopped = rss_kib(c.pid)
            print(f"{name} ({len(body) / 1e6:.1f} MB): before Tune {before / 1024:.1f} MiB, "
                  f"tuned {tuned / 1024:.1f} MiB, after Stop {stopped / 1024:.1f} MiB")
    finally:
        stop(c, bus_pid)
        httpd.shutdown()
        shutil.rmtree(tmp, ignore_errors=True)

if __name__ == "__main__":
    main()
