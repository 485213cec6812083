"""Senders outside the keyring: newcomers that introduce themselves (docs/membership.md).

A channel checks every envelope against the session's keyring. With ``[membership]``
admission ``"open"`` or ``"vote"``, a party that no session file lists must still reach the
other parties: first with a self-signed *introduction* (its ``JoinRequest``, which carries
the public key it signs with), then, once the round machine admits it, with its protocol
messages. The channel does not decide membership: the round machine does
(:class:`~zkadapt.protocol.history.SessionHistory` drops the entries of an outsider that was
never admitted, and checks an admitted newcomer's entries against its admitted key). What
the channel does is keep outsiders' garbage out, the same way in every reader, in channel
order:

* an outsider's payload is at most :attr:`OutsiderPolicy.max_payload` bytes;
* an introduction must name its sender and verify against the key it carries, else it is
  refused: ``join request not signed by the key it carries``;
* any other envelope of an outsider must verify against a key that one of its own earlier
  introductions carried (``outsider NAME has not introduced itself on this channel``,
  ``signature from outsider NAME verifies against none of the keys it introduced``);
* at most :attr:`OutsiderPolicy.max_outsiders` names, each with at most
  :attr:`OutsiderPolicy.max_keys_each` introduced keys (a bound on what hostile
  introductions make a reader remember).

The channel package cannot read protocol messages (it is a leaf, tests/test_layering.py):
the composition root passes :attr:`OutsiderPolicy.introduction`, the function that finds the
name and key an introduction claims in a payload.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from zkadapt.channel.base import SignedEnvelope
from zkadapt.crypto.identity import PublicIdentity

#: ``payload -> (name, public key hex)`` for an introduction (a ``JoinRequest``), else None.
IntroductionReader = Callable[[bytes], "tuple[str, str] | None"]

NOT_SELF_SIGNED = "join request not signed by the key it carries"
#: The longest outsider name carried (a session file allows 32 characters).
MAX_NAME = 64


@dataclass(frozen=True)
class OutsiderPolicy:
    """Whether and how a channel carries envelopes of senders outside its keyring.

    Attributes:
        introduction: reads the ``(name, public key hex)`` an introduction claims from a
            payload; None for any other payload (and for anything it cannot parse).
        max_payload: the largest outsider payload carried (bytes).
        max_outsiders: distinct outsider names a reader remembers keys for.
        max_keys_each: introduced keys remembered per outsider name.
    """

    introduction: IntroductionReader
    max_payload: int = 256 * 1024
    max_outsiders: int = 64
    max_keys_each: int = 4


@dataclass(frozen=True)
class OutsiderCheck:
    """What :meth:`OutsiderKeys.check` found: the key that signed, or why it is refused."""

    key: PublicIdentity | None
    reason: str = ""
    introduces: bool = False


@dataclass
class OutsiderKeys:
    """The keys outsiders introduced on one channel, folded in channel order.

    :meth:`check` is pure; :meth:`note` remembers an accepted introduction. Both are
    idempotent for an entry seen again (a reader that re-verifies what it read before), and
    remembering more keys only ever accepts more, so a re-read never refuses what a first
    read accepted.
    """

    policy: OutsiderPolicy
    keys: dict[str, list[str]] = field(default_factory=dict)

    def check(self, envelope: SignedEnvelope) -> OutsiderCheck:
        """Whether ``envelope`` of an outsider is carried, and under which key."""
        sender, payload, signature = envelope.sender, envelope.payload, envelope.signature
        if not 0 < len(sender) <= MAX_NAME:
            return OutsiderCheck(None, f"outsider name of {len(sender)} characters (1..{MAX_NAME})")
        if len(payload) > self.policy.max_payload:
            return OutsiderCheck(
                None, f"outsider {sender!r}: payload over {self.policy.max_payload} bytes"
            )
        claimed = _claimed(self.policy, payload)
        if claimed is not None:
            name, key_hex = claimed
            if name != sender:
                return OutsiderCheck(None, f"join request names {name!r} but is sent as {sender!r}")
            key = _identity(key_hex)
            if key is None or not key.verify(payload, signature):
                return OutsiderCheck(None, NOT_SELF_SIGNED)
            known = self.keys.get(sender, [])
            if key_hex not in known:
                if sender not in self.keys and len(self.keys) >= self.policy.max_outsiders:
                    return OutsiderCheck(
                        None,
                        f"too many outsiders on this channel (at most {self.policy.max_outsiders})",
                    )
                if len(known) >= self.policy.max_keys_each:
                    return OutsiderCheck(
                        None,
                        f"outsider {sender!r} introduced too many keys (at most "
                        f"{self.policy.max_keys_each})",
                    )
            return OutsiderCheck(key, introduces=True)
        known = self.keys.get(sender)
        if not known:
            return OutsiderCheck(
                None, f"outsider {sender!r} has not introduced itself on this channel"
            )
        for key_hex in known:
            key = PublicIdentity.from_hex(key_hex)
            if key.verify(payload, signature):
                return OutsiderCheck(key)
        return OutsiderCheck(
            None,
            f"signature from outsider {sender!r} verifies against none of the keys it introduced",
        )

    def note(self, envelope: SignedEnvelope, found: OutsiderCheck) -> None:
        """Remember the key of an accepted introduction (after :meth:`check` accepted it)."""
        if found.key is None or not found.introduces:
            return
        known = self.keys.setdefault(envelope.sender, [])
        if found.key.hex not in known:
            known.append(found.key.hex)

    def judge(self, envelope: SignedEnvelope) -> OutsiderCheck:
        """:meth:`check`, then :meth:`note`: fold one entry in channel order."""
        found = self.check(envelope)
        self.note(envelope, found)
        return found


def _claimed(policy: OutsiderPolicy, payload: bytes) -> tuple[str, str] | None:
    """The introduction's claim, or None; a reader that fails is treated as no claim."""
    try:
        claimed = policy.introduction(payload)
    except (ValueError, TypeError):
        return None
    if claimed is None or not isinstance(claimed, tuple) or len(claimed) != 2:
        return None
    name, key = claimed
    return (name, key) if isinstance(name, str) and isinstance(key, str) else None


def _identity(key_hex: str) -> PublicIdentity | None:
    try:
        return PublicIdentity.from_hex(key_hex)
    except (ValueError, TypeError):
        return None
