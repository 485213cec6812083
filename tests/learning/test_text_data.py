"""Text sources for causal-LM parties: files, folders, JSONL, packing and held-out tails."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from zkadapt.errors import DataError
from zkadapt.learning.text_data import (
    load_blocks,
    pack_blocks,
    party_splits,
    read_documents,
    resolve_path,
)


class CharTokenizer:
    """One token per character (ids = code points); EOS 0; optional chat template."""

    eos_token_id = 0

    def __init__(self, chat_template: str | None = None) -> None:
        self.chat_template = chat_template

    def __call__(self, text: str, **_: object) -> dict[str, list[int]]:
        return {"input_ids": [ord(c) for c in text]}

    def apply_chat_template(self, messages: list[dict[str, str]], tokenize: bool) -> str:
        assert not tokenize
        return "".join(f"<{m['role']}>{m['content']}</{m['role']}>" for m in messages)


def test_plain_folder_and_jsonl_sources(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("hello", encoding="utf-8")
    sub = tmp_path / "more"
    sub.mkdir()
    (sub / "b.md").write_text("world", encoding="utf-8")
    (sub / "skip.bin").write_bytes(b"\x00\x01")
    records = [
        {"text": "plain"},
        {"instruction": "Say hi", "response": "hi"},
        {"instruction": "Add", "input": "1+1", "response": "2"},
    ]
    (sub / "c.jsonl").write_text("\n".join(json.dumps(r) for r in records) + "\n\n")
    tok = CharTokenizer(chat_template="yes")
    assert read_documents(tmp_path / "a.txt", tok) == ["hello"]
    docs = read_documents(tmp_path, tok)
    assert docs == [
        "hello",
        "world",
        "plain",
        "<user>Say hi</user><assistant>hi</assistant>",
        "<user>Add\n\n1+1</user><assistant>2</assistant>",
    ]
    plain = read_documents(sub / "c.jsonl", CharTokenizer())
    assert plain[1] == "### Instruction:\nSay hi\n\n### Response:\nhi"


def test_packing_joins_documents_with_eos_and_drops_the_remainder() -> None:
    blocks = pack_blocks(["abc", "de"], CharTokenizer(), seq_len=3)
    assert blocks.dtype == np.int64 and blocks.shape == (2, 3)
    assert blocks.tolist() == [[97, 98, 99], [0, 100, 101]]


def test_heldout_is_the_tail_or_explicit_and_caps_apply(tmp_path: Path) -> None:
    (tmp_path / "own.txt").write_text("x" * 99, encoding="utf-8")  # + EOS = 100 tokens
    (tmp_path / "held.txt").write_text("y" * 39, encoding="utf-8")
    tok = CharTokenizer()
    tail = party_splits(
        ["own.txt"], None, root=tmp_path, tokenizer=tok, seq_len=10, heldout_fraction=0.2
    )
    assert tail.train.shape == (8, 10) and tail.heldout.shape == (2, 10)
    assert tail.heldout[-1, -1] == 0, "the held-out part is the end of the text"
    explicit = party_splits(
        ["own.txt"],
        ["held.txt"],
        root=tmp_path,
        tokenizer=tok,
        seq_len=10,
        heldout_fraction=0.2,
        max_train=5,
        max_test=3,
    )
    assert explicit.train.shape == (5, 10) and explicit.heldout.shape == (3, 10)
    assert (explicit.heldout[:, 0] == ord("y")).all()


def test_errors_name_the_path_and_line(tmp_path: Path) -> None:
    tok = CharTokenizer()
    with pytest.raises(DataError, match=r"missing\.txt: file not found"):
        read_documents(tmp_path / "missing.txt", tok)
    (tmp_path / "bad.jsonl").write_text('{"text": "ok"}\n[1, 2]\n', encoding="utf-8")
    with pytest.raises(DataError, match=r"bad\.jsonl:2: expected a JSON object"):
        read_documents(tmp_path / "bad.jsonl", tok)
    (tmp_path / "odd.jsonl").write_text('{"prompt": "x"}\n', encoding="utf-8")
    with pytest.raises(DataError, match=r"odd\.jsonl:1: needs a 'text' string"):
        read_documents(tmp_path / "odd.jsonl", tok)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match=r"no \.txt, \.md or \.jsonl files"):
        read_documents(tmp_path / "empty", tok)
    (tmp_path / "short.txt").write_text("abc", encoding="utf-8")
    with pytest.raises(DataError, match=r"short\.txt: less than one block of 64 tokens"):
        load_blocks(["short.txt"], tmp_path, tok, 64)
    (tmp_path / "one.txt").write_text("a" * 7, encoding="utf-8")  # one block
    with pytest.raises(DataError, match="leave none for training"):
        party_splits(
            ["one.txt"], None, root=tmp_path, tokenizer=tok, seq_len=8, heldout_fraction=0.1
        )


def test_package_paths_resolve_inside_zkadapt(tmp_path: Path) -> None:
    bundled = resolve_path("zkadapt:examples/data/shakespeare/hamlet.txt", tmp_path)
    assert bundled.is_file() and bundled.read_text(encoding="utf-8").startswith("ACT I.")
    assert resolve_path("rel.txt", tmp_path) == tmp_path / "rel.txt"
    assert resolve_path("/abs.txt", tmp_path) == Path("/abs.txt")
