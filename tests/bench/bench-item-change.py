#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""The local stream across an item change, as a player reads it.

One station of two back-to-back MP3 items at a given bitrate (320 kbit/s
by default), served by `alluvium-server gateway --docroot` on 127.0.0.1,
one `alluvium-core` on a private session bus, tuned as the first item
begins; a raw reader records when each chunk of the local stream arrives.
It prints the longest pause between chunks in the whole run and around
the item change, the bytes received per second of the run, and the
stream's lead over real time (how far ahead of the schedule the stream
is, from the bytes received and the bitrate).  A player with a buffer of
B seconds underruns when a pause is longer than its lead.

    tests/bench/bench-item-change.py --builddir _build
    tests/bench/bench-item-change.py --builddir _build --bitrate 128 --seconds 8

Everything runs on loopback; every process started is stopped by its
PID; the temporary directory is removed unless --keep.
"""

import argparse
import datetime
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, **kw)


def encode(path, seconds, bitrate, freq):
    buffers = int(seconds * 44100 / 1152) + 1
    run(["gst-launch-1.0", "-q", "audiotestsrc", f"num-buffers={buffers}", "samplesperbuffer=1152",
         f"freq={freq}", "!", "audio/x-raw,rate=44100,channels=2", "!",
         "lamemp3enc", "target=bitrate", f"bitrate={bitrate}", "cbr=true", "!",
         "filesink", f"location={path}"])


def wait_file(path, proc, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if os.path.exists(path) and os.path.getsize(path) > 0:
            return True
        if proc.poll() is not None:
            return False
        time.sleep(0.05)
    return False


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--builddir", default="_build")
    ap.add_argument("--bitrate", type=int, default=320, help="kbit/s (320)")
    ap.add_argument("--seconds", type=float, default=10.0, help="length of each item (10)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = ap.parse_args()

    build = os.path.abspath(args.builddir)
    server = os.path.join(build, "server", "alluvium-server")
    core = os.path.join(build, "core", "alluvium-core")
    tmp = tempfile.mkdtemp(prefix="alv-item-change-")
    procs = []
    try:
        www = os.path.join(tmp, "www")
        media = os.path.join(www, "media")
        os.makedirs(media)
        encode(os.path.join(media, "a.mp3"), args.seconds, args.bitrate, 440)
        encode(os.path.join(media, "b.mp3"), args.seconds, args.bitrate, 660)

        ready = os.path.join(tmp, "ready")
        gw = subprocess.Popen([server, "gateway", "--docroot", www, "--port", "0",
                               "--state-dir", os.path.join(tmp, "state"), "--ready-file", ready],
                              stdout=subprocess.DEVNULL, stderr=open(os.path.join(tmp, "gateway.log"), "w"))
        procs.append(gw)
        if not wait_file(ready, gw, 10):
            sys.exit("the gateway did not start")
        base = open(ready).read().strip()

        # the first item starts in 3 s, the second right after it
        start = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=3)
        run([server, "playlist", "--base-url", base, "--root", www, "--no-urn",
             "--start", start.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
             "-o", os.path.join(www, "station.rss"),
             os.path.join(media, "a.mp3"), os.path.join(media, "b.mp3")],
            stderr=subprocess.DEVNULL)

        bus_out = subprocess.run(["dbus-daemon", "--session", "--fork", "--print-address=1",
                                  "--print-pid=1"], check=True, capture_output=True, text=True).stdout
        bus_addr, bus_pid = bus_out.split("\n")[:2]
        procs.append(int(bus_pid))
        env = dict(os.environ, DBUS_SESSION_BUS_ADDRESS=bus_addr,
                   XDG_CONFIG_HOME=os.path.join(tmp, "config"), XDG_CACHE_HOME=os.path.join(tmp, "cache"))
        os.makedirs(os.path.join(tmp, "config", "alluvium"))
        with open(os.path.join(tmp, "config", "alluvium", "core.conf"), "w") as f:
            f.write("[core]\nidle-timeout=0\npeer-address=127.0.0.1\nnat=off\n")
        core_log = open(os.path.join(tmp, "core.log"), "w")
        c = subprocess.Popen([core], env=env, stdout=core_log, stderr=core_log)
        procs.append(c)
        out = None
        for _ in range(100):
            r = subprocess.run(["gdbus", "call", "--session", "--dest", "org.alluvium.Core1",
                                "--object-path", "/org/alluvium/Core1", "--method",
                                "org.alluvium.Core1.Tune", base + "station.rss"],
                               env=env, capture_output=True, text=True)
            if r.returncode == 0:
                out = r.stdout
                break
            time.sleep(0.1)
        if out is None:
            sys.exit("could not tune the core")
        url = out.strip().strip("(),'")
        host, rest = url[len("http://"):].split(":", 1)
        port = int(rest.split("/", 1)[0])

        # read until the second item's slot is over
        end_at = start.timestamp() + 2 * args.seconds + 1
        sock = socket.create_connection((host, port))
        sock.sendall(b"GET /stream HTTP/1.0\r\n\r\n")
        sock.settimeout(0.2)
        t0 = time.time()
        arrivals = []
        total = 0
        head_done = False
        buf = b""
        while time.time() < end_at:
            try:
                data = sock.recv(65536)
            except socket.timeout:
                continue
            if not data:
                break
            now = time.time()
            if not head_done:
                buf += data
                if b"\r\n\r\n" not in buf:
                    continue
                data = buf.split(b"\r\n\r\n", 1)[1]
                head_done = True
            total += len(data)
            arrivals.append((now, total))
        sock.close()

        change = start.timestamp() + args.seconds
        rate = args.bitrate * 1000 / 8
        gaps = [(arrivals[i][0] - arrivals[i - 1][0], arrivals[i - 1][0])
                for i in range(1, len(arrivals))]
        near = [g for g in gaps if change - 5 <= g[1] <= change + 2]
        worst = max(gaps) if gaps else (0, 0)
        worst_near = max(near) if near else (0, 0)
        print(f"bitrate {args.bitrate} kbit/s, items of {args.seconds:.0f} s, change at "
              f"+{change - t0:.1f} s after the reader connected")
        print(f"longest pause: {worst[0]:.2f} s (at +{worst[1] - t0:.1f} s)")
        print(f"longest pause within 5 s before to 2 s after the change: {worst_near[0]:.2f} s "
              f"(at +{worst_near[1] - t0:.1f} s)")
        # the lead: bytes received beyond what real time has played since the first byte
        if arrivals:
            first = arrivals[0][0]
            leads = [(b / rate) - (t - first) for t, b in arrivals]
            at_change = [lead for (t, _), lead in zip(arrivals, leads) if abs(t - change) < 1.0]
            print(f"lead over real time: min {min(leads):.2f} s, max {max(leads):.2f} s"
                  + (f", at the change {min(at_change):.2f} s" if at_change else ""))
        for g, at in sorted(gaps, reverse=True)[:3]:
            received = next(b for t, b in arrivals if t >= at)
            print(f"  pause {g:.2f} s at {at - change:+.2f} s from the change, "
                  f"after {received / rate:.2f} s of audio")
        print(f"RESULT pause_max={worst[0]:.3f} pause_change={worst_near[0]:.3f}")
    finally:
        for p in reversed(procs):
            if isinstance(p, int):
                try:
                    os.kill(p, signal.SIGTERM)
                except ProcessLookupError:
                    pass
            else:
                p.terminate()
                try:
                    p.wait(5)
                except subprocess.TimeoutExpired:
                    p.kill()
        if args.keep:
            print("kept", tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
