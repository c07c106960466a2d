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
    import ctypes, gc, os, struct, threading, time
    import zmq
    from horde.master.process import GC_THRESHOLDS, IO_SLICE_NS, Scheduling, tune_process
    tune_process()
    ctx = zmq.Context()
    sock = ctx.socket(zmq.ROUTER)  # starts libzmq's I/O thread, which names itself
    io, deadline = [], time.monotonic() + 5
    while not io and time.monotonic() < deadline:
        io = [int(task) for task in os.listdir("/proc/self/task")
              if open(f"/proc/self/task/{task}/comm").read().startswith("ZMQbg/IO")]
        time.sleep(0.01)
    def policies():
        seen = {}
        t = threading.Thread(target=lambda: seen.update(policy=os.sched_getscheduler(0)))
        t.start(); t.join()
        mine = [os.sched_getscheduler(0), *map(os.sched_getscheduler, io), seen["policy"]]
        return {p == os.SCHED_BATCH for p in mine}
    def slices():
        out = []
        for tid in io:
            buf = ctypes.create_string_buffer(48)
            assert libc.syscall(315, tid, buf, 48, 0) == 0  # sched_getattr (x86_64)
            out.append(struct.unpack("IIQiIQQQ", buf.raw)[5])
        return out
    libc = ctypes.CDLL(None, use_errno=True)
    scheduling = Scheduling()
    scheduling.start()
    before = policies()
    short = slices()
    scheduling.update("loop", fast=True)
    fast = policies()
    scheduling.update("loop", fast=False)
    honoured = tuple(map(int, os.uname().release.split(".")[:2])) >= (6, 12)
    print(before == {False}, fast == {True}, policies() == {False}, len(io),
          gc.get_threshold() == GC_THRESHOLDS, gc.get_freeze_count() > 1000,
          short == slices() == [IO_SLICE_NS] if honoured else short == slices())
    sock.close(); ctx.term()
    """
)


def test_master_scheduling_reaches_libzmqs_io_thread() -> None:
    """While frames arrive fast every thread (libzmq's I/O thread too) runs batch-scheduled;
    slower, under the normal policy, the I/O thread with a short time slice."""
    out = subprocess.run(
        [sys.executable, "-c", TUNED], capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout.split() == ["True", "True", "True", "1", "True", "True", "True"], out.stderr


def test_scheduling_changes_only_when_the_process_wide_answer_does() -> None:
    """Batch while any loop is fast; the policy is applied on changes only."""
    from horde.master.process import Scheduling

    applied: list[bool] = []
    scheduling = Scheduling(applied.append)
    for loop, fast in [("a", False), ("a", True), ("b", True), ("a", False), ("a", False)]:
        scheduling.update(loop, fast=fast)
    assert applied == [True] and scheduling.batch
    scheduling.update("b", fast=False)
    assert applied == [True, False] and not scheduling.batch
