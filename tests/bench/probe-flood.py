#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Floods a gateway with idle connections, as a hostile client would.

Starts `alluvium-server gateway` under a descriptor limit (1024, what a
system service gets by default), opens N idle TCP connections from
127.0.0.1, then measures:
  - during: whether, and how fast, a GET /status from 127.0.0.2 is answered
  - after:  once every flood connection is closed, how long until a GET
            /status from 127.0.0.1 is answered again
Prints one RESULT line.  Loopback only; the gateway is stopped by PID.

  tests/bench/probe-flood.py --builddir _build [-n 1029] [--limit 1024]
      [-- extra gateway options, e.g. --max-connections=4000]
"""
import argparse
import os
import resource
import socket
import subprocess
import sys
import time


def get_status(port, source, timeout):
    start = time.monotonic()
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=timeout,
                                     source_address=(source, 0))
        s.settimeout(timeout)
        s.sendall(b"GET /status HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        data = s.recv(64)
        s.close()
        if data.startswith(b"HTTP/1.1 200"):
            return time.monotonic() - start
    except OSError:
        pass
    return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--builddir", default="_build")
    ap.add_argument("-n", type=int, default=1029)
    ap.add_argument("--limit", type=int, default=1024)
    ap.add_argument("--after-timeout", type=float, default=30.0)
    ap.add_argument("--settle", type=float, default=1.0,
                    help="seconds the gateway gets to take the flood")
    ap.add_argument("extra", nargs="*")
    args = ap.parse_args()

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, args.n + 256)), hard))

    def limit():
        resource.setrlimit(resource.RLIMIT_NOFILE, (args.limit, args.limit))

    exe = os.path.join(args.builddir, "server", "alluvium-server")
    gw = subprocess.Popen([exe, "gateway", "--port=0", "--rate-limit=0"] + args.extra,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          preexec_fn=limit, text=True)
    try:
        line = gw.stdout.readline()
        port = int(line.strip().rsplit(":", 1)[1].rstrip("/"))
        flood = []
        fds = -1
        # one after the other, each waiting for its handshake, as a simple
        # client would (bounded: a connect that does not complete in 2 s is
        # given up)
        for _ in range(args.n):
            try:
                s = socket.create_connection(("127.0.0.1", port), timeout=2.0)
                flood.append(s)
            except OSError:
                pass
        time.sleep(args.settle)  # let the gateway take what it will
        fds = len(os.listdir("/proc/%d/fd" % gw.pid))
        during = get_status(port, "127.0.0.2", 5.0)
        for s in flood:
            s.close()
        closed_at = time.monotonic()
        after = None
        while time.monotonic() - closed_at < args.after_timeout:
            if get_status(port, "127.0.0.1", 1.0) is not None:
                after = time.monotonic() - closed_at
                break
            time.sleep(0.05)
    finally:
        gw.terminate()
        try:
            _, err = gw.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            gw.kill()
            _, err = gw.communicate()
    log_lines = [l for l in err.splitlines() if "accept" in l or "refused a connection" in l]
    fmt = lambda v: "none" if v is None else "%.3f" % v
    print("RESULT flood=%d connected=%d limit=%d gateway_fds_during=%d during_127.0.0.2=%s "
          "served_again_after_close=%s log_lines=%d"
          % (args.n, len(flood), args.limit, fds, fmt(during), fmt(after), len(log_lines)))
    for l in log_lines[:3]:
        print("  log: " + l)
    return 0


if __name__ == "__main__":
    sys.exit(main())
