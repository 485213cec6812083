"""A party's escrow votes after its head was closed: a ballot in the shared store (issue 19;
docs/escrow.md, "A premature close").

A closed head takes no message, so the votes that slash the closer (``KillVote`` with reason
``closed-early``, signed with the voter's payment key) and release the others travel out of
band: each honest party writes one ballot under the fixed key :func:`ballot_key` in its own
store location, and the settler reads every other party's ballot there.

A ballot is canonical JSON ``{type: "EscrowBallot", v: 1, session, party, entries: [{payload,
signature}]}``: each entry is an escrow message (canonical JSON text) with the party's
identity-key signature over it, exactly what the channel would have carried in a
:class:`~zkadapt.channel.base.SignedEnvelope`. :func:`read_ballot` is total over hostile
bytes: bounded, every signature checked against the session's keyring, only ``KillVote`` and
``ReleaseVote`` of this session by this party kept. The rules then judge the votes as they
judge the channel's (payment signatures, depositors, majorities): :func:`as_entries` folds
them after the channel's last entry, in voter order.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from zkadapt.channel.base import Entry, SignedEnvelope
from zkadapt.errors import ZkAdaptError
from zkadapt.escrow.messages import (
    EscrowMessage,
    KillVote,
    MalformedEscrowMessage,
    ReleaseVote,
    read_payload,
)

BALLOT_TYPE = "EscrowBallot"
BALLOT_VERSION = 1
#: Largest ballot read (a vote is about 400 bytes; a ballot holds one per other party).
MAX_BALLOT_BYTES = 256 * 1024
#: Most entries read from one ballot.
MAX_ENTRIES = 256


class BallotInvalid(ZkAdaptError):
    """A ballot that is not a well-formed, signed ballot of the party it claims."""


def ballot_key(session: str, party: str) -> str:
    """The fixed key of ``party``'s ballot: ``zkadapt/<session>/escrow/<party>.json``."""
    return f"zkadapt/{session}/escrow/{party}.json"


def encode_ballot(
    identity: Any, session: str, party: str, messages: Sequence[EscrowMessage]
) -> bytes:
    """``party``'s ballot of ``messages``, each signed with its identity key."""
    entries = []
    for message in messages:
        payload = message.to_bytes()
        entries.append({"payload": payload.decode(), "signature": identity.sign(payload).hex()})
    body = {
        "type": BALLOT_TYPE,
        "v": BALLOT_VERSION,
        "session": session,
        "party": party,
        "entries": entries,
    }
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


def read_ballot(data: bytes, keyring: Any, session: str, party: str) -> list[SignedEnvelope]:
    """The signed votes in ``party``'s ballot ``data`` (each checked against ``keyring``).

    Raises:
        BallotInvalid: too large, not JSON, not a ballot of this session and party, or an
            entry whose identity signature does not verify.
    """
    if len(data) > MAX_BALLOT_BYTES:
        raise BallotInvalid(f"{party}'s ballot is larger than {MAX_BALLOT_BYTES} bytes")
    try:
        body: Any = json.loads(data)
    except (ValueError, RecursionError):
        raise BallotInvalid(f"{party}'s ballot is not JSON") from None
    if (
        not isinstance(body, dict)
        or body.get("type") != BALLOT_TYPE
        or body.get("v") != BALLOT_VERSION
        or body.get("session") != session
        or body.get("party") != party
        or not isinstance(body.get("entries"), list)
    ):
        raise BallotInvalid(f"{party}'s ballot is not a ballot of this session by {party}")
    if len(body["entries"]) > MAX_ENTRIES:
        raise BallotInvalid(f"{party}'s ballot holds more than {MAX_ENTRIES} entries")
    envelopes = []
    for item in body["entries"]:
        payload, signature = _entry(item, party)
        if not keyring.verify(party, payload, signature):
            raise BallotInvalid(f"{party}'s ballot holds an entry {party} did not sign")
        try:
            message = read_payload(payload)
        except MalformedEscrowMessage:
            continue  # the rules would ignore it too
        if isinstance(message, KillVote | ReleaseVote) and (
            message.session == session and message.party == party
        ):
            envelopes.append(SignedEnvelope(party, payload, signature))
    return envelopes


def _entry(item: Any, party: str) -> tuple[bytes, bytes]:
    if not isinstance(item, dict):
        raise BallotInvalid(f"{party}'s ballot holds an entry that is not an object")
    payload, signature = item.get("payload"), item.get("signature")
    if not isinstance(payload, str) or not isinstance(signature, str) or len(signature) != 128:
        raise BallotInvalid(f"{party}'s ballot holds an entry without payload and signature")
    try:
        return payload.encode(), bytes.fromhex(signature)
    except ValueError:
        raise BallotInvalid(f"{party}'s ballot holds a signature that is not hex") from None


def as_entries(after: int, ballots: Mapping[str, Iterable[SignedEnvelope]]) -> list[Entry]:
    """The ballots' votes as channel entries numbered after seq ``after``, voter by voter in
    name order (a fixed order every reader derives the same way)."""
    out: list[Entry] = []
    for voter in sorted(ballots):
        for envelope in ballots[voter]:
            out.append(Entry(after + len(out) + 1, envelope, 0.0))
    return out
