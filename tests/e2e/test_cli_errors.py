"""The ``zkadapt`` CLI as a user meets it: one-line errors, exit codes, ``init`` (no training).

Every mistake a user can make on the command line must end in exit code 2 and exactly one
line on stderr starting with ``error:`` that names the key or the problem, never a traceback
(STYLE rule 9).
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

import zkadapt
from zkadapt.config import example_config, load_config
from zkadapt.crypto.identity import IdentityKey

pytestmark = pytest.mark.e2e

NAMES = ["alice", "bob", "carol"]
ONE_PARTY = '[[parties]]\nname = "alice"\n'

#: The directory ``zkadapt init`` wrote, and the finished ``init`` process.
Initialized = tuple[Path, "subprocess.CompletedProcess[str]"]


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run ``python -m zkadapt ARGS`` in ``cwd`` as a user would (no terminal, no stdin)."""
    return subprocess.run(
        [sys.executable, "-m", "zkadapt", *args],
        cwd=cwd,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
        check=False,
    )


def assert_one_line_error(proc: subprocess.CompletedProcess[str], *needles: str) -> str:
    """Exit 2, stderr is exactly one ``error:`` line containing every needle; no traceback."""
    output = proc.stdout + proc.stderr
    assert "Traceback" not in output, output
    assert proc.returncode == 2, output
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert proc.stderr.endswith("\n")
    line = lines[0]
    assert line.startswith("error: "), line
    for needle in needles:
        assert needle in line, f"{needle!r} not in {line!r}"
    return line


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.write_text(text, encoding="utf-8")
    return path


def snapshot(directory: Path) -> dict[str, bytes]:
    """Every file under ``directory`` with its bytes."""
    return {
        str(p.relative_to(directory)): p.read_bytes()
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def initialized(tmp_path_factory: pytest.TempPathFactory) -> Initialized:
    """``zkadapt init sess --example mnist`` in a fresh directory, and its process."""
    cwd = tmp_path_factory.mktemp("init")
    proc = cli("init", "sess", "--example", "mnist", cwd=cwd)
    return cwd / "sess", proc


# --- help and version -----------------------------------------------------------------------


@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_help_exits_zero_and_lists_the_commands(tmp_path: Path, flag: str) -> None:
    proc = cli(flag, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    for command in ("init", "run", "party"):
        assert command in proc.stdout
    assert "Traceback" not in proc.stdout


def test_version_prints_the_package_version(tmp_path: Path) -> None:
    proc = cli("--version", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert zkadapt.__version__ in proc.stdout
    assert proc.stdout.strip() == f"zkadapt, version {zkadapt.__version__}"
    assert "Traceback" not in proc.stdout + proc.stderr


# --- run: bad session files -----------------------------------------------------------------


def test_run_on_a_missing_file_names_the_file(tmp_path: Path) -> None:
    proc = cli("run", "missing.toml", cwd=tmp_path)
    assert_one_line_error(proc, "missing.toml", "not found")
    assert not (tmp_path / "zkadapt-out").exists()


@pytest.mark.parametrize(
    ("name", "text", "needles"),
    [
        (
            "unknown_key.toml",
            "[training]\nlrr = 0.1\n\n" + ONE_PARTY,
            ("training.lrr", "unknown key"),
        ),
        ("wrong_type.toml", '[training]\nlr = "fast"\n\n' + ONE_PARTY, ("training.lr",)),
        ("quorum.toml", "[protocol]\nquorum = 2\n\n" + ONE_PARTY, ("protocol.quorum",)),
        ("backend.toml", '[storage]\nbackend = "ftp"\n\n' + ONE_PARTY, ("storage.backend",)),
        ("not_toml.toml", "this is not toml\n", ("not_toml.toml", "not valid TOML")),
    ],
    ids=["unknown-key", "wrong-type", "quorum-above-parties", "unknown-backend", "not-toml"],
)
def test_run_on_an_invalid_session_file_is_one_line(
    tmp_path: Path, name: str, text: str, needles: tuple[str, ...]
) -> None:
    write(tmp_path, name, text)
    proc = cli("run", name, "--out", "out", cwd=tmp_path)
    assert_one_line_error(proc, *needles)
    assert not (tmp_path / "out").exists()


# --- party ----------------------------------------------------------------------------------


def test_party_on_a_session_without_public_keys_is_one_line(tmp_path: Path) -> None:
    write(tmp_path, "session.toml", example_config("mnist").to_toml())
    proc = cli("party", "session.toml", "--party", "alice", cwd=tmp_path)
    assert_one_line_error(proc, "public_key", "zkadapt init")
    assert not (tmp_path / "out").exists()


def test_party_not_in_the_session_is_one_line(initialized: Initialized) -> None:
    directory, _ = initialized
    before = snapshot(directory)
    proc = cli("party", "session.toml", "--party", "mallory", cwd=directory)
    assert_one_line_error(proc, "--party", "mallory", "alice, bob, carol")
    assert snapshot(directory) == before


# --- init -----------------------------------------------------------------------------------


def test_init_writes_a_keyed_session_and_private_keys(initialized: Initialized) -> None:
    directory, proc = initialized
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    config = load_config(directory / "session.toml")
    assert config.has_keys
    assert config.party_names == NAMES
    assert len({p.public_key for p in config.parties}) == 3
    assert config.session_id[:12] in proc.stdout
    for party in config.parties:
        key_file = directory / "keys" / f"{party.name}.skey"
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
        assert IdentityKey.load(key_file).public.hex == party.public_key
    assert sorted(p.name for p in (directory / "keys").iterdir()) == [f"{n}.skey" for n in NAMES]


def test_init_session_keeps_the_example_settings(initialized: Initialized) -> None:
    directory, _ = initialized
    config = load_config(directory / "session.toml")
    example = example_config("mnist")
    assert config.model_dump(exclude={"parties"}) == example.model_dump(exclude={"parties"})


def test_init_into_an_initialized_directory_changes_nothing(
    initialized: Initialized,
) -> None:
    directory, _ = initialized
    before = snapshot(directory)
    assert "session.toml" in before
    assert "keys/alice.skey" in before
    proc = cli("init", directory.name, "--example", "mnist", cwd=directory.parent)
    assert_one_line_error(proc, "session.toml", "already exists")
    assert snapshot(directory) == before


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("run",), "Missing argument 'SESSION'"),
        (("bogus",), "No such command 'bogus'"),
        (("run", "x.toml", "--rounds", "0"), "--rounds"),
        (("party", "x.toml"), "--party"),
    ],
)
def test_command_line_mistakes_are_one_line(
    tmp_path: Path, args: tuple[str, ...], needle: str
) -> None:
    assert_one_line_error(cli(*args, cwd=tmp_path), needle)


def test_data_with_fewer_training_rows_than_parties_is_one_line(tmp_path: Path) -> None:
    import numpy as np

    rng = np.random.default_rng(1)
    np.savez(
        tmp_path / "tiny.npz",
        x_train=rng.integers(0, 256, size=(2, 4), dtype=np.uint8),
        y_train=np.array([0, 1]),
        x_test=rng.integers(0, 256, size=(6, 4), dtype=np.uint8),
        y_test=np.array([0, 1, 0, 1, 0, 1]),
    )
    names = "".join(f'[[parties]]\nname = "{n}"\n' for n in NAMES)
    write(tmp_path, "s.toml", f'[data]\nsource = "npz"\npath = "tiny.npz"\n{names}')
    proc = cli("run", "s.toml", "--out", "out", "--no-baselines", cwd=tmp_path)
    assert_one_line_error(proc, "cannot give 3 parties a sample each from 2 examples")


def test_leaving_before_the_end_is_refused_with_the_rules(tmp_path: Path) -> None:
    """docs/membership.md: there is no leave message; ``zkadapt leave`` says what happens
    instead (exit 2, one line)."""
    (tmp_path / "s.toml").write_text(
        '[membership]\nadmission = "open"\nabsent_rounds = 2\n\n' + ONE_PARTY
    )
    result = cli("leave", "s.toml", "--party", "alice", cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: alice cannot leave session")
    assert "after 2 silent rounds it is marked absent" in lines[0]
    assert "left early" in lines[0]
