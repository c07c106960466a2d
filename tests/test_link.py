"""Dead-link detection in the kernel, and the master's process-wide tuning."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import zmq

from horde.master.transport import RouterTransport
from horde.protocol.link import DEAD_LINK_SECONDS, LINK_OPTIONS, apply_link_options


def test_link_options_drop_a_silent_peer_in_the_kernel_not_by_zmtp_pings() -> None:
    """The master's socket and any socket given the options use keepalive and a user timeout."""
    transport = RouterTransport("tcp://127.0.0.1:0", max_frame=1024)
    transport.open()
    dealer = zmq.Context.instance().socket(zmq.DEALER)
    try:
        apply_link_options(dealer, zmq)
        for sock in (transport._socket, dealer):
            assert sock is not None
            for name, value in LINK_OPTIONS:
                assert sock.getsockopt(getattr(zmq, name)) == value
            assert sock.getsockopt(zmq.HEARTBEAT_IVL) == 0  # no PING/PONG in libzmq's thread
            idle = sock.getsockopt(zmq.TCP_KEEPALIVE_IDLE)
            probes = sock.getsockopt(zmq.TCP_KEEPALIVE_INTVL) * sock.getsockopt(
                zmq.TCP_KEEPALIVE_CNT
            )
            assert idle + probes == DEAD_LINK_SECONDS
            assert sock.getsockopt(zmq.TCP_MAXRT) == DEAD_LINK_SECONDS * 1000
    finally:
        dealer.close(linger=0)
        transport.close()


TUNED = textwrap.dedent(
    """
    import gc, os, threading
    import zmq
    from horde.master.process import GC_THRESHOLDS, tune_process
    tune_process()
    ctx = zmq.Context()
    sock = ctx.socket(zmq.ROUTER)  # starts libzmq's I/O thread
    seen = {}
    t = threading.Thread(target=lambda: seen.update(policy=os.sched_getscheduler(0)))
    t.start(); t.join()
    io = [task for task in os.listdir("/proc/self/task")
          if open(f"/proc/self/task/{task}/comm").read().startswith("ZMQbg/IO")]
    print(os.sched_getscheduler(0) == os.SCHED_BATCH, seen["policy"] == os.SCHED_BATCH,
          all(os.sched_getscheduler(int(task)) == os.SCHED_BATCH for task in io), len(io),
          gc.get_threshold() == GC_THRESHOLDS, gc.get_freeze_count() > 1000)
    sock.close(); ctx.term()
    """
)


def test_master_process_tuning_reaches_libzmqs_io_thread() -> None:
    """After tune_process, new threads (libzmq's I/O thread too) run batch-scheduled."""
    out = subprocess.run(
        [sys.executable, "-c", TUNED], capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout.split() == ["True", "True", "True", "1", "True", "True"], out.stderr
