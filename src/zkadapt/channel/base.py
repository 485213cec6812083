"""The ordered, signed message channel (DESIGN.md section 6).

A channel totally orders signed envelopes. It does not interpret messages: the round
protocol (``zkadapt.protocol``) does. What a channel guarantees is that every entry it
returns was signed by the party it names (checked against the session's keyring), and
that its order cannot be rewritten without detection.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable


@dataclass(frozen=True)
class SignedEnvelope:
    """A message as it travels: canonical payload bytes, who sent it, and their signature.

    Attributes:
        sender: party name, as listed in the session file.
        payload: canonical JSON bytes of the message (see ``zkadapt.protocol.messages``).
        signature: Ed25519 signature by ``sender``'s identity key over ``payload``.
    """

    sender: str
    payload: bytes
    signature: bytes


@dataclass(frozen=True)
class Entry:
    """One ordered channel entry.

    Attributes:
        seq: position in the channel, starting at 1, without gaps.
        envelope: the signed message.
        timestamp: wall-clock seconds when the channel accepted it (informative only:
            agreement never depends on clocks).
    """

    seq: int
    envelope: SignedEnvelope
    timestamp: float


@dataclass(frozen=True)
class Receipt:
    """Proof of posting: the entry's position."""

    seq: int


@runtime_checkable
class Channel(Protocol):
    """Append signed envelopes; read them back in one total order."""

    def post(self, envelope: SignedEnvelope) -> Receipt:
        """Append ``envelope``; raises ChannelError if its signature does not verify."""
        ...

    def history(self, since: int = 0) -> list[Entry]:
        """Entries with ``seq > since`` in order; verifies signatures and the order's integrity.

        Raises:
            ChannelError: an entry is tampered with, reordered, unsigned or from an unknown party.
        """
        ...

    def wait(self, since: int, timeout: float) -> list[Entry]:
        """Block until entries with ``seq > since`` exist or ``timeout`` seconds pass."""
        ...

    def close(self) -> None:
        """Release connections and files."""
        ...
