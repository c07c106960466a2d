"""Why a master's RSS climbs for its first minutes and then stays flat: libzmq's queues.

libzmq queues each peer's messages, each way, in chunks of 256 messages and keeps a
spare chunk; the kernel maps a chunk's pages as messages first reach them. This script
connects ``--pairs`` DEALER sockets to one ROUTER in this process, passes ``--rounds``
round trips through every pair and prints the process's RSS every 100 rounds: it climbs
until every queue has seen 512 messages, then stays flat.

Not a test and not one of ``make bench``'s goals; it explains the soak's warm-up
(``bench/master_capacity.py --soak``).
"""

from __future__ import annotations

import argparse
import resource

import zmq


def rss_mb() -> float:
    """This process's resident set size in MiB."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * resource.getpagesize() / 2**20


def main(argv: list[str] | None = None) -> None:
    """Pass round trips through ROUTER-DEALER pairs and print RSS as they go."""
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--pairs", type=int, default=1000)
    p.add_argument("--rounds", type=int, default=1500)
    args = p.parse_args(argv)
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    ctx = zmq.Context()
    ctx.set(zmq.MAX_SOCKETS, args.pairs + 16)
    router = ctx.socket(zmq.ROUTER)
    port = router.bind_to_random_port("tcp://127.0.0.1")
    dealers = []
    for i in range(args.pairs):
        dealer = ctx.socket(zmq.DEALER)
        dealer.setsockopt(zmq.IDENTITY, f"w{i}".encode())
        dealer.connect(f"tcp://127.0.0.1:{port}")
        dealers.append(dealer)
    try:
        for rnd in range(args.rounds + 1):
            if rnd % 100 == 0:
                print(f"round {rnd:5d}: {rnd} messages through each queue, RSS {rss_mb():.0f} MiB")
            for dealer in dealers:
                dealer.send(b"x" * 40)
            for _ in dealers:
                identity, _payload = router.recv_multipart()
                router.send_multipart([identity, b"y" * 40])
            for dealer in dealers:
                dealer.recv()
    finally:
        for sock in (*dealers, router):
            sock.close(linger=0)
        ctx.term()


if __name__ == "__main__":
    main()
