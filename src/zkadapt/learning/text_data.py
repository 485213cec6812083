"""Text for causal-LM fine-tuning: each party's own files, packed into fixed-length token blocks.

Every party names its own text in the session (``[data.parties] alice = "hamlet.txt"``), so
the split among parties is whatever the parties really hold (non-iid by construction), not a
partition of one shared set. A source is one of:

- a plain text file (``.txt``, ``.md`` or any other suffix except ``.jsonl``): one document;
- a JSON Lines file (``.jsonl``): one document per line, either ``{"text": ...}`` or
  ``{"instruction": ..., "response": ...}`` (optionally ``"input"``, appended to the
  instruction); instruction pairs go through the tokenizer's chat template when it has one
  (user turn, assistant turn), else through a plain "### Instruction / ### Response" layout;
- a folder: every ``.txt``, ``.md`` and ``.jsonl`` file below it, in sorted path order.

Documents are tokenized without special tokens, joined with the end-of-sequence token and cut
into blocks of ``seq_len`` tokens (the remainder is dropped): the usual causal-LM packing
(as in Hugging Face's ``run_clm`` example). The loss covers every token, so a chat example
teaches the prompt as well as the answer; that keeps packing trivial and is what most
small-scale QLoRA recipes do.

A path that starts with ``zkadapt:`` is read from inside the installed package, so the
bundled example (``zkadapt init --example qlora-smollm2``) runs from any directory.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from zkadapt.errors import DataError

#: Prefix of a path inside the installed ``zkadapt`` package (the bundled example data).
PACKAGE_PREFIX = "zkadapt:"
TEXT_SUFFIXES = (".txt", ".md")
JSONL_SUFFIX = ".jsonl"


def resolve_path(ref: str, root: Path) -> Path:
    """A configured path: ``zkadapt:...`` inside the package, else relative to ``root``."""
    if ref.startswith(PACKAGE_PREFIX):
        return Path(str(resources.files("zkadapt").joinpath(ref[len(PACKAGE_PREFIX) :])))
    path = Path(ref).expanduser()
    return path if path.is_absolute() else root / path


def read_documents(path: Path, tokenizer: Any) -> list[str]:
    """The documents in one source (file, JSONL file or folder).

    Raises:
        DataError: the path is missing or unreadable, a folder holds no text, or a JSONL line
            is not an object with ``text`` or ``instruction``/``response`` strings.
    """
    if path.is_dir():
        files = sorted(
            p
            for p in path.rglob("*")
            if p.is_file() and p.suffix.lower() in (*TEXT_SUFFIXES, JSONL_SUFFIX)
        )
        if not files:
            raise DataError(f"{path}: no .txt, .md or .jsonl files in this folder")
        return [doc for file in files for doc in read_documents(file, tokenizer)]
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: not a readable UTF-8 text file ({exc})") from None
    if path.suffix.lower() == JSONL_SUFFIX:
        return _jsonl_documents(path, text, tokenizer)
    return [text] if text.strip() else []


def _jsonl_documents(path: Path, text: str, tokenizer: Any) -> list[str]:
    docs = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(f"{path}:{lineno}: not valid JSON ({exc.msg})") from None
        if not isinstance(record, dict):
            raise DataError(f"{path}:{lineno}: expected a JSON object")
        docs.append(_record_text(record, tokenizer, f"{path}:{lineno}"))
    return docs


def _record_text(record: dict[str, Any], tokenizer: Any, where: str) -> str:
    """One JSONL record as training text."""
    if isinstance(record.get("text"), str):
        return record["text"]
    instruction, response = record.get("instruction"), record.get("response")
    if not (isinstance(instruction, str) and isinstance(response, str)):
        raise DataError(f"{where}: needs a 'text' string or 'instruction' and 'response' strings")
    extra = record.get("input")
    if isinstance(extra, str) and extra:
        instruction = f"{instruction}\n\n{extra}"
    if getattr(tokenizer, "chat_template", None):
        messages = [
            {"role": "user", "content": instruction},
            {"role": "assistant", "content": response},
        ]
        return str(tokenizer.apply_chat_template(messages, tokenize=False))
    return f"### Instruction:\n{instruction}\n\n### Response:\n{response}"


def pack_blocks(documents: Sequence[str], tokenizer: Any, seq_len: int) -> np.ndarray:
    """Tokenize, join with EOS and cut into ``[n_blocks, seq_len]`` int64 token ids."""
    eos = tokenizer.eos_token_id
    ids: list[int] = []
    for doc in documents:
        ids.extend(tokenizer(doc, add_special_tokens=False, verbose=False)["input_ids"])
        if eos is not None:
            ids.append(int(eos))
    n_blocks = len(ids) // seq_len
    return np.asarray(ids[: n_blocks * seq_len], dtype=np.int64).reshape(n_blocks, seq_len)


def load_blocks(refs: Sequence[str], root: Path, tokenizer: Any, seq_len: int) -> np.ndarray:
    """All blocks of several sources, in the given order.

    Raises:
        DataError: a source cannot be read, or all of them hold less than one block.
    """
    docs = [doc for ref in refs for doc in read_documents(resolve_path(ref, root), tokenizer)]
    blocks = pack_blocks(docs, tokenizer, seq_len)
    if len(blocks) == 0:
        where = ", ".join(str(resolve_path(ref, root)) for ref in refs)
        raise DataError(f"{where}: less than one block of {seq_len} tokens of text")
    return blocks


@dataclass(frozen=True)
class OwnText:
    """Text a party names outside the session file: a newcomer's ``zkadapt join --data``.

    The session file cannot name a newcomer's text (``data.parties``): its id is the hash of
    the file, so a newcomer must not edit it (docs/membership.md). The sources are given as
    ``data.parties`` and ``data.heldout`` entries are, relative to the data root.

    Attributes:
        train: the sources it trains on (text files, folders, ``.jsonl`` files).
        heldout: its held-out sources; empty: the tail of its own text, as for a listed party.
    """

    train: tuple[str, ...]
    heldout: tuple[str, ...] = ()


@dataclass(frozen=True, eq=False)
class TextSplits:
    """One party's token blocks.

    Attributes:
        train: ``[n, seq_len]`` int64 blocks it trains on.
        heldout: ``[m, seq_len]`` int64 blocks it never trains on (its "local" evaluation).
    """

    train: np.ndarray
    heldout: np.ndarray


def party_splits(
    train_refs: Sequence[str],
    heldout_refs: Sequence[str] | None,
    *,
    root: Path,
    tokenizer: Any,
    seq_len: int,
    heldout_fraction: float,
    max_train: int | None = None,
    max_test: int | None = None,
) -> TextSplits:
    """A party's training and held-out blocks.

    Without explicit held-out sources the held-out blocks are the *last* ``heldout_fraction``
    of the party's own blocks (at least one): a contiguous tail, so no training block overlaps
    held-out text. ``max_train`` keeps the first blocks of the training part, ``max_test`` the
    first blocks of the held-out part.

    Raises:
        DataError: a source cannot be read or is too short to leave a training block.
    """
    blocks = load_blocks(train_refs, root, tokenizer, seq_len)
    if heldout_refs:
        train, heldout = blocks, load_blocks(heldout_refs, root, tokenizer, seq_len)
    else:
        n_held = max(1, round(len(blocks) * heldout_fraction))
        if n_held >= len(blocks):
            where = ", ".join(str(resolve_path(ref, root)) for ref in train_refs)
            raise DataError(
                f"{where}: {len(blocks)} block(s) of {seq_len} tokens leave none for training "
                "after the held-out tail; add text or set data.heldout"
            )
        train, heldout = blocks[:-n_held], blocks[-n_held:]
    return TextSplits(train=train[:max_train], heldout=heldout[:max_test])
