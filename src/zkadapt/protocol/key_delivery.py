"""Storing a threshold key for the parties: the public key in the clear, each share sealed.

Used by every key source (DESIGN.md section 4): a party that deals (``privacy.dealer``), the
external key-generation centre (``zkadapt keygen``, :mod:`zkadapt.kgc`) and each party of a
distributed key generation (which seals its own share to itself so that it can reopen it
after a restart). The objects are announced by a signed ``KeyDealt`` on the channel, whose
sha256 digests authenticate the otherwise anonymous sealed boxes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from zkadapt.crypto.identity import Keyring
from zkadapt.crypto.sealing import seal_to
from zkadapt.crypto.threshold import KeyShare, ThresholdPublicKey
from zkadapt.protocol.messages import KeyDealt
from zkadapt.protocol.publishing import publish
from zkadapt.storage.base import ObjectRef, ObjectStore


def ref_doc(ref: ObjectRef) -> dict[str, Any]:
    """An object reference as it travels in a message: ``{"uri", "sha256", "size"}``."""
    return {"uri": ref.uri, "sha256": ref.sha256, "size": ref.size}


def as_ref(doc: Mapping[str, Any]) -> ObjectRef:
    """Inverse of :func:`ref_doc`."""
    return ObjectRef(doc["uri"], doc["sha256"], doc["size"])


def share_context(session: str, epoch: int, party: str) -> bytes:
    """What a sealed key share is bound to: session, key epoch and recipient."""
    return f"{session}/key-epoch-{epoch}/{party}".encode()


def key_prefix(session: str, epoch: int) -> str:
    """Store prefix of key epoch ``epoch``'s objects."""
    return f"zkadapt/{session}/keys/epoch-{epoch}"


def publish_key(
    store: ObjectStore,
    post: Callable[[KeyDealt], object],
    keyring: Keyring,
    *,
    session: str,
    epoch: int,
    round_: int,
    sender: str,
    public: ThresholdPublicKey,
    shares: Mapping[str, KeyShare],
    public_name: str = "public",
) -> KeyDealt:
    """Store ``public`` and each ``shares[party]`` sealed to that party; post the ``KeyDealt``.

    The caller drops the shares at once (CRYPTO.md section 1: the dealer keeps nothing).

    Args:
        store: where the objects go (the sender's own location).
        post: signs and posts the message as ``sender``.
        keyring: the parties' identities (the X25519 keys the shares are sealed to).
        session, epoch, round_: what the key is for; ``round_`` is its first round.
        sender: who announces the key (a party, or the key-generation centre's name).
        public: the threshold public key.
        shares: party name → its key share (secret).
        public_name: file name of the public key under the epoch's prefix.

    Returns:
        The posted message.
    """
    prefix = key_prefix(session, epoch)
    public_key = f"{prefix}/{public_name}.bin"
    objects = {public_key: public.to_bytes()}
    share_keys = {name: f"{prefix}/share/{name}.bin" for name in shares}
    for name, share in shares.items():
        context = share_context(session, epoch, name)
        objects[share_keys[name]] = seal_to(keyring[name], share.to_bytes(), context=context)

    def announce(refs: dict[str, ObjectRef]) -> KeyDealt:
        sealed = {name: ref_doc(refs[key]) for name, key in share_keys.items()}
        return KeyDealt(
            session, round_, sender, epoch, public.key_id, ref_doc(refs[public_key]), sealed
        )

    return publish(store, post, objects, announce)
