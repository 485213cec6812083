"""Tests for zkadapt.protocol.messages: canonical bytes, strict decoding, signing."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from zkadapt.channel.base import SignedEnvelope
from zkadapt.crypto.identity import IdentityKey
from zkadapt.protocol.messages import (
    MESSAGE_TYPES,
    MESSAGE_VERSION,
    SUBMIT_PHASE,
    Admit,
    DecryptionShare,
    Joined,
    JoinRequest,
    KeyDealt,
    KeyGenStep,
    MalformedMessage,
    Message,
    PhaseClosed,
    Rejected,
    RoundDone,
    RoundFailed,
    Submitted,
    decode,
    sign,
)

#: What a strict xfail raises when ``pytest.raises`` sees no exception ("DID NOT RAISE").
DID_NOT_RAISE = pytest.fail.Exception

SESSION = "5e" * 32
DIGEST = "d1" * 32
MODEL = "0f" * 32

EXAMPLES: dict[str, Message] = {
    "submitted": Submitted(SESSION, 1, "alice", "file:///store/u1", DIGEST, 1234, 600),
    "submitted-with-proof": Submitted(
        SESSION, 2, "bob", "s3://bucket/u2", DIGEST, 0, 1, proof_digest="ab" * 32
    ),
    "phase-closed": PhaseClosed(SESSION, 3, SUBMIT_PHASE, "quorum reached"),
    "rejected": Rejected(SESSION, 1, "carol", "digest mismatch"),
    "round-done": RoundDone(
        SESSION, 1, "alice", MODEL, ("alice", "bob"), {"accuracy": 0.91, "loss": 0.25}, 1.5
    ),
    "round-done-defaults": RoundDone(SESSION, 0, "bob", MODEL, ()),
    "round-failed": RoundFailed(SESSION, 4, "below quorum: 1 of 2"),
    "unicode-reason": Rejected(SESSION, 1, "bob", "naïve update — “∞” norm"),
    "round-done-timing": RoundDone(
        SESSION, 2, "carol", MODEL, ("carol",), {}, 3.0, {"seal_s": 0.5, "decrypt_s": 1.25}
    ),
    "joined": Joined(SESSION, 0, "alice", 20000),
    "key-dealt": KeyDealt(
        SESSION,
        1,
        "alice",
        0,
        DIGEST,
        {"uri": "local://k/public.bin", "sha256": DIGEST, "size": 10},
        {"bob": {"uri": "local://k/share/bob.bin", "sha256": DIGEST, "size": 99}},
    ),
    "decryption-share": DecryptionShare(SESSION, 3, "bob", "local://s/bob.bin", DIGEST, 77, DIGEST),
    "keygen-step": KeyGenStep(
        SESSION,
        1,
        "carol",
        0,
        5,
        {"*": {"uri": "local://k/dkg/step-5/carol/all.bin", "sha256": DIGEST, "size": 12}},
    ),
    "join-request": JoinRequest(SESSION, 2, "dave", "ab" * 32, 5000, 2_000_000),
    "join-request-no-deposit": JoinRequest(SESSION, 0, "erin_2", "cd" * 32, 1),
    "join-request-locked": JoinRequest(SESSION, 2, "frank", "ef" * 32, 7, 10**7, "0a" * 32 + "#1"),
    "admit": Admit(SESSION, 2, "alice", "dave"),
}


def body_of(message: Message) -> dict[str, Any]:
    return json.loads(message.to_bytes())


def encode(body: dict[str, Any]) -> bytes:
    return json.dumps(body).encode()


def malformed(payload: bytes) -> MalformedMessage:
    with pytest.raises(MalformedMessage) as info:
        decode(payload)
    return info.value


@pytest.fixture(scope="module")
def key() -> IdentityKey:
    return IdentityKey.from_seed(bytes(range(32)))


# --- round trip and canonical form ----------------------------------------------------------


def test_every_message_type_has_an_example() -> None:
    assert {type(m) for m in EXAMPLES.values()} == set(MESSAGE_TYPES.values())


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_round_trip_is_exact(name: str) -> None:
    message = EXAMPLES[name]
    payload = message.to_bytes()
    decoded = decode(payload)
    assert decoded == message
    assert type(decoded) is type(message)
    assert decoded.to_bytes() == payload


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_to_bytes_is_canonical_json(name: str) -> None:
    payload = EXAMPLES[name].to_bytes()
    body = json.loads(payload)
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    assert payload == canonical.encode()
    assert payload.isascii()
    assert list(body) == sorted(body)
    assert body["type"] == type(EXAMPLES[name]).TYPE
    assert body["v"] == MESSAGE_VERSION


def test_to_bytes_has_no_whitespace_outside_strings() -> None:
    message = RoundDone(SESSION, 1, "alice", MODEL, ("alice", "bob"), {"b": 1.0, "a": 2.0})
    payload = message.to_bytes()
    assert b" " not in payload
    assert b"\n" not in payload


def test_nested_metric_keys_are_sorted() -> None:
    payload = RoundDone(SESSION, 1, "alice", MODEL, (), {"zeta": 1.0, "alpha": 2.0}).to_bytes()
    assert payload.index(b'"alpha"') < payload.index(b'"zeta"')


def test_equal_messages_give_the_same_bytes() -> None:
    one = RoundDone(SESSION, 1, "alice", MODEL, ("a", "b"), {"x": 1.0, "y": 2.0}, 0.5)
    two = RoundDone(SESSION, 1, "alice", MODEL, ("a", "b"), {"y": 2.0, "x": 1.0}, 0.5)
    assert one == two
    assert one.to_bytes() == two.to_bytes()
    assert Submitted(SESSION, 1, "a", "u", DIGEST, 1, 1).to_bytes() == (
        Submitted(SESSION, 1, "a", "u", DIGEST, 1, 1).to_bytes()
    )


def test_equal_messages_with_int_and_float_numbers_give_the_same_bytes() -> None:
    as_int = RoundDone(SESSION, 1, "alice", MODEL, (), {"accuracy": 1}, 2)
    as_float = RoundDone(SESSION, 1, "alice", MODEL, (), {"accuracy": 1.0}, 2.0)
    assert as_int == as_float
    assert as_int.to_bytes() == as_float.to_bytes()


def test_different_messages_give_different_bytes() -> None:
    payloads = {m.to_bytes() for m in EXAMPLES.values()}
    assert len(payloads) == len(EXAMPLES)


def test_messages_are_frozen() -> None:
    with pytest.raises(AttributeError):
        EXAMPLES["submitted"].round = 2  # type: ignore[misc]


# --- to_bytes validates first ---------------------------------------------------------------


@pytest.mark.parametrize(
    "make",
    [
        lambda: Submitted("ab", 1, "alice", "u", DIGEST, 1, 1),
        lambda: Submitted(SESSION, -1, "alice", "u", DIGEST, 1, 1),
        lambda: Submitted(SESSION, 1, "alice", "u", "d1", 1, 1),
        lambda: Submitted(SESSION, 1, "alice", "u", DIGEST, -1, 1),
        lambda: Submitted(SESSION, 1, "alice", "u", DIGEST, 1, 0),
        lambda: RoundDone(SESSION, 1, "alice", "0f", ()),
        lambda: RoundDone(SESSION, 1, "alice", MODEL, (), {"loss": float("nan")}),
        lambda: RoundDone(SESSION, 1, "alice", MODEL, (), {"loss": float("inf")}),
    ],
    ids=[
        "short-session",
        "negative-round",
        "short-sha256",
        "negative-size",
        "zero-samples",
        "short-model-sha256",
        "nan-metric",
        "inf-metric",
    ],
)
def test_to_bytes_refuses_invalid_messages(make: Callable[[], Message]) -> None:
    with pytest.raises(MalformedMessage):
        make().to_bytes()


# --- decode rejects -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "payload",
    [b"", b"not json", b"{", b"\xff\xfe", b'{"type": "Submitted",}'],
    ids=["empty", "text", "truncated", "not-utf8", "trailing-comma"],
)
def test_decode_rejects_non_json(payload: bytes) -> None:
    assert "not JSON" in str(malformed(payload))


@pytest.mark.parametrize("payload", [b"[]", b"null", b"1", b'"Submitted"', b"true"])
def test_decode_rejects_non_objects(payload: bytes) -> None:
    assert "object" in str(malformed(payload))


@pytest.mark.parametrize("kind", ["Nope", "submitted", "", None, 1])
def test_decode_rejects_unknown_types(kind: object) -> None:
    body = body_of(EXAMPLES["submitted"])
    body["type"] = kind
    assert "type" in str(malformed(encode(body)))


def test_decode_rejects_a_missing_type() -> None:
    body = body_of(EXAMPLES["submitted"])
    del body["type"]
    malformed(encode(body))


@pytest.mark.parametrize("kind", [[], {}, ["Submitted"]], ids=["list", "object", "list-of-name"])
def test_decode_rejects_an_unhashable_type(kind: object) -> None:
    body = body_of(EXAMPLES["submitted"])
    body["type"] = kind
    malformed(encode(body))


@pytest.mark.parametrize("version", [0, 2, "1", None, 1.5])
def test_decode_rejects_other_versions(version: object) -> None:
    body = body_of(EXAMPLES["phase-closed"])
    body["v"] = version
    assert "version" in str(malformed(encode(body)))


def test_decode_rejects_a_missing_version() -> None:
    body = body_of(EXAMPLES["phase-closed"])
    del body["v"]
    assert "version" in str(malformed(encode(body)))


def test_decode_rejects_a_boolean_version() -> None:
    body = body_of(EXAMPLES["phase-closed"])
    body["v"] = True
    malformed(encode(body))


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_decode_rejects_each_missing_field(name: str) -> None:
    body = body_of(EXAMPLES[name])
    omittable = type(EXAMPLES[name]).OMITTED_WHEN_EMPTY
    for field_name in sorted(set(body) - {"type", "v"} - omittable):
        partial = {k: v for k, v in body.items() if k != field_name}
        assert field_name in str(malformed(encode(partial))), field_name
    for field_name in sorted(set(body) & omittable):  # left out: read as empty
        partial = {k: v for k, v in body.items() if k != field_name}
        assert not getattr(decode(encode(partial)), field_name)


def test_a_join_request_without_a_lock_signs_the_bytes_it_signed_before_the_field() -> None:
    old = (
        '{"deposit":0,"n_samples":1,"party":"erin_2","public_key":"' + "cd" * 32 + '",'
        '"round":0,"session":"' + SESSION + '","type":"JoinRequest","v":1}'
    )
    assert EXAMPLES["join-request-no-deposit"].to_bytes() == old.encode()
    assert b'"lock":"' + b"0a" * 32 + b'#1"' in EXAMPLES["join-request-locked"].to_bytes()


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_decode_rejects_an_extra_field(name: str) -> None:
    body = body_of(EXAMPLES[name])
    body["extra"] = 1
    assert "extra" in str(malformed(encode(body)))


def test_decode_rejects_fields_of_another_type() -> None:
    body = body_of(EXAMPLES["phase-closed"])
    body["type"] = "Rejected"
    malformed(encode(body))


WRONG_TYPES: list[tuple[str, str, object]] = [
    ("submitted", "round", "1"),
    ("submitted", "round", 1.0),
    ("submitted", "round", True),
    ("submitted", "round", None),
    ("submitted", "session", 5),
    ("submitted", "party", ["alice"]),
    ("submitted", "uri", None),
    ("submitted", "sha256", 1),
    ("submitted", "size", "1234"),
    ("submitted", "size", 12.0),
    ("submitted", "size", False),
    ("submitted", "n_samples", True),
    ("submitted", "proof_digest", 0),
    ("phase-closed", "phase", 1),
    ("phase-closed", "reason", {"why": "x"}),
    ("rejected", "party", None),
    ("round-done", "accepted", "alice,bob"),
    ("round-done", "accepted", {"alice": 1}),
    ("round-done", "metrics", [["accuracy", 0.9]]),
    ("round-done", "metrics", "accuracy=0.9"),
    ("round-done", "duration_s", "1.5"),
    ("round-done", "duration_s", True),
    ("round-done", "model_sha256", None),
    ("round-failed", "reason", 3),
]


@pytest.mark.parametrize(
    ("name", "field_name", "value"),
    WRONG_TYPES,
    ids=[f"{n}-{f}-{type(v).__name__}" for n, f, v in WRONG_TYPES],
)
def test_decode_rejects_wrong_field_types(name: str, field_name: str, value: object) -> None:
    body = body_of(EXAMPLES[name])
    body[field_name] = value
    malformed(encode(body))


@pytest.mark.parametrize(
    ("field_name", "value"),
    [("accepted", [1, 2]), ("accepted", [None]), ("metrics", {"accuracy": True})],
    ids=["accepted-ints", "accepted-null", "metric-bool"],
)
def test_decode_rejects_wrong_element_types(field_name: str, value: object) -> None:
    body = body_of(EXAMPLES["round-done"])
    body[field_name] = value
    malformed(encode(body))


@pytest.mark.parametrize(
    "session", ["AB" * 32, "ab" * 31, "ab" * 33, "zz" * 32, "", "5e" * 31 + "5 "]
)
def test_decode_rejects_bad_session_ids(session: str) -> None:
    body = body_of(EXAMPLES["rejected"])
    body["session"] = session
    assert "session" in str(malformed(encode(body)))


def test_decode_rejects_a_negative_round() -> None:
    body = body_of(EXAMPLES["rejected"])
    body["round"] = -1
    assert "round" in str(malformed(encode(body)))


@pytest.mark.parametrize(
    ("name", "field_name"), [("submitted", "sha256"), ("round-done", "model_sha256")]
)
@pytest.mark.parametrize("length", [0, 63, 65, 128])
def test_decode_rejects_digests_of_the_wrong_length(
    name: str, field_name: str, length: int
) -> None:
    body = body_of(EXAMPLES[name])
    body[field_name] = ("ab" * 64)[:length]
    assert field_name in str(malformed(encode(body)))


@pytest.mark.parametrize(
    ("name", "field_name"), [("submitted", "sha256"), ("round-done", "model_sha256")]
)
def test_decode_rejects_non_hex_digests(name: str, field_name: str) -> None:
    body = body_of(EXAMPLES[name])
    body[field_name] = "zz" * 32
    malformed(encode(body))


@pytest.mark.parametrize(("field_name", "value"), [("size", -1), ("n_samples", 0)])
def test_decode_rejects_out_of_range_sizes(field_name: str, value: int) -> None:
    body = body_of(EXAMPLES["submitted"])
    body[field_name] = value
    malformed(encode(body))


@pytest.mark.parametrize("token", [b"NaN", b"Infinity", b"-Infinity", b"1e999"])
def test_decode_rejects_non_finite_metrics(token: bytes) -> None:
    payload = EXAMPLES["round-done"].to_bytes()
    assert b'"accuracy":0.91' in payload
    assert "finite" in str(malformed(payload.replace(b'"accuracy":0.91', b'"accuracy":' + token)))


@pytest.mark.parametrize("token", [b"NaN", b"Infinity", b"-1.0"])
def test_decode_rejects_non_finite_or_negative_duration(token: bytes) -> None:
    payload = EXAMPLES["round-done"].to_bytes()
    assert b'"duration_s":1.5' in payload
    malformed(payload.replace(b'"duration_s":1.5', b'"duration_s":' + token))


def test_malformed_message_is_a_value_error() -> None:
    assert issubclass(MalformedMessage, ValueError)


# --- signing --------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_sign_produces_a_verifiable_envelope(key: IdentityKey, name: str) -> None:
    message = EXAMPLES[name]
    envelope = sign(message, "alice", key)
    assert isinstance(envelope, SignedEnvelope)
    assert envelope.sender == "alice"
    assert envelope.payload == message.to_bytes()
    assert key.public.verify(envelope.payload, envelope.signature)
    assert decode(envelope.payload) == message


def test_signature_does_not_verify_for_other_bytes_or_keys(key: IdentityKey) -> None:
    envelope = sign(EXAMPLES["submitted"], "alice", key)
    other = IdentityKey.from_seed(bytes(32))
    assert not key.public.verify(EXAMPLES["rejected"].to_bytes(), envelope.signature)
    assert not other.public.verify(envelope.payload, envelope.signature)


def test_sign_refuses_an_invalid_message(key: IdentityKey) -> None:
    with pytest.raises(MalformedMessage):
        sign(Submitted(SESSION, 1, "alice", "u", "short", 1, 1), "alice", key)


# --- membership messages (docs/membership.md): every hostile field is a named refusal -------


def _join_body(**changes: object) -> bytes:
    body = body_of(EXAMPLES["join-request"]) | changes
    return encode(body)


@pytest.mark.parametrize(
    ("field_name", "value", "reason"),
    [
        ("party", "Dave", "party must be a name"),
        ("party", "d" * 33, "party must be a name"),
        ("party", "", "party must be a name"),
        ("party", "dave\n", "party must be a name"),
        ("party", "x" * 100_000, "party must be a name"),
        ("public_key", "ab" * 31, "public_key must be 64"),
        ("public_key", "AB" * 32, "public_key must be 64"),
        ("public_key", "ab" * 4096, "public_key must be 64"),
        ("n_samples", 0, "n_samples must be"),
        ("n_samples", 10**13, "n_samples must be"),
        ("deposit", -1, "deposit must be"),
        ("deposit", 10**20, "deposit must be"),
        ("lock", "ab" * 32, "lock must be an out-ref"),
        ("lock", "AB" * 32 + "#0", "lock must be an out-ref"),
        ("lock", "ab" * 32 + "#65536", "lock must be an out-ref"),
        ("lock", "ab" * 32 + "#01", "lock must be an out-ref"),
        ("lock", "ab" * 32 + "#0\n", "lock must be an out-ref"),
        ("lock", "ab" * 4096 + "#0", "lock must be an out-ref"),
    ],
)
def test_a_join_request_with_a_hostile_field_is_malformed(
    field_name: str, value: object, reason: str
) -> None:
    assert reason in str(malformed(_join_body(**{field_name: value})))


@pytest.mark.parametrize(("field_name", "value"), [("n_samples", True), ("deposit", "5")])
def test_a_join_request_field_of_the_wrong_type_is_malformed(
    field_name: str, value: object
) -> None:
    assert "wrong type" in str(malformed(_join_body(**{field_name: value})))


def test_an_admit_naming_no_valid_candidate_is_malformed() -> None:
    body = body_of(EXAMPLES["admit"]) | {"candidate": "Not A Name"}
    assert "candidate must be" in str(malformed(encode(body)))
