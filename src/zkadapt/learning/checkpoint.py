"""PEFT-shaped checkpoints of the trainable state, and THE model digest.

A checkpoint is a directory, like a PEFT adapter (``save_pretrained``), holding:

- ``config.json``: sorted keys, indent 2, with ``zkadapt_version``, ``type`` (what kind of
  state this is, e.g. ``"mlp"`` or ``"lora"``; loaders dispatch on it), ``tensor_order``,
  ``digest`` and the caller's metadata (session id, round, base model id, ...);
- ``model.safetensors``: only the trainable tensors (safetensors, never pickle).

safetensors does not keep insertion order, so ``tensor_order`` in config.json records it; the
order matters because :func:`state_digest` hashes tensors in order.

:func:`state_digest` is the one model digest of ZK-ADAPT: the ``sha256(G(r))`` that every party
posts in ``RoundDone`` and must agree on (DESIGN.md section 3, step 9).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import uuid
from pathlib import Path
from typing import Any

import numpy as np
from safetensors import SafetensorError
from safetensors.numpy import load_file, save_file

from zkadapt import __version__
from zkadapt.atomic_file import fsync_dir
from zkadapt.errors import DataError

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
DIGEST_DOMAIN = b"zkadapt/state-digest/v1\n"
RESERVED_KEYS = ("zkadapt_version", "tensor_order", "digest")
REQUIRED_KEYS = ("type", *RESERVED_KEYS)


def state_digest(state: dict[str, np.ndarray]) -> str:
    """The model digest: lowercase hex SHA-256 over the tensors in order, bit for bit.

    The hashed byte string is ``DIGEST_DOMAIN``, then the tensor count (8 bytes big-endian),
    then for each tensor in the state's order: the UTF-8 name, the little-endian dtype string
    (``"<f4"`` for float32), each prefixed by its length (4 bytes big-endian); the rank
    (4 bytes) and each dimension (8 bytes, big-endian); then the raw little-endian data in
    C order. Every field is length-framed, so no two different states hash the same bytes;
    ``-0.0`` and ``0.0`` (and NaN payloads) give different digests, as they should when the
    question is "do all parties hold the same bits".

    Args:
        state: ordered tensor name -> numeric numpy array.

    Returns:
        64 lowercase hex characters.

    Raises:
        ValueError: a name is not a string or a tensor is not a numeric array.
    """
    h = hashlib.sha256(DIGEST_DOMAIN)
    h.update(len(state).to_bytes(8, "big"))
    for name, value in state.items():
        array = np.asarray(value)
        if not isinstance(name, str) or array.dtype.kind not in "biuf":
            raise ValueError(f"tensor {name!r}: need a str name and a numeric array")
        little = array.astype(array.dtype.newbyteorder("<"), copy=False)
        for field in (name.encode("utf-8"), little.dtype.str.encode("ascii")):
            h.update(len(field).to_bytes(4, "big") + field)
        h.update(array.ndim.to_bytes(4, "big"))
        h.update(b"".join(int(dim).to_bytes(8, "big") for dim in array.shape))
        h.update(little.tobytes(order="C"))
    return h.hexdigest()


def save_checkpoint(directory: Path, state: dict[str, np.ndarray], meta: dict[str, Any]) -> str:
    """Write ``state`` and ``meta`` as a checkpoint directory, atomically.

    Both files are written and fsynced in a temporary sibling directory, which is then renamed
    onto ``directory``, so a reader never sees half a checkpoint. An existing checkpoint is moved
    aside first and deleted after the rename (for an instant the path is absent, never partial).
    A directory holding anything else is refused rather than deleted.

    Args:
        directory: where the checkpoint goes; its parents are created.
        state: ordered tensor name -> numeric array (the trainable tensors only).
        meta: JSON-serializable metadata; must contain a non-empty str ``"type"`` and none of
            ``RESERVED_KEYS``.

    Returns:
        :func:`state_digest` of ``state``.

    Raises:
        ValueError: bad ``meta`` or ``state``, or ``directory`` holds files that are not a
            checkpoint.
    """
    directory = Path(directory)
    if not isinstance(meta.get("type"), str) or not meta["type"]:
        raise ValueError("meta must contain a non-empty string 'type'")
    clashes = [key for key in RESERVED_KEYS if key in meta]
    if clashes:
        raise ValueError(f"meta must not set {', '.join(clashes)}; they are written by zkadapt")
    digest = state_digest(state)
    config = {**meta, "zkadapt_version": __version__, "tensor_order": list(state)}
    config["digest"] = digest
    try:
        text = json.dumps(config, sort_keys=True, indent=2, allow_nan=False) + "\n"
    except (TypeError, ValueError) as exc:
        raise ValueError(f"meta is not JSON-serializable: {exc}") from exc
    _check_replaceable(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", suffix=".tmp", dir=directory.parent))
    try:
        _write_synced(tmp / CONFIG_NAME, text.encode("utf-8"))
        save_file({name: np.ascontiguousarray(a) for name, a in state.items()}, tmp / WEIGHTS_NAME)
        _fsync_file(tmp / WEIGHTS_NAME)
        _swap_in(tmp, directory)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return digest


def load_checkpoint(directory: Path) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Read a checkpoint written by :func:`save_checkpoint` and check its digest.

    Args:
        directory: the checkpoint directory.

    Returns:
        ``(state, config)``: tensors in the recorded ``tensor_order``, and the whole
        config.json (``type``, ``zkadapt_version``, ``tensor_order``, ``digest`` and the meta).

    Raises:
        DataError: a file is missing or corrupt, required keys are missing, the tensors do not
            match ``tensor_order``, or they do not hash to the recorded ``digest``.
    """
    directory = Path(directory)
    config = _read_config(directory / CONFIG_NAME)
    weights = directory / WEIGHTS_NAME
    try:
        tensors = load_file(weights)
    except FileNotFoundError as exc:
        raise DataError(f"{weights}: file not found") from exc
    except (SafetensorError, OSError, ValueError) as exc:
        raise DataError(f"{weights}: not a readable safetensors file ({exc})") from exc
    order = config["tensor_order"]
    if sorted(tensors) != sorted(order):
        raise DataError(f"{weights}: tensors {sorted(tensors)} do not match tensor_order {order}")
    state = {name: tensors[name] for name in order}
    if state_digest(state) != config["digest"]:
        raise DataError(f"{weights}: tensors do not match the digest in {CONFIG_NAME}")
    return state, config


def _read_config(path: Path) -> dict[str, Any]:
    """Parse config.json and check the keys every checkpoint has."""
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise DataError(f"{path}: file not found") from exc
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f"{path}: not a readable JSON file ({exc})") from exc
    if not isinstance(config, dict):
        raise DataError(f"{path}: expected a JSON object")
    missing = [key for key in REQUIRED_KEYS if key not in config]
    if missing:
        raise DataError(f"{path}: missing keys {', '.join(missing)}")
    order = config["tensor_order"]
    if (
        not isinstance(order, list)
        or not all(isinstance(name, str) for name in order)
        or len(set(order)) != len(order)
    ):
        raise DataError(f"{path}: tensor_order must be a list of distinct names")
    return config


def _check_replaceable(directory: Path) -> None:
    """Refuse to replace a path that is not absent or an earlier checkpoint."""
    if not directory.exists():
        return
    if not directory.is_dir():
        raise ValueError(f"{directory} exists and is not a checkpoint directory")
    foreign = {p.name for p in directory.iterdir()} - {CONFIG_NAME, WEIGHTS_NAME}
    if foreign:
        raise ValueError(f"{directory} holds {sorted(foreign)}; refusing to replace it")


def _swap_in(tmp: Path, directory: Path) -> None:
    """Rename ``tmp`` onto ``directory``, moving an existing checkpoint aside first."""
    old = None
    if directory.exists():
        old = directory.with_name(f".{directory.name}.{uuid.uuid4().hex}.old")
        os.replace(directory, old)
    os.replace(tmp, directory)
    fsync_dir(directory.parent)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _write_synced(path: Path, data: bytes) -> None:
    with open(path, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def _fsync_file(path: Path) -> None:
    """fsync a file another library wrote (``save_file``), before it is renamed into view."""
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())
