"""Run a distributed key generation among the parties of a session (``keygen = "distributed"``).

The math is :mod:`zkadapt.crypto.distributed_keygen`; this module only moves its messages.
In message round r of key epoch e, party P stores

* a public message as ``zkadapt/<session>/keys/epoch-<e>/dkg/step-<r>/<P>/all.bin``, or
* one secret message per recipient Q, sealed to Q's identity key (X25519 sealed box, bound
  to session, epoch, step, sender and recipient), as ``.../step-<r>/<P>/<Q>.bin``,

and posts ``KeyGenStep{epoch, step, objects}`` with their references, exactly as a dealer
announces sealed shares with ``KeyDealt``. Each party waits for every party's ``KeyGenStep``
of the round, fetches what is addressed to it (digest-checked), and advances its state. The
signed channel entry authenticates the sender of each anonymous sealed box. Messages to
itself stay in memory.

Every party must stay online until the key is done; a party that crashes in the middle makes
the others stop at the step deadline with a :class:`ProtocolError`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

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
        timeout_s: float,
        clock: Callable[[], float],
    ) -> None:
        self.io, self.keyring, self.names = io, keyring, list(names)
        self.epoch, self.round_, self.timeout_s = epoch, round_, timeout_s
        self.clock = clock  # the round driver's injected clock: step deadlines run on it
        self.me = io.ctx.party
        self.index = self.names.index(self.me) + 1
        self.party = DkgParty(params, self.index)
        self._loopback: Values = ()

    def run(self) -> tuple[ThresholdPublicKey, KeyShare]:
        """Send and receive every message round until the key is done."""
        out: Outbox | None = self.party.start()
        while out is not None:
            self._send(out)
            out = self.party.advance(self._receive(out.round))
        self.io.emit(
            self.round_,
            Phase.KEYS,
            f"distributed key epoch {self.epoch}: {self.party.batches} "
            f"candidate batch(es), {self.party.round + 1} message rounds",
        )
        return self.party.result()

    def _send(self, out: Outbox) -> None:
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

    def _receive(self, step: int) -> dict[int, Values]:
        deadline = self.clock() + self.timeout_s
        while True:
            posted = self.io.history.keygen_steps(self.epoch, step)
            if set(posted) >= set(self.names):
                return self._read(step, posted)
            if self.clock() > deadline:
                missing = ", ".join(sorted(set(self.names) - set(posted)))
                raise ProtocolError(
                    f"distributed key generation (epoch {self.epoch}) stalled at step {step}: "
                    f"no message from {missing}; every party must stay online",
                    round=self.round_,
                )
            self.io.sync(wait=self.io.ctx.poll_interval_s)

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
