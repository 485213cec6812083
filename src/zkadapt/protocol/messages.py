"""Channel messages of the round protocol: typed, canonical, signed (DESIGN.md section 3).

Every message is a frozen dataclass with exactly one serialization boundary:
:meth:`Message.to_bytes` writes canonical JSON (sorted keys, no whitespace, a ``type`` tag
and a version) and :func:`decode` validates before it returns. The channel signs and orders
the bytes; it never looks inside.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from typing import Any, ClassVar

from zkadapt.bounded_json import JsonLimitError, loads_bounded
from zkadapt.channel.base import SignedEnvelope

#: Wire format version; bump on any incompatible change.
MESSAGE_VERSION = 1

#: The one phase with a channel-ordered cut so far (DESIGN.md section 3, COLLECT).
SUBMIT_PHASE = "submit"

#: Largest signed message payload a party parses (an honest one is a few KiB).
MAX_MESSAGE_BYTES = 256 * 1024


class MalformedMessage(ValueError):
    """Bytes on the channel that are not a valid message (a peer's fault, never fatal)."""


@dataclass(frozen=True)
class Message:
    """Base of every channel message: which session and round it belongs to."""

    TYPE: ClassVar[str] = ""
    #: Fields written only when they are not empty (added later: older bytes lack them, and
    #: such a message signs the same bytes as before the field existed).
    OMITTED_WHEN_EMPTY: ClassVar[frozenset[str]] = frozenset()

    session: str
    round: int

    def validate(self) -> None:
        """Check field ranges; raises :class:`MalformedMessage`."""
        if not is_hex_digest(self.session):
            raise MalformedMessage("session must be 64 lowercase hex characters")
        if self.round < 0:
            raise MalformedMessage("round must be >= 0")

    def to_bytes(self) -> bytes:
        """Canonical JSON bytes: what is signed and posted."""
        self.validate()
        body = {"type": self.TYPE, "v": MESSAGE_VERSION, **asdict(self)}
        for name in self.OMITTED_WHEN_EMPTY:
            if not body[name]:
                del body[name]
        return json.dumps(body, sort_keys=True, separators=(",", ":"), allow_nan=False).encode()


@dataclass(frozen=True)
class Submitted(Message):
    """A party uploaded its update for ``round`` (step 5, SIGNAL)."""

    TYPE: ClassVar[str] = "Submitted"

    party: str
    uri: str
    sha256: str
    size: int
    n_samples: int
    proof_digest: str = ""

    def validate(self) -> None:
        super().validate()
        if not is_hex_digest(self.sha256):
            raise MalformedMessage("sha256 must be 64 lowercase hex characters")
        if self.size < 0 or self.n_samples < 1:
            raise MalformedMessage("size must be >= 0 and n_samples >= 1")


@dataclass(frozen=True)
class PhaseClosed(Message):
    """The first such entry in channel order closes ``phase`` of ``round`` for everyone."""

    TYPE: ClassVar[str] = "PhaseClosed"

    phase: str
    reason: str


@dataclass(frozen=True)
class Rejected(Message):
    """The sender rejected ``party``'s update for ``round``, with a specific reason."""

    TYPE: ClassVar[str] = "Rejected"

    party: str
    reason: str


@dataclass(frozen=True)
class RoundDone(Message):
    """The sender applied ``round``: its digest of G(round) and its evaluation of it."""

    TYPE: ClassVar[str] = "RoundDone"

    party: str
    model_sha256: str
    accepted: tuple[str, ...]
    metrics: dict[str, float] = field(default_factory=dict)
    duration_s: float = 0.0
    timing: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # one canonical encoding for equal values: every number is a float on the wire
        for name in ("metrics", "timing"):
            values = getattr(self, name)
            if isinstance(values, dict) and all(_is_number(v) for v in values.values()):
                object.__setattr__(self, name, {k: float(v) for k, v in values.items()})
        if _is_number(self.duration_s):
            object.__setattr__(self, "duration_s", float(self.duration_s))

    def validate(self) -> None:
        super().validate()
        if not is_hex_digest(self.model_sha256):
            raise MalformedMessage("model_sha256 must be 64 lowercase hex characters")
        if not all(isinstance(p, str) for p in self.accepted):
            raise MalformedMessage("accepted must be a list of party names")
        for name in ("metrics", "timing"):
            if not all(
                isinstance(k, str) and _is_finite(v) for k, v in getattr(self, name).items()
            ):
                raise MalformedMessage(f"{name} must map names to finite numbers")
        if not _is_finite(self.duration_s) or self.duration_s < 0:
            raise MalformedMessage("duration_s must be a finite number >= 0")


@dataclass(frozen=True)
class RoundFailed(Message):
    """The sender found ``round`` below quorum; the session stops."""

    TYPE: ClassVar[str] = "RoundFailed"

    reason: str


@dataclass(frozen=True)
class Joined(Message):
    """A party declares its training-set size before round 1 (round 0; CRYPTO.md §3 weights)."""

    TYPE: ClassVar[str] = "Joined"

    party: str
    n_samples: int

    def validate(self) -> None:
        super().validate()
        if self.n_samples < 1:
            raise MalformedMessage("n_samples must be >= 1")


@dataclass(frozen=True)
class KeyDealt(Message):
    """The dealer published threshold key ``epoch`` (used from ``round`` on) and sealed shares.

    ``public`` and each ``shares[party]`` are object references ``{"uri", "sha256", "size"}``;
    every share is sealed to its party's identity key (DESIGN.md section 4).
    """

    TYPE: ClassVar[str] = "KeyDealt"

    party: str
    epoch: int
    key_id: str
    public: dict[str, Any]
    shares: dict[str, dict[str, Any]]

    def validate(self) -> None:
        super().validate()
        if self.epoch < 0 or not is_hex_digest(self.key_id):
            raise MalformedMessage("epoch must be >= 0 and key_id a hex digest")
        if not _is_ref(self.public) or not all(
            isinstance(k, str) and _is_ref(v) for k, v in self.shares.items()
        ):
            raise MalformedMessage("public and shares must be object references")


@dataclass(frozen=True)
class KeyGenStep(Message):
    """The sender stored its messages of distributed key generation ``epoch``, round ``step``.

    ``objects`` maps a recipient party (each sealed to that party) or ``"*"`` (one public
    object for everybody) to an object reference (:mod:`zkadapt.protocol.distributed_keys`).
    """

    TYPE: ClassVar[str] = "KeyGenStep"

    party: str
    epoch: int
    step: int
    objects: dict[str, dict[str, Any]]

    def validate(self) -> None:
        super().validate()
        if self.epoch < 0 or self.step < 0:
            raise MalformedMessage("epoch and step must be >= 0")
        if not self.objects or not all(
            isinstance(k, str) and _is_ref(v) for k, v in self.objects.items()
        ):
            raise MalformedMessage("objects must map recipients to object references")


@dataclass(frozen=True)
class DecryptionShare(Message):
    """The sender stored its (proved) decryption shares of round ``round``'s aggregate."""

    TYPE: ClassVar[str] = "DecryptionShare"

    party: str
    uri: str
    sha256: str
    size: int
    key_id: str

    def validate(self) -> None:
        super().validate()
        if not (is_hex_digest(self.sha256) and is_hex_digest(self.key_id)) or self.size < 0:
            raise MalformedMessage("sha256 and key_id must be hex digests, size >= 0")


#: A party name as the session file allows it (``PartyConfig.name``): what a newcomer may call
#: itself. Checked on the wire so that no name a session file could not hold gets in.
NAME_PATTERN = re.compile(r"[a-z][a-z0-9_-]{0,31}")

#: The largest declared training-set size and deposit a message may carry (bounded fields).
MAX_SAMPLES = 10**12
MAX_DEPOSIT = 45 * 10**15  # lovelace: the whole ada supply


def is_party_name(text: object) -> bool:
    """Whether ``text`` is a valid party name (:data:`NAME_PATTERN`)."""
    return isinstance(text, str) and NAME_PATTERN.fullmatch(text) is not None


@dataclass(frozen=True)
class JoinRequest(Message):
    """A party that the session file does not list asks to join (docs/membership.md).

    Signed by the newcomer's own identity key, whose public half travels in the message
    (it is in no session file): a reader checks the envelope's signature against
    ``public_key`` before the round machine decides admission. ``round`` is the round the
    newcomer saw in progress (informative: admission follows channel order alone);
    ``n_samples`` its declared training-set size (its FedAvg weight once admitted);
    ``deposit`` what it locked in the escrow (lovelace; 0 without escrow); ``lock`` the
    out-ref (``<64 hex>#<index>``) of its layer-1 lock (empty without a layer-1 escrow),
    which the members check before they vote to admit it (docs/membership.md, "Escrow").
    """

    TYPE: ClassVar[str] = "JoinRequest"
    OMITTED_WHEN_EMPTY: ClassVar[frozenset[str]] = frozenset({"lock"})

    party: str
    public_key: str
    n_samples: int
    deposit: int = 0
    lock: str = ""

    def validate(self) -> None:
        super().validate()
        if not is_party_name(self.party):
            raise MalformedMessage("party must be a name like a-z0-9_- (1-32, a letter first)")
        if not is_hex_digest(self.public_key):
            raise MalformedMessage("public_key must be 64 lowercase hex characters")
        if not 1 <= self.n_samples <= MAX_SAMPLES:
            raise MalformedMessage(f"n_samples must be 1..{MAX_SAMPLES}")
        if not 0 <= self.deposit <= MAX_DEPOSIT:
            raise MalformedMessage(f"deposit must be 0..{MAX_DEPOSIT}")
        if self.lock and not is_out_ref(self.lock):
            raise MalformedMessage("lock must be an out-ref: <64 hex>#<index 0..65535>")


@dataclass(frozen=True)
class Admit(Message):
    """A member votes to admit ``candidate``'s pending ``JoinRequest``
    (``membership.admission = "vote"``; docs/membership.md)."""

    TYPE: ClassVar[str] = "Admit"

    party: str
    candidate: str

    def validate(self) -> None:
        super().validate()
        if not (is_party_name(self.party) and is_party_name(self.candidate)):
            raise MalformedMessage("party and candidate must be party names")


def _is_ref(value: object) -> bool:
    return (
        isinstance(value, dict)
        and set(value) == {"uri", "sha256", "size"}
        and isinstance(value["uri"], str)
        and is_hex_digest(value["sha256"])
        and type(value["size"]) is int
        and value["size"] >= 0
    )


_OUT_REF = re.compile(r"[0-9a-f]{64}#(0|[1-9][0-9]{0,4})")


def is_out_ref(text: object) -> bool:
    """Whether ``text`` names a layer-1 output as ``<64 lowercase hex>#<index 0..65535>``."""
    match = isinstance(text, str) and _OUT_REF.fullmatch(text)
    return bool(match) and int(str(text).partition("#")[2]) <= 0xFFFF


def is_hex_digest(text: object) -> bool:
    """Whether ``text`` is a SHA-256 digest in lowercase hex (the one digest format)."""
    return isinstance(text, str) and len(text) == 64 and all(c in "0123456789abcdef" for c in text)


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_finite(value: object) -> bool:
    return _is_number(value) and math.isfinite(value)  # type: ignore[arg-type]


MESSAGE_TYPES: dict[str, type[Message]] = {
    cls.TYPE: cls
    for cls in (
        Submitted,
        PhaseClosed,
        Rejected,
        RoundDone,
        RoundFailed,
        Joined,
        KeyDealt,
        KeyGenStep,
        DecryptionShare,
        JoinRequest,
        Admit,
    )
}


def decode(payload: bytes) -> Message:
    """Parse and validate canonical message bytes.

    Raises:
        MalformedMessage: not JSON within the limits of :mod:`zkadapt.bounded_json` (size
            ``MAX_MESSAGE_BYTES``, nesting, number lengths), unknown type or version, wrong
            fields or ranges.
    """
    try:
        body = loads_bounded(payload, max_bytes=MAX_MESSAGE_BYTES)
    except JsonLimitError as exc:
        raise MalformedMessage(str(exc)) from None
    if not isinstance(body, dict):
        raise MalformedMessage("not a JSON object")
    kind = body.pop("type", None)
    cls = MESSAGE_TYPES.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise MalformedMessage("unknown message type")
    version = body.pop("v", None)
    if type(version) is not int or version != MESSAGE_VERSION:
        raise MalformedMessage("unsupported message version")
    names = {f.name for f in fields(cls)}
    missing = names - set(body)
    if set(body) - names or not missing <= cls.OMITTED_WHEN_EMPTY:
        raise MalformedMessage(f"{cls.TYPE} fields do not match: {sorted(set(body) ^ names)}")
    if "accepted" in body and isinstance(body["accepted"], list):
        body["accepted"] = tuple(body["accepted"])
    msg = _construct(cls, body)
    msg.validate()
    return msg


def _construct(cls: type[Message], body: dict[str, Any]) -> Message:
    expected = {
        "session": str,
        "round": int,
        "party": str,
        "uri": str,
        "sha256": str,
        "size": int,
        "n_samples": int,
        "proof_digest": str,
        "phase": str,
        "reason": str,
        "model_sha256": str,
        "accepted": tuple,
        "metrics": dict,
        "duration_s": (int, float),
        "timing": dict,
        "epoch": int,
        "key_id": str,
        "public": dict,
        "shares": dict,
        "step": int,
        "objects": dict,
        "public_key": str,
        "deposit": int,
        "candidate": str,
        "lock": str,
    }
    for name, value in body.items():
        kind = expected.get(name)
        if kind is not None and (not isinstance(value, kind) or isinstance(value, bool)):
            raise MalformedMessage(f"{cls.TYPE}.{name} has the wrong type")
    return cls(**body)


def sign(message: Message, sender: str, signer: Any) -> SignedEnvelope:
    """Serialize ``message`` and sign it with ``signer`` (an ``IdentityKey``)."""
    payload = message.to_bytes()
    return SignedEnvelope(sender=sender, payload=payload, signature=signer.sign(payload))


def introduction_reader(session_id: str) -> Callable[[bytes], tuple[str, str] | None]:
    """The channel's :attr:`~zkadapt.channel.outsiders.OutsiderPolicy.introduction` for a
    session newcomers may join: a payload that decodes as a ``JoinRequest`` of
    ``session_id`` introduces ``(party, public_key)``; anything else introduces nobody."""

    def introduced(payload: bytes) -> tuple[str, str] | None:
        try:
            message = decode(payload)
        except MalformedMessage:
            return None
        if not isinstance(message, JoinRequest) or message.session != session_id:
            return None
        return message.party, message.public_key

    return introduced
