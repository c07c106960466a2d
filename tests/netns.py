"""Throwaway multi-host networks for process tests, built from Linux network namespaces.

:func:`network` creates one namespace per host plus a *switch* namespace holding a Linux
bridge, and always removes them again (after stopping, by PID, every process it started
in them). Each host has ``lo`` and one interface, ``eth0``, a veth whose peer is a port of
the bridge; hosts get ``10.X.0.1``, ``10.X.0.2``, ... in a private ``10.X.0.0/24`` (X
random in 200-250). The switch namespace has no IP address, so it never answers, routes
or rejects anything: it only forwards frames between its ports. Names start with
``hz<test pid>-`` so that parallel runs and leftovers of crashed runs cannot collide.

A **cut** detaches the host's port from the bridge (``ip link set PORT nomaster`` in the
switch). Both ends of the veth stay up with carrier, so the host's sends succeed and its
packets simply vanish, in both directions: no RST, no ICMP, no ``ENETUNREACH``. The
host's TCP connections go silent and survive; **restore** re-attaches the port and they
resume after TCP's retransmission back-off. This is the harder partition to handle (a
switch or firewall dropping traffic): the peers learn of it only by time, through
heartbeats and leases. Setting a link down instead would hand the host an immediate
local error (no carrier, unreachable network), a different and easier failure.

``ip netns exec NS CMD`` execs ``CMD`` (it forks only in batch mode), so the PID a
:meth:`Network.start` returns is the process itself, and stopping it by PID stops the
program, not a wrapper. The test process reaches services inside a namespace with
:meth:`Network.call`, which runs a function in a thread that has entered that namespace
(``setns(2)`` changes only the calling thread's network namespace), so all traffic stays
inside the namespaces created here.

Requires root (CAP_SYS_ADMIN and CAP_NET_ADMIN), ``ip`` from iproute2 and the kernel's
veth and bridge drivers; :func:`unavailable` says which is missing.
"""

from __future__ import annotations

import ctypes
import os
import random
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from tests.support import Processes

T = TypeVar("T")

CLONE_NEWNET = 0x40000000
NETNS_DIR = Path("/run/netns")
#: A host name becomes part of an interface name (``p-NAME``, at most 15 characters).
HOST_NAME = re.compile(r"[a-z][a-z0-9]{0,11}")
COMMAND_TIMEOUT = 10.0


class NetnsError(RuntimeError):
    """An ``ip`` command failed; the message names the command and its error output."""


def ip(*args: str) -> None:
    """Run ``ip ARGS``; raise :class:`NetnsError` with its stderr if it fails."""
    argv = ["ip", *args]
    try:
        done = subprocess.run(
            argv, capture_output=True, text=True, timeout=COMMAND_TIMEOUT, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise NetnsError(f"{' '.join(argv)}: {exc}") from exc
    if done.returncode != 0:
        raise NetnsError(f"{' '.join(argv)}: exit {done.returncode}: {done.stderr.strip()}")


def unavailable() -> str | None:
    """Why namespaced networks cannot be built here, or ``None`` if they can."""
    if sys.platform != "linux":
        return f"network namespaces need Linux, this is {sys.platform}"
    if os.geteuid() != 0:
        return "network namespaces need root (ip netns add); run as root or in CI"
    if shutil.which("ip") is None:
        return "the ip command (iproute2) is not installed"
    probe = f"hz{os.getpid()}-probe"
    try:
        ip("netns", "add", probe)
    except NetnsError as exc:
        return f"cannot create a network namespace: {exc}"
    try:
        ip("-n", probe, "link", "add", "br0", "type", "bridge")
        ip("-n", probe, "link", "add", "v0", "type", "veth", "peer", "name", "v1")
    except NetnsError as exc:
        return f"the kernel lacks bridge or veth support: {exc}"
    finally:
        _delete_namespace(probe)
    return None


def _delete_namespace(name: str) -> None:
    # Deleting a namespace deletes its interfaces, and a veth dies with either end.
    try:
        ip("netns", "del", name)
    except NetnsError as exc:
        print(f"netns cleanup: {exc}")


def _enter(namespace: str) -> None:
    """Move the calling thread into network namespace ``namespace``."""
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(NETNS_DIR / namespace, os.O_RDONLY)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            errno = ctypes.get_errno()
            raise OSError(errno, f"setns into {namespace}: {os.strerror(errno)}")
    finally:
        os.close(fd)


@dataclass
class Host:
    """One host: its namespace, its address and its port on the switch."""

    name: str
    namespace: str
    address: str
    port: str
    executor: ThreadPoolExecutor | None = None


@dataclass
class Network:
    """Hosts on one switch; starts processes in them and cuts and restores their links."""

    prefix: str
    subnet: str
    switch: str
    procs: Processes
    hosts: dict[str, Host] = field(default_factory=dict)

    def address(self, host: str) -> str:
        """The IPv4 address of ``host``."""
        return self.hosts[host].address

    def start(
        self, host: str, *argv: str, env: dict[str, str] | None = None
    ) -> subprocess.Popen[str]:
        """Start ``argv`` on ``host``; the returned PID is the program's own."""
        return self.procs.start("ip", "netns", "exec", self.hosts[host].namespace, *argv, env=env)

    def horde(self, host: str, *args: str) -> subprocess.Popen[str]:
        """Start ``python -m horde ARGS`` on ``host``."""
        return self.start(host, sys.executable, "-m", "horde", *args)

    def output(self, proc: subprocess.Popen[str]) -> str:
        """Everything ``proc`` printed so far."""
        return self.procs.output(proc)

    def call(self, host: str, fn: Callable[..., T], *args: object, timeout: float = 30) -> T:
        """Run ``fn(*args)`` in a thread inside ``host``'s network namespace."""
        record = self.hosts[host]
        if record.executor is None:
            record.executor = ThreadPoolExecutor(
                max_workers=1,
                thread_name_prefix=f"netns-{host}",
                initializer=_enter,
                initargs=(record.namespace,),
            )
        return record.executor.submit(fn, *args).result(timeout=timeout)

    def cut(self, host: str) -> None:
        """Silently drop all of ``host``'s traffic: unplug its port from the bridge."""
        ip("-n", self.switch, "link", "set", self.hosts[host].port, "nomaster")

    def restore(self, host: str) -> None:
        """Plug ``host``'s port back into the bridge."""
        ip("-n", self.switch, "link", "set", self.hosts[host].port, "master", "br0")

    def _add_host(self, name: str) -> None:
        if not HOST_NAME.fullmatch(name) or name in self.hosts:
            raise ValueError(f"bad or repeated host name {name!r} (want {HOST_NAME.pattern})")
        host = Host(
            name,
            namespace=f"{self.prefix}{name}",
            address=f"{self.subnet}.{len(self.hosts) + 1}",
            port=f"p-{name}",
        )
        ip("netns", "add", host.namespace)
        self.hosts[name] = host
        ns = host.namespace
        ip("-n", ns, "link", "set", "lo", "up")
        ip(
            "-n",
            ns,
            "link",
            "add",
            "eth0",
            "type",
            "veth",
            "peer",
            "name",
            host.port,
            "netns",
            self.switch,
        )
        ip("-n", self.switch, "link", "set", host.port, "master", "br0")
        ip("-n", self.switch, "link", "set", host.port, "up")
        ip("-n", ns, "addr", "add", f"{host.address}/24", "dev", "eth0")
        ip("-n", ns, "link", "set", "eth0", "up")

    def close(self) -> None:
        """Stop every process started here (by PID), then delete every namespace."""
        try:
            self.procs.stop_all()
        finally:
            for host in self.hosts.values():
                if host.executor is not None:
                    host.executor.shutdown(wait=True, cancel_futures=True)
            for host in self.hosts.values():
                _delete_namespace(host.namespace)
            _delete_namespace(self.switch)
            self.procs.close()


@contextmanager
def network(*hosts: str) -> Iterator[Network]:
    """Hosts named ``hosts`` on one switch, torn down (processes too) however the block ends.

    If the block fails, every process's output is printed before teardown.
    """
    prefix = f"hz{os.getpid()}-"
    net = Network(
        prefix=prefix,
        subnet=f"10.{random.randint(200, 250)}.0",
        switch=f"{prefix}switch",
        procs=Processes(),
    )
    try:
        ip("netns", "add", net.switch)
    except NetnsError:
        net.procs.close()
        raise
    try:
        ip("-n", net.switch, "link", "add", "br0", "type", "bridge")
        ip("-n", net.switch, "link", "set", "br0", "up")
        for name in hosts:
            net._add_host(name)
        yield net
    except BaseException:
        net.procs.stop_all()
        print(net.procs.dump())
        raise
    finally:
        net.close()
