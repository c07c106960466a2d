"""Loading user scripts: class discovery, shapes, and a clear ScriptError for each failure."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from horde.protocol.errors import ScriptError
from horde.worker.api.loader import load_script, load_source

SCRIPT = """
from horde import HttpUser, LoadTestShape, User, between, task


class Base(HttpUser):
    abstract = True


class Shopper(Base):
    host = "http://shop.example"
    wait_time = between(1, 2)

    @task
    def browse(self):
        self.client.get("/")


class Ramp(LoadTestShape):
    def tick(self):
        return None
"""


def write(directory: Path, name: str, text: str) -> Path:
    """Write a dedented script to ``directory/name`` and return its path."""
    path = directory / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def test_script_user_and_shape_classes_are_collected(tmp_path: Path) -> None:
    """Concrete user and shape classes are found by name; bases and abstract ones are not."""
    path = write(tmp_path, "shop.py", SCRIPT)
    loaded = load_script(path)
    assert list(loaded.user_classes) == ["Shopper"]
    assert list(loaded.shape_classes) == ["Ramp"]
    assert loaded.user_classes["Shopper"].host == "http://shop.example"
    assert loaded.source == path.read_text(encoding="utf-8")
    assert loaded.module.__name__.startswith("horde_script_shop_")


def test_each_load_gets_a_fresh_module(tmp_path: Path) -> None:
    """Loading the same file twice gives two independent modules."""
    path = write(tmp_path, "twice.py", SCRIPT)
    first, second = load_script(path), load_script(path)
    assert first.module is not second.module
    assert first.user_classes["Shopper"] is not second.user_classes["Shopper"]


def test_imported_concrete_users_and_sibling_modules_work(tmp_path: Path) -> None:
    """A script can import a helper module beside it, and imported users count."""
    write(
        tmp_path,
        "loader_helper_users.py",
        """
        from horde import User, task

        class Shared(User):
            @task
            def idle(self):
                pass
        """,
    )
    path = write(tmp_path, "uses_helper.py", "from loader_helper_users import Shared\n")
    assert list(load_script(path).user_classes) == ["Shared"]


def test_missing_file_is_a_script_error(tmp_path: Path) -> None:
    """A path that does not exist gives a ScriptError naming it."""
    with pytest.raises(ScriptError, match=r"not found: .*nowhere\.py"):
        load_script(tmp_path / "nowhere.py")


def test_syntax_error_names_the_line(tmp_path: Path) -> None:
    """A syntax error gives a ScriptError with the file, line and message."""
    path = write(tmp_path, "broken.py", "from horde import User\n\ndef oops(:\n")
    with pytest.raises(ScriptError, match=r"syntax error in .*broken.py, line 3"):
        load_script(path)


def test_import_error_carries_the_original_text(tmp_path: Path) -> None:
    """A failing import gives a ScriptError with the original error type and text."""
    path = write(tmp_path, "needs.py", "import no_such_module_for_horde\n")
    with pytest.raises(ScriptError, match="ModuleNotFoundError: No module named"):
        load_script(path)


def test_exception_at_import_time_names_the_line(tmp_path: Path) -> None:
    """Code that raises while the script loads gives its error text and line."""
    path = write(tmp_path, "raises.py", "x = 1\nraise RuntimeError('config missing')\n")
    with pytest.raises(ScriptError, match=r"\(line 2\): RuntimeError: config missing"):
        load_script(path)


def test_script_without_user_classes_is_a_script_error(tmp_path: Path) -> None:
    """A script defining only abstract users (or none) is rejected with a hint."""
    path = write(
        tmp_path,
        "empty.py",
        """
        from horde import HttpUser

        class OnlyBase(HttpUser):
            abstract = True
        """,
    )
    with pytest.raises(ScriptError, match="no user classes"):
        load_script(path)


def test_shape_without_tick_is_a_script_error(tmp_path: Path) -> None:
    """A LoadTestShape subclass that does not define tick() is rejected."""
    path = write(
        tmp_path,
        "shape.py",
        """
        from horde import LoadTestShape, User, task

        class Someone(User):
            @task
            def idle(self):
                pass

        class NoTick(LoadTestShape):
            pass
        """,
    )
    with pytest.raises(ScriptError, match=r"NoTick .* tick"):
        load_script(path)


def test_source_from_the_master_is_loaded_under_a_safe_name() -> None:
    """A script received as text is written to a temp dir under its base name and loaded."""
    loaded = load_source("../../etc/locustfile.py", SCRIPT)
    assert Path(loaded.path).name == "locustfile.py"
    assert "horde-script-" in loaded.path
    assert list(loaded.user_classes) == ["Shopper"]
    assert loaded.source == SCRIPT
