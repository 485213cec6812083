"""Escrow messages on the channel, and the progress signals the escrow reads (DESIGN.md 7).

The seed's dropout design gives each party three tokens: *signal* (progress), *claim* (refund
after a completed session) and *kill* (vote to slash a saboteur). Here they are channel
messages, canonical JSON like the round protocol's (sorted keys, no whitespace, ``type`` and
``v`` tags), signed and ordered by whichever channel backend the session uses:

* ``EscrowDeposit{session, round=0, party, amount, ref}`` -- the party locked ``amount``.
* progress signals are the round protocol's own ``Submitted`` and ``RoundDone`` messages; the
  escrow reads only their ``type``, ``session``, ``round`` and ``party`` fields, so it does not
  depend on :mod:`zkadapt.protocol` (DESIGN.md section 1: leaves never import protocol).
* ``KillVote{session, round, party, target, reason, vkey, signature}`` -- ``party`` votes to
  slash ``target``, who missed ``round``; ``vkey``/``signature`` (hex) are the vote signed
  with the voter's payment key (:mod:`zkadapt.escrow.votes`), what the layer-1 ``Slash``
  carries (empty for an escrow that is never settled on layer 1).
* ``ReleaseVote{session, round, party, target, vkey, signature}`` -- ``party`` agrees that
  ``target`` may have its deposit back: the layer-1 ``Release`` evidence.
* ``Claim{session, round, party}`` -- ``party`` asks for its settlement.

Entries whose signer is not the party they speak for are ignored, as the protocol does.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from typing import Any, ClassVar

#: Wire format version of the escrow messages.
ESCROW_VERSION = 1
#: Kill-vote reasons the seed's design names.
KILL_REASONS = ("silent", "closed-early")
#: Protocol messages that count as a party's progress signal.
SIGNAL_TYPES = ("Submitted", "RoundDone")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
#: Longest ``EscrowDeposit.ref`` (a layer-1 out-ref is 64 hex, ``#`` and an index).
MAX_REF_CHARS = 80
_HEX128 = re.compile(r"^[0-9a-f]{128}$")


class MalformedEscrowMessage(ValueError):
    """Bytes that claim an escrow type but are not a valid escrow message (a peer's fault)."""


@dataclass(frozen=True)
class EscrowMessage:
    """Fields every escrow message carries."""

    TYPE: ClassVar[str] = ""

    session: str
    round: int
    party: str

    def validate(self) -> None:
        """Check fields; raises :class:`MalformedEscrowMessage`."""
        if not isinstance(self.session, str) or not _HEX64.match(self.session):
            raise MalformedEscrowMessage("session must be 64 lowercase hex characters")
        if not isinstance(self.round, int) or isinstance(self.round, bool) or self.round < 0:
            raise MalformedEscrowMessage("round must be an integer >= 0")
        if not isinstance(self.party, str) or not self.party:
            raise MalformedEscrowMessage("party must be a non-empty name")

    def to_bytes(self) -> bytes:
        """Canonical JSON: what is signed and posted."""
        self.validate()
        body = {"type": self.TYPE, "v": ESCROW_VERSION, **asdict(self)}
        return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


@dataclass(frozen=True)
class EscrowDeposit(EscrowMessage):
    TYPE: ClassVar[str] = "EscrowDeposit"

    amount: int
    ref: str = ""

    def validate(self) -> None:
        super().validate()
        if not isinstance(self.amount, int) or isinstance(self.amount, bool) or self.amount < 1:
            raise MalformedEscrowMessage("amount must be a positive integer (lovelace)")
        if not isinstance(self.ref, str) or len(self.ref) > MAX_REF_CHARS:
            raise MalformedEscrowMessage(f"ref must be text of at most {MAX_REF_CHARS} characters")


@dataclass(frozen=True)
class KillVote(EscrowMessage):
    TYPE: ClassVar[str] = "KillVote"

    target: str
    reason: str
    vkey: str = ""
    signature: str = ""

    def validate(self) -> None:
        super().validate()
        if self.reason not in KILL_REASONS:
            raise MalformedEscrowMessage(f"reason must be one of {KILL_REASONS}")
        _check_target(self)
        _check_signed(self.vkey, self.signature, optional=True)

    def to_bytes(self) -> bytes:
        """Canonical JSON; an unsigned vote leaves ``vkey``/``signature`` out (its old form)."""
        if self.vkey or self.signature:
            return super().to_bytes()
        self.validate()
        body = {"type": self.TYPE, "v": ESCROW_VERSION, **asdict(self)}
        del body["vkey"], body["signature"]
        return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


@dataclass(frozen=True)
class ReleaseVote(EscrowMessage):
    """``party`` agrees that ``target`` may have its deposit back (signed with its payment key)."""

    TYPE: ClassVar[str] = "ReleaseVote"

    target: str
    vkey: str
    signature: str

    def validate(self) -> None:
        super().validate()
        _check_target(self)
        _check_signed(self.vkey, self.signature, optional=False)


def _check_target(message: KillVote | ReleaseVote) -> None:
    if not isinstance(message.target, str) or not message.target:
        raise MalformedEscrowMessage("target must be a party name")
    if message.target == message.party:
        raise MalformedEscrowMessage("a party cannot vote on itself")


def _check_signed(vkey: object, signature: object, *, optional: bool) -> None:
    """``vkey`` 64 hex and ``signature`` 128 hex (lowercase), or both empty if optional."""
    if optional and vkey == "" and signature == "":
        return
    if not isinstance(vkey, str) or not _HEX64.match(vkey):
        raise MalformedEscrowMessage("vkey must be 64 lowercase hex characters")
    if not isinstance(signature, str) or not _HEX128.match(signature):
        raise MalformedEscrowMessage("signature must be 128 lowercase hex characters")


@dataclass(frozen=True)
class Claim(EscrowMessage):
    TYPE: ClassVar[str] = "Claim"


_TYPES: dict[str, type[EscrowMessage]] = {
    cls.TYPE: cls for cls in (EscrowDeposit, KillVote, ReleaseVote, Claim)
}
#: The escrow's own message types (the round protocol skips them on the shared channel).
ESCROW_TYPES = frozenset(_TYPES)
#: Longest payload :func:`is_escrow_payload` parses (an escrow message is a few hundred bytes).
MAX_ESCROW_BYTES = 4096


def is_escrow_payload(payload: bytes) -> bool:
    """Whether ``payload`` claims an escrow message type (valid or not).

    The round protocol and the escrow share the session's channel: the protocol's history
    skips these entries instead of naming their sender for an unknown message type, and the
    escrow's rules judge them (:mod:`zkadapt.escrow.rules`).
    """
    if len(payload) > MAX_ESCROW_BYTES:
        return False
    try:
        body: Any = json.loads(payload)
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
        return False
    kind = body.get("type") if isinstance(body, dict) else None
    return isinstance(kind, str) and kind in ESCROW_TYPES


@dataclass(frozen=True)
class Signal:
    """A progress signal read from a protocol message."""

    kind: str
    session: str
    round: int
    party: str


def read_payload(payload: bytes) -> EscrowMessage | Signal | None:
    """The escrow message or progress signal in ``payload``; None if it is neither.

    Raises:
        MalformedEscrowMessage: an escrow type with missing or invalid fields.
    """
    try:
        body: Any = json.loads(payload)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
    if not isinstance(body, dict):
        return None
    kind = body.get("type")
    if kind in SIGNAL_TYPES:
        session, round_, party = body.get("session"), body.get("round"), body.get("party")
        if isinstance(session, str) and isinstance(round_, int) and isinstance(party, str):
            return Signal(kind, session, round_, party)
        return None
    cls = _TYPES.get(kind) if isinstance(kind, str) else None
    if cls is None:
        return None
    if body.get("v") != ESCROW_VERSION:
        raise MalformedEscrowMessage(f"unsupported escrow message version {body.get('v')!r}")
    fields = {k: v for k, v in body.items() if k not in ("type", "v")}
    try:
        message = cls(**fields)
    except TypeError as exc:
        raise MalformedEscrowMessage(f"{kind}: {exc}") from None
    message.validate()
    return message
