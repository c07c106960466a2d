"""``horde keygen --kustomize`` and its files as the pods see them: flat in one folder,
mounted as a Kubernetes Secret volume (links into ``..data``), passed as ``HORDE_*``
variables, read by a user that does not own them."""

from __future__ import annotations

import io
import os
import shutil
import stat
import subprocess
import sys
import urllib.error
import urllib.request
from base64 import b64encode
from pathlib import Path

import pytest
import zmq
import zmq.auth as zauth

from horde.keygen import keygen, write_kustomize
from horde.protocol.errors import ConfigError
from horde.protocol.security import allow_signature, allow_stamp, allowed_keys
from tests.support import SCRIPTS, free_port, processes, start_target, wait_for

pytestmark = pytest.mark.timeout(120)

FILES = ["master.key", "master.key_secret", "worker.key", "worker.key_secret", "web.env"]
NOBODY = 65534


def secret_volume(source: Path, mount: Path, mode: int) -> Path:
    """``source``'s files laid out as the kubelet mounts a Secret: the files in a
    timestamped folder, ``..data`` linking to it, and one link per file into ``..data``."""
    stamp = mount / "..2026_12_05_21_00_00.000000001"
    stamp.mkdir(parents=True)
    for name in FILES:
        shutil.copy(source / name, stamp / name)
        os.chmod(stamp / name, mode)
        (mount / name).symlink_to(Path("..data") / name)
    (mount / "..data").symlink_to(stamp.name)
    return mount


def test_kustomize_writes_the_flat_files_the_manifests_read(tmp_path: Path) -> None:
    """Five files flat in DIR (secrets 0600), a .gitignore of *, one shared worker pair
    the master admits, a web password of at least 24 url-safe characters; no overwrite
    without --force, and no --workers."""
    folder = tmp_path / "secrets"
    out = io.StringIO()
    assert keygen(str(folder), None, False, out, kustomize=True) == 0
    assert sorted(p.name for p in folder.iterdir()) == sorted([*FILES, ".gitignore"])
    assert (folder / ".gitignore").read_text() == "*\n"
    for name in ("master.key_secret", "worker.key_secret", "web.env"):
        assert stat.S_IMODE((folder / name).stat().st_mode) == 0o600
    for pair in ("master", "worker"):
        public, secret = zauth.load_certificate(folder / f"{pair}.key_secret")
        assert secret is not None and zmq.curve_public(secret) == public
        assert zauth.load_certificate(folder / f"{pair}.key")[0] == public
    (line,) = (folder / "web.env").read_text().splitlines()
    name, _, value = line.partition("=")
    user, _, password = value.partition(":")
    assert (name, user) == ("HORDE_WEB_AUTH", "horde")
    assert len(password) >= 24 and password.replace("-", "").replace("_", "").isalnum()
    text = out.getvalue()
    assert "horde keygen --kustomize deploy/kubernetes/base/secrets" in text
    assert "HORDE_ALLOW_KEYS=/etc/horde/keys/worker.key" in text
    assert "HORDE_MASTER_KEY=/etc/horde/keys/master.key" in text
    with pytest.raises(ConfigError, match="exists already; pass --force"):
        write_kustomize(folder)
    before = (folder / "web.env").read_text()
    write_kustomize(folder, force=True)
    assert (folder / "web.env").read_text() != before
    with pytest.raises(ConfigError, match="drop --workers"):
        keygen(str(tmp_path / "other"), 2, False, out, kustomize=True)


def test_a_secret_volume_of_links_runs_a_secure_job_from_variables(tmp_path: Path) -> None:
    """Keys mounted as a Secret volume (0644 links into ..data) and given as the pods'
    HORDE_* variables: the worker joins over CURVE, the headless run passes, and the web
    API takes web.env's password and refuses a request without it."""
    generated = tmp_path / "generated"
    write_kustomize(generated)
    keys = secret_volume(generated, tmp_path / "keys", 0o644)
    assert (keys / "worker.key").is_symlink() and (keys / "..data").is_symlink()
    web_auth = (keys / "web.env").read_text().strip().partition("=")[2]
    port, web_port = free_port(), free_port()
    with processes() as procs:
        target = start_target(procs)
        master = procs.horde(
            *("master", "-f", str(SCRIPTS / "basic.py"), "--headless", "-t", "3", "-u", "2"),
            *("-H", target, "--bind", f"tcp://127.0.0.1:{port}", "--web-port", str(web_port)),
            env={
                "HORDE_SECRET_KEY": str(keys / "master.key_secret"),
                "HORDE_ALLOW_KEYS": str(keys / "worker.key"),
                "HORDE_WEB_AUTH": web_auth,
            },
        )
        url = f"http://127.0.0.1:{web_port}/stats/requests"
        wait_for(lambda: "web ui" in procs.output(master), 30, "the master's web API")
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(url, timeout=5)
        assert refused.value.code == 401
        request = urllib.request.Request(
            url, headers={"Authorization": f"Basic {b64encode(web_auth.encode()).decode()}"}
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            assert response.status == 200
        worker = procs.horde(
            "worker",
            env={
                "HORDE_MASTER": f"127.0.0.1:{port}",
                "HORDE_SECRET_KEY": str(keys / "worker.key_secret"),
                "HORDE_MASTER_KEY": str(keys / "master.key"),
            },
        )
        assert master.wait(timeout=60) == 0, procs.output(master)
        assert worker.wait(timeout=20) == 0, procs.output(worker)
        assert "registered with master" in procs.output(worker)


def test_a_rotated_secret_changes_the_allow_list_behind_its_link(tmp_path: Path) -> None:
    """``--allow-keys`` naming a Secret volume's link: when the kubelet swaps ``..data`` to
    new files, the file's stamp changes (so the master reloads) and the new key is read."""
    first, second = tmp_path / "first", tmp_path / "second"
    write_kustomize(first)
    write_kustomize(second)
    mount = secret_volume(first, tmp_path / "keys", 0o644)
    link = str(mount / "worker.key")
    old_key = zauth.load_certificate(first / "worker.key")[0].decode()
    new_key = zauth.load_certificate(second / "worker.key")[0].decode()
    assert allowed_keys(link) == {old_key}
    stamp, signature = allow_stamp(link), allow_signature(link)
    newer = mount / "..2026_12_05_22_00_00.000000002"
    newer.mkdir()
    for name in FILES:
        shutil.copy(second / name, newer / name)
    (mount / "..data_tmp").symlink_to(newer.name)
    os.replace(mount / "..data_tmp", mount / "..data")  # as the kubelet swaps it
    assert allowed_keys(link) == {new_key}
    assert allow_stamp(link) != stamp and allow_signature(link) != signature


def as_other_user(folder: Path, path: Path) -> tuple[list[str], dict[str, str]]:
    """How to run a command as a user that does not own ``path`` (root: as nobody, the
    file root's 0400), or, unprivileged, as ourselves with the file made 0000."""
    if os.geteuid() != 0:
        path.chmod(0)
        return [], {}
    path.chmod(0o400)
    user = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]
    return user, {"HOME": str(folder)}


def test_a_key_file_the_process_cannot_read_is_named_with_its_reason(shared_dir: Path) -> None:
    """A mounted key readable by all (0644, another owner) is accepted; one the process
    may not read (0400, another owner) ends the start with exit 2 naming the file, the
    reason and the process's uid."""
    generated = shared_dir / "generated"
    write_kustomize(generated)
    keys = secret_volume(generated, shared_dir / "keys", 0o644)
    user, env = as_other_user(shared_dir, keys / "..data" / "master.key_secret")
    check = "from horde.settings import server_keys as s; import sys; s(sys.argv[1], sys.argv[2])"
    readable = [sys.executable, "-c", check, str(keys / "worker.key_secret")]
    readable.append(str(keys / "master.key"))
    accepted = subprocess.run(
        [*user, *readable], check=False, capture_output=True, text=True, timeout=30, cwd=shared_dir,
        env={**os.environ, **env},
    )  # fmt: skip
    assert accepted.returncode == 0, accepted.stderr
    command = [sys.executable, "-m", "horde", "master", "-f", str(SCRIPTS / "basic.py")]
    command += ["--headless", "--no-web", "--bind", f"tcp://127.0.0.1:{free_port()}"]
    variables = {
        "HORDE_SECRET_KEY": str(keys / "master.key_secret"),
        "HORDE_ALLOW_KEYS": str(keys / "worker.key"),
    }
    refused = subprocess.run(
        [*user, *command], check=False, capture_output=True, text=True, timeout=30, cwd=shared_dir,
        env={**os.environ, **env, **variables},
    )  # fmt: skip
    assert refused.returncode == 2, refused.stderr
    assert f"--secret-key: cannot read {keys / 'master.key_secret'}" in refused.stderr
    assert "Permission denied" in refused.stderr
    assert f"uid {NOBODY if user else os.getuid()}" in refused.stderr
