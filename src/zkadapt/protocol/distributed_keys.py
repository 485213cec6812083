"""Run a distributed key generation among the parties of a session (``keygen = "distributed"``).

The math is :mod:`zkadapt.crypto.distributed_keygen`; this module only moves its messages.
In message round r of key epoch e, party P stores

* a public message as ``zkadapt/<session>/keys/epoch-<e>/dkg/step-<r>/<P>/all.bin``, or
* one secret message per recipient Q, sealed to Q's identity key (X25519 sealed box, bound
  to session, epoch, step, sender and recipient), as ``.../step-<r>/<P>/<Q>.bin``,

and posts ``KeyGenStep{epoch, step, objects}`` with their references, exactly as a dealer
announces sealed shares with ``KeyDealt``. Once every party's ``KeyGenStep`` of the round is
on the channel it fetches what is addressed to it (digest-checked) and advances its state.
The signed channel entry authenticates the sender of each anonymous sealed box. Messages to
itself stay in memory.

*When* each step runs, and when a party gives up waiting, is the round machine's decision
(``KeygenStep``, ``Wait(r, "key")``; :mod:`zkadapt.protocol.machine`, DESIGN.md section 4):
this runner never waits. Every party must stay online until the key is done; a party that
crashes in the middle makes the others stop at their key deadline with a named reason.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from zkadapt.crypto.distributed_keygen import DkgParams, DkgParty, Outbox, Values
from zkadapt.crypto.identity import Keyring
from zkadapt.crypto.paillier import canonical_json, parse_canonical_json
from zkadapt.crypto.sealing import open_sealed, seal_to
from zkadapt.crypto.threshold import KeyShare, ThresholdPublicKey
from zkadapt.errors import CryptoError, ProtocolError
from zkadapt.protocol.key_delivery import as_ref, key_prefix, ref_doc
from zkadapt.protocol.messages import KeyGenStep
from zkadapt.protocol.phases import Phase
from zkadapt.protocol.publishing import fetch_bytes, publish
from zkadapt.protocol.schemes import RoundIO
from zkadapt.protocol.update import UpdateRejected
from zkadapt.storage.base import ObjectRef

MESSAGE_DOMAIN = "zkadapt/dkg-message/v1"
PUBLIC = "*"


def encode_values(step: int, sender: int, values: Values) -> bytes:
    """Canonical JSON of one message; integers as hex with a ``-`` sign when negative."""
    text = [("-" + format(-v, "x")) if v < 0 else format(v, "x") for v in values]
    return canonical_json(
        {"domain": MESSAGE_DOMAIN, "step": step, "sender": sender, "values": text}
    )


def decode_values(data: bytes, step: int, sender: int) -> Values:
    """Inverse of :func:`encode_values`; the message must be for ``step`` from ``sender``.

    Raises:
        CryptoError: malformed, or bound to another step or sender.
    """
    doc = parse_canonical_json(data, MESSAGE_DOMAIN)
    if doc.get("step") != step or doc.get("sender") != sender:
        raise CryptoError(f"key generation message is not step {step} of party {sender}")
    values = doc.get("values")
    if not isinstance(values, list) or not all(isinstance(v, str) and v for v in values):
        raise CryptoError("key generation message: malformed values")
    try:
        return tuple(int(v, 16) for v in values)
    except ValueError:
        raise CryptoError("key generation message: malformed values") from None


def _seal_context(session: str, epoch: int, step: int, sender: str, recipient: str) -> bytes:
    return f"{session}/key-epoch-{epoch}/dkg-step-{step}/{sender}/{recipient}".encode()


class DkgRunner:
    """One party's side of a distributed key generation over a session's store and channel."""

    def __init__(
        self,
        io: RoundIO,
        *,
        keyring: Keyring,
        names: Sequence[str],
        epoch: int,
        round_: int,
        params: DkgParams,
    ) -> None:
        self.io, self.keyring, self.names = io, keyring, list(names)
        self.epoch, self.round_ = epoch, round_
        self.me = io.ctx.party
        self.index = self.names.index(self.me) + 1
        self.party = DkgParty(params, self.index)
        self._loopback: Values = ()

    def start(self) -> int:
        """Post the first message round; returns its number."""
        return self._send(self.party.start())

    def advance(self, step: int) -> int | None:
        """Read every party's messages of ``step`` (all posted) and post the next round.

        Returns:
            The message round posted, or None when the key is done (:meth:`result`).
        """
        out = self.party.advance(self._read(step, self._posted(step)))
        if out is None:
            self.io.emit(
                self.round_,
                Phase.KEYS,
                f"distributed key epoch {self.epoch}: {self.party.batches} "
                f"candidate batch(es), {self.party.round + 1} message rounds",
            )
            return None
        return self._send(out)

    def result(self) -> tuple[ThresholdPublicKey, KeyShare]:
        """The public key and this party's share, once :meth:`advance` returned None."""
        return self.party.result()

    def _send(self, out: Outbox) -> int:
        session = self.io.ctx.session_id
        prefix = f"{key_prefix(session, self.epoch)}/dkg/step-{out.round}/{self.me}"
        objects: dict[str, bytes] = {}  # store key -> bytes
        recipients: dict[str, str] = {}  # store key -> recipient (PUBLIC for everyone)
        if out.to_all is not None:
            self._loopback = out.to_all
            objects[f"{prefix}/all.bin"] = encode_values(out.round, self.index, out.to_all)
            recipients[f"{prefix}/all.bin"] = PUBLIC
        else:
            to_each = out.to_each or {}
            for j, name in enumerate(self.names, start=1):
                data = encode_values(out.round, self.index, to_each[j])
                if name == self.me:
                    self._loopback = to_each[j]
                    continue
                context = _seal_context(session, self.epoch, out.round, self.me, name)
                objects[f"{prefix}/{name}.bin"] = seal_to(self.keyring[name], data, context=context)
                recipients[f"{prefix}/{name}.bin"] = name
        if not objects:  # a single party: nothing to tell anyone, but keep the step visible
            objects[f"{prefix}/all.bin"], recipients[f"{prefix}/all.bin"] = b"{}", PUBLIC

        def announce(refs: dict[str, ObjectRef]) -> KeyGenStep:
            docs = {recipients[key]: ref_doc(ref) for key, ref in refs.items()}
            return KeyGenStep(session, self.round_, self.me, self.epoch, out.round, docs)

        publish(self.io.store, self.io.post, objects, announce)
        return out.round

    def _posted(self, step: int) -> Mapping[str, KeyGenStep]:
        posted = self.io.history.keygen_steps(self.epoch, step)
        missing = sorted(set(self.names) - set(posted))
        if missing:  # the machine decides a step only once every message is on the channel
            raise ProtocolError(
                f"distributed key generation (epoch {self.epoch}) step {step}: no message "
                f"from {', '.join(missing)}",
                round=self.round_,
            )
        return posted

    def _read(self, step: int, posted: Mapping[str, KeyGenStep]) -> dict[int, Values]:
        inbox: dict[int, Values] = {}
        session = self.io.ctx.session_id
        for j, name in enumerate(self.names, start=1):
            if name == self.me:
                inbox[j] = self._loopback
                continue
            objects = posted[name].objects
            try:
                if PUBLIC in objects:
                    data = fetch_bytes(self.io.store, as_ref(objects[PUBLIC]))
                else:
                    sealed = fetch_bytes(self.io.store, as_ref(objects[self.me]))
                    context = _seal_context(session, self.epoch, step, name, self.me)
                    data = open_sealed(self.io.identity, sealed, context=context)
                inbox[j] = decode_values(data, step, j)
            except UpdateRejected as exc:
                raise ProtocolError(
                    f"distributed key generation step {step}: unusable message from {name}: "
                    f"{exc.reason}",
                    round=self.round_,
                ) from None
            except (KeyError, CryptoError) as exc:
                raise ProtocolError(
                    f"distributed key generation step {step}: unusable message from {name}: {exc}",
                    round=self.round_,
                ) from None
        return inbox
