"""Locust's example locustfiles, run under Locust 2.47 and, after the one porting rule, under horde.

Not a test: the examples come from Locust's repository, which CI cannot fetch. Usage::

    python bench/locust_examples.py PATH/TO/locust/examples [--seconds 4] [--only NAME ...]

Each example runs headless for ``--seconds`` against a loopback target that answers 200 to
any request, twice: ``locust -f EXAMPLE --headless -u 2 -r 10 -t Ns -H TARGET --csv P``
(Locust's one-process run, as a user types it) and, on a copy of the example's folder
where every ``locust`` in an import became ``horde`` (``import locust`` and ``import
locust.stats`` become ``import horde as locust``), ``horde run -f EXAMPLE --headless
--workers 1 ...`` with the same flags.
A run that outlives its time by 20 s (a load shape that ignores ``-t``, as in Locust) gets
SIGTERM, then SIGKILL 15 s later. One line per example: the requests each side recorded
(total count and the (type, name) pairs of its ``--csv`` file), both exit codes, and
``match`` when the exit codes and the names agree and both made requests or neither did.

Everything runs in a network namespace of its own holding only loopback (``unshare
--net``, root): an example whose host or URLs point elsewhere fails to connect, on both
sides, and reaches nothing outside. Examples that are not locustfiles, or whose point is an
outside service this machine does not run, are listed with the reason and not run
(:data:`NOT_RUN`); one that Locust cannot import (a package it needs is missing) is listed
as such.

Imports: the standard library only (Locust and horde run as child processes).
"""

from __future__ import annotations

import argparse
import csv
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ISOLATED = "HORDE_EXAMPLES_ISOLATED"
"""Set in the re-executed harness that already runs in its own network namespace."""
GRACE = 20.0
"""Seconds a run may outlive ``--seconds`` before it gets SIGTERM."""
KILL_AFTER = 15.0
"""Seconds after SIGTERM before SIGKILL."""
FEW = 20
"""Below this many requests on a side, which names a short run hit is left to chance."""

NOT_RUN = {
    "use_as_lib.py": "not a locustfile: runs its own Environment under plain python",
    "test_pytest.py": "a pytest file (Locust's pytest plugin), not a locustfile",
    "grpc/grpc_user.py": "a module the gRPC locustfile imports",
    "grpc/hello_pb2.py": "generated gRPC code",
    "grpc/hello_pb2_grpc.py": "generated gRPC code",
    "grpc/locustfile.py": "needs grpcio and the example's gRPC server",
    "socketio/socketio_ex.py": "needs a Socket.IO server",
    "custom_xmlrpc_client/xmlrpc_locustfile.py": "needs the example's XML-RPC server",
    "mqtt/locustfile.py": "needs an MQTT broker",
    "mqtt/locustfile_custom_mqtt_client.py": "needs an MQTT broker",
    "mongodb/locustfile.py": "needs MongoDB",
    "postgres/locustfile.py": "needs PostgreSQL",
    "milvus/locustfile.py": "needs Milvus",
    "qdrant/locustfile.py": "needs Qdrant",
    "openai_ex.py": "needs OpenAI's API",
    "dns_ex.py": "needs a DNS server",
    "testdata_management.py": "needs postman-echo.com",
    "terraform/aws/plan/basic.py": "requests google.com, microsoft.com and facebook.com",
    "worker_index.py": "needs locust-plugins",
}
"""Examples not run, with why (paths relative to the examples folder)."""

_FROM = re.compile(r"^(\s*)from\s+locust(?=[\s.])", re.MULTILINE)
_IMPORT = re.compile(r"^(\s*)import\s+locust(?:\.[\w.]+)?\s*$", re.MULTILINE)


def port_script(text: str) -> str:
    """Apply the one porting rule: ``from locust[.x]`` -> ``from horde[.x]``, ``import
    locust`` and ``import locust.x`` -> ``import horde as locust`` (horde's submodules are
    its attributes, as Locust's are); ``locust_plugins`` and the rest are untouched."""
    return _IMPORT.sub(r"\1import horde as locust", _FROM.sub(r"\1from horde", text))


class _Target(BaseHTTPRequestHandler):
    """Answers 200 with a small JSON body to every method and path."""

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        body = b'{"ok": true}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _answer

    def log_message(self, format: str, *args: object) -> None:
        """Log nothing."""


def start_target() -> tuple[ThreadingHTTPServer, str]:
    """Serve :class:`_Target` on a free loopback port; return the server and its URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Target)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


@dataclass
class Side:
    """One run of one example: its exit code and what its ``--csv`` file recorded."""

    code: int | None = None
    requests: int = 0
    names: set[tuple[str, str]] = field(default_factory=set)
    note: str = ""

    def describe(self) -> str:
        """``code N, R requests`` plus a note."""
        text = f"exit {self.code}, {self.requests} req"
        return f"{text} ({self.note})" if self.note else text


def read_stats(prefix: Path) -> tuple[int, set[tuple[str, str]]]:
    """Total requests and the (type, name) pairs of ``PREFIX_stats.csv`` (none if absent)."""
    path = Path(f"{prefix}_stats.csv")
    if not path.exists():
        return 0, set()
    with path.open(newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if r["Name"] != "Aggregated"]
    return sum(int(r["Request Count"]) for r in rows), {(r["Type"], r["Name"]) for r in rows}


def run(command: Sequence[str], cwd: Path, seconds: float, log: Path) -> Side:
    """Run ``command`` in ``cwd`` to its end (SIGTERM, then SIGKILL, when it overruns)."""
    side = Side()
    with log.open("w") as out:
        proc = subprocess.Popen(
            command, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
        try:
            side.code = proc.wait(timeout=seconds + GRACE)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGTERM)
            side.note = "SIGTERM"
            try:
                side.code = proc.wait(timeout=KILL_AFTER)
            except subprocess.TimeoutExpired:
                proc.kill()
                side.code = proc.wait()
                side.note = "SIGKILL"
    text = log.read_text(errors="replace")
    missing = re.search(r"No module named '([^']+)'", text)
    if missing and not side.note:
        side.note = f"no module {missing.group(1)}"
    return side


@dataclass
class Result:
    """Both sides of one example, or why it was not run."""

    name: str
    locust: Side | None = None
    horde: Side | None = None
    skipped: str = ""

    @property
    def verdict(self) -> str:
        """``match``, ``differ``, or ``not run``.

        Exit codes must agree unless the harness stopped both (a shape that ignores ``-t``:
        Locust dies of the SIGTERM, horde stops cleanly). Both sides must make requests or
        neither; the names must agree, or merely overlap when a side made fewer than
        :data:`FEW` requests (which tasks a few iterations pick is chance).
        """
        if self.locust is None or self.horde is None:
            return "not run"
        a, b = self.locust, self.horde
        codes = a.code == b.code or (a.note.startswith("SIG") and b.note.startswith("SIG"))
        if min(a.requests, b.requests) >= FEW or not (a.names or b.names):
            names = a.names == b.names
        else:
            names = bool(a.names & b.names)
        return "match" if codes and names and bool(a.requests) == bool(b.requests) else "differ"


@dataclass(frozen=True)
class Setup:
    """Where the examples are, where runs write, the target and the run time."""

    examples: Path
    work: Path
    target: str
    seconds: float
    python: str = sys.executable


def run_example(rel: str, setup: Setup) -> Result:
    """Run one example under Locust, then (ported) under horde."""
    examples, work, target, seconds, python = (
        setup.examples, setup.work, setup.target, setup.seconds, setup.python
    )  # fmt: skip
    result = Result(rel)
    stem = rel.replace("/", "__").removesuffix(".py")
    flags = ["--headless", "-u", "2", "-r", "10", "-t", f"{seconds:g}s", "-H", target]
    folder = (examples / rel).parent
    theirs = work / stem / "locust"
    shutil.copytree(folder, theirs)
    result.locust = run(
        [python, "-m", "locust", "-f", Path(rel).name, *flags, "--csv", str(work / stem / "l")],
        theirs,
        seconds,
        work / stem / "locust.log",
    )
    if result.locust.note.startswith("no module "):
        result.skipped = f"Locust cannot import it: {result.locust.note}"
        result.horde = None
        return result
    ours = work / stem / "horde"
    shutil.copytree(folder, ours)
    for script in ours.rglob("*.py"):
        script.write_text(port_script(script.read_text()))
    command = [python, "-m", "horde", "run", "-f", Path(rel).name, *flags, "--workers", "1"]
    command += ["--web-port", "0", "--csv", str(work / stem / "h")]
    result.horde = run(command, ours, seconds, work / stem / "horde.log")
    for side, prefix in ((result.locust, "l"), (result.horde, "h")):
        side.requests, side.names = read_stats(work / stem / prefix)
    return result


def locustfiles(examples: Path) -> list[str]:
    """Every ``.py`` under ``examples`` that mentions locust, relative and sorted."""
    found = []
    for path in sorted(examples.rglob("*.py")):
        if "locust" in path.read_text(errors="replace"):
            found.append(path.relative_to(examples).as_posix())
    return found


def table(results: Sequence[Result]) -> str:
    """The per-example table, one line each, then the counts."""
    lines = [f"{'example':<44} {'locust':<34} {'horde':<34} verdict"]
    for r in results:
        if r.locust is None or r.horde is None:
            lines.append(f"{r.name:<44} not run: {r.skipped}")
            continue
        lines.append(f"{r.name:<44} {r.locust.describe():<34} {r.horde.describe():<34} {r.verdict}")
        names = sorted(r.locust.names | r.horde.names)
        for kind, name in names:
            mark = {(True, True): "both", (True, False): "locust only", (False, True): "horde only"}
            key = ((kind, name) in r.locust.names, (kind, name) in r.horde.names)
            lines.append(f"    {kind:<8} {name:<60} {mark[key]}")
    ran = [r for r in results if r.verdict != "not run"]
    matched = sum(r.verdict == "match" for r in ran)
    lines.append(f"{len(ran)} run, {matched} match, {len(ran) - matched} differ")
    return "\n".join(lines)


def isolate(argv: Sequence[str]) -> int | None:
    """Re-run this harness in a new network namespace with only loopback (None: already in one)."""
    if os.environ.get(ISOLATED):
        subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
        return None
    inner = [sys.executable, os.path.abspath(__file__), *argv]
    env = {**os.environ, ISOLATED: "1"}
    return subprocess.run(["unshare", "--net", "--", *inner], env=env, check=False).returncode


def main(argv: Sequence[str]) -> int:
    """Parse the arguments, run the examples, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("examples", type=Path, help="a Locust checkout's examples/ folder")
    parser.add_argument("--seconds", type=float, default=4.0, help="run time of each run")
    parser.add_argument("--only", nargs="*", default=None, help="run only these examples")
    parser.add_argument("--keep", type=Path, default=None, help="keep logs and CSVs here")
    args = parser.parse_args(argv)
    code = isolate(argv)
    if code is not None:
        return code
    server, target = start_target()
    work = args.keep or Path(tempfile.mkdtemp(prefix="locust-examples-"))
    setup = Setup(args.examples.resolve(), work, target, args.seconds)
    results = []
    try:
        for rel in locustfiles(setup.examples):
            if args.only and rel not in args.only and Path(rel).stem not in args.only:
                continue
            if rel in NOT_RUN:
                results.append(Result(rel, skipped=NOT_RUN[rel]))
                continue
            started = time.monotonic()
            result = run_example(rel, setup)
            results.append(result)
            print(f"{rel}: {result.verdict} ({time.monotonic() - started:.0f} s)", flush=True)
    finally:
        server.shutdown()
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    print(table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
