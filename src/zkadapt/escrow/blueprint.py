"""Compile the escrow validator into the committed blueprints.

Run ``python -m zkadapt.escrow.blueprint`` (needs ``opshin``, in the ``cardano`` extra) after
changing ``contract/escrow.py``; it rewrites, next to the source:

* ``plutus.json`` -- the script to put on chain: ``opshin build --parameters 1 -O3``, traces
  removed (about 5 KB).
* ``plutus-traced.json`` -- the same source with ``-fno-remove-trace``: every failed check
  leaves the contract's own message in the logs. Used to explain a rejection
  (:meth:`zkadapt.escrow.onchain.EscrowScript.explain`), never put on chain.

Both are CIP-57 blueprints of the *unapplied* validator: its one parameter, the session id,
is applied per session by :class:`zkadapt.escrow.onchain.EscrowScript`.
``tests/escrow/test_onchain.py`` recompiles both (a ``slow`` test) and compares.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

CONTRACT_DIR = Path(__file__).resolve().parent / "contract"
SOURCE = CONTRACT_DIR / "escrow.py"
#: Blueprint file name -> extra ``opshin build`` flags.
BUILDS = {
    "plutus.json": ("-O3",),
    "plutus-traced.json": ("-O3", "-fno-remove-trace"),
}


def opshin_build(
    out_dir: Path, *flags: str, parameters: tuple[str, ...] = (), source: Path = SOURCE
) -> Path:
    """Run ``opshin build`` and return the blueprint it wrote.

    Args:
        out_dir: where opshin writes its artefacts.
        flags: extra compiler flags.
        parameters: values to apply, as JSON Plutus data (``{"bytes": "..."}``).

    Raises:
        subprocess.CalledProcessError: the source does not compile.
    """
    command = [sys.executable, "-m", "opshin", "build", str(source), *parameters]
    command += ["-o", str(out_dir), *flags]
    subprocess.run(command, check=True, capture_output=True, text=True, timeout=600)
    return out_dir / "blueprint.json"


def compile_blueprints(target: Path = CONTRACT_DIR) -> list[Path]:
    """Compile every build in :data:`BUILDS` and write its blueprint into ``target``."""
    written = []
    with tempfile.TemporaryDirectory() as scratch:
        for name, flags in BUILDS.items():
            built = opshin_build(Path(scratch) / name, "--parameters", "1", *flags)
            shutil.copyfile(built, target / name)
            written.append(target / name)
    return written


def main() -> None:
    for path in compile_blueprints():
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
