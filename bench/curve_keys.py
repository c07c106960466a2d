"""CURVE key material for master capacity runs: the master's pair, one pair per simulated
worker, and the master's allow directory.

Keys are Z85 text from ``zmq.curve_keypair()``. Each worker's public key goes into its own
``*.key`` file in the allow directory (what ``horde master --allow-keys`` reads), in
ZeroMQ's certificate format as ``horde keygen`` and ``zmq.auth`` write it. Each simulator
process gets a JSON file with the master's public key and its workers' pairs
(``bench/simulate_workers.py --curve-keys``). Imports: the standard library and zmq.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import zmq

CERTIFICATE = """#   ZeroMQ CURVE Public Certificate (a simulated worker, bench/master_capacity.py)

metadata
curve
    public-key = "{}"
"""


@dataclass(frozen=True)
class CurveKeys:
    """Where one run's keys were written."""

    master_secret: str
    """The master's Z85 secret key (for ``--secret-key``)."""
    allow_dir: Path
    """The directory of worker public keys (for ``--allow-keys``)."""
    sim_files: list[Path]
    """One ``--curve-keys`` file per simulator process, in order."""


def write_curve_keys(directory: Path, shares: list[int]) -> CurveKeys:
    """Make a master pair and ``sum(shares)`` worker pairs under ``directory``: the allow
    directory ``directory/workers`` and one key file per simulator (``shares[i]`` pairs)."""
    # the layout of `horde keygen`; the name also keeps a 40-character path from being
    # taken for a Z85 key
    allow = directory / "workers"
    allow.mkdir(parents=True, exist_ok=True)
    server_public, server_secret = zmq.curve_keypair()
    files = []
    j = 0
    for i, share in enumerate(shares):
        pairs = []
        for _ in range(share):
            public, secret = zmq.curve_keypair()
            (allow / f"worker-{j}.key").write_text(CERTIFICATE.format(public.decode()))
            pairs.append([public.decode(), secret.decode()])
            j += 1
        path = directory / f"sim{i}.keys.json"
        path.write_text(json.dumps({"server": server_public.decode(), "pairs": pairs}))
        path.chmod(0o600)
        files.append(path)
    return CurveKeys(server_secret.decode(), allow, files)
