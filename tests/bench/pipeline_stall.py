"""How long one client that pipelines executions without reading the
answers can stall the other sessions of its proxy worker.

Starts the security stack (PostgreSQL 15, warden-control with audit, one
warden-proxy with one worker and the example policies), runs four probe
sessions that each send `SELECT 1` every 0.1 s on the dev listener, then
one session sends Parse + N (Bind, Execute) pairs without a Sync and
without reading, waits 2 s and closes. Prints how many executions the
client got into its socket, and the probes' five worst latencies.

Usage: /usr/bin/python3 tests/bench/pipeline_stall.py [N] (default 400000)
"""

import os
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "security"))

from stack import Stack, rawpg  # noqa: E402


def main():
    n_total = int(sys.argv[1]) if len(sys.argv) > 1 else 400000
    stack = Stack("warden-bench-stall-").start()
    try:
        latencies = []
        stop = threading.Event()
        t0 = time.time()

        def probe(tag):
            conn = stack.raw("dev")
            while not stop.is_set():
                sent = time.time()
                conn.simple_query("SELECT 1")
                latencies.append((sent - t0, tag, time.time() - sent))
                time.sleep(0.1)
            conn.close()

        probes = [threading.Thread(target=probe, args=(i,)) for i in range(4)]
        for p in probes:
            p.start()
        time.sleep(1)
        attacker = stack.raw("dev")
        attacker.send(rawpg.parse(b"SELECT 1"))
        chunk = (rawpg.bind() + rawpg.execute()) * 1000
        attacker.sock.settimeout(3)
        sent = 0
        try:
            while sent < n_total:
                attacker.send(chunk)
                sent += 1000
        except OSError:
            pass  # the socket stayed full for 3 s: the proxy stopped reading
        print("client got %d executions into its socket by t=%.1f s" % (sent, time.time() - t0))
        time.sleep(2)
        attacker.close()
        print("client closed at t=%.1f s" % (time.time() - t0))
        time.sleep(8)
        stop.set()
        for p in probes:
            p.join()
        worst = sorted(latencies, key=lambda x: -x[2])[:5]
        print("%d probe queries; worst latencies (sent at t, probe, seconds): %s" % (
            len(latencies), [(round(a, 1), b, round(c, 2)) for a, b, c in worst]))
    finally:
        stack.stop()


if __name__ == "__main__":
    main()
