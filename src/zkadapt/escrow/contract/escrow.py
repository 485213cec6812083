# ruff: noqa: F403, F405, SIM102, SIM300, B011
"""ZK-ADAPT escrow validator, written in OpShin and compiled to Plutus V3 (DESIGN.md section 7).

This file is OpShin source: a restricted Python that ``opshin build`` compiles to UPLC. It
is not imported by the package at run time; ``zkadapt.escrow.contract_artifact`` loads the
compiled blueprint (``plutus.json``) next to it. Failing an ``assert`` is how a Plutus script
rejects a transaction, so on-chain checks are written as asserts (the off-chain rule of
STYLE.md, "no assert for validation", does not apply to on-chain code).

The escrow output holds every party's deposit under the datum
``EscrowDatum(session, parties, deposit)``, ``parties`` being the payment key hashes in
canonical (sorted party name) order. It is spent with one of two redeemers, mirroring the
off-chain settlement rules (``zkadapt.escrow.rules``):

* ``Claim()`` -- the session completed: every party signs the transaction and every party
  is paid back at least its deposit.
* ``Slash(targets)`` -- a strict majority of the *other* parties voted to kill each target:
  for every target ``t``, more than ``(n - 1) / 2`` distinct parties other than ``t`` sign;
  every remaining party receives at least ``deposit + deposit * len(targets) // len(honest)``.
"""

from opshin.prelude import *
from opshin.std.integrity import check_integrity


@dataclass()
class EscrowDatum(PlutusData):
    CONSTR_ID = 0
    session: bytes
    parties: List[bytes]
    deposit: int


@dataclass()
class Claim(PlutusData):
    CONSTR_ID = 0


@dataclass()
class Slash(PlutusData):
    CONSTR_ID = 1
    targets: List[int]


def paid_to(outputs: List[TxOut], pkh: bytes) -> int:
    """Lovelace paid to the key hash ``pkh`` by ``outputs``."""
    total = 0
    for output in outputs:
        credential = output.address.payment_credential
        if isinstance(credential, PubKeyCredential):
            if credential.credential_hash == pkh:
                total += output.value.get(b"", {b"": 0}).get(b"", 0)
    return total


def signed_by(signatories: List[bytes], pkh: bytes) -> bool:
    return any([s == pkh for s in signatories])


def check_datum(datum: EscrowDatum) -> None:
    assert len(datum.session) == 32, "session id must be 32 bytes"
    assert len(datum.parties) >= 2, "an escrow needs at least two parties"
    assert datum.deposit > 0, "deposit must be positive"
    for p in datum.parties:
        assert len(p) == 28, "parties must be payment key hashes"


def check_claim(datum: EscrowDatum, tx: TxInfo) -> None:
    for p in datum.parties:
        assert signed_by(tx.signatories, p), "a claim needs every party's signature"
        assert paid_to(tx.outputs, p) >= datum.deposit, "a claim must refund every deposit"


def check_slash(datum: EscrowDatum, targets: List[int], tx: TxInfo) -> None:
    n = len(datum.parties)
    assert len(targets) >= 1, "a slash needs a target"
    for t in targets:
        assert 0 <= t and t < n, "a target must be a party index"
    honest = [datum.parties[i] for i in range(n) if not any([t == i for t in targets])]
    assert len(honest) + len(targets) == n, "targets must be distinct party indices"
    assert len(honest) >= 1, "someone must remain to be paid"
    for t in targets:
        votes = 0
        for i in range(n):
            if i != t:
                if signed_by(tx.signatories, datum.parties[i]):
                    votes += 1
        assert 2 * votes > n - 1, "a slash needs a strict majority of the other parties"
    share = datum.deposit + datum.deposit * len(targets) // len(honest)
    for p in honest:
        assert paid_to(tx.outputs, p) >= share, "every remaining party must get its share"


def validator(context: ScriptContext) -> None:
    purpose = context.purpose
    assert isinstance(purpose, Spending), "the escrow only guards spending"
    datum: EscrowDatum = own_datum_unsafe(context)
    check_integrity(datum)  # a wrong datum (constructor, fields, types) fails here
    check_datum(datum)
    redeemer: Union[Claim, Slash] = context.redeemer
    check_integrity(redeemer)
    if isinstance(redeemer, Claim):
        check_claim(datum, context.transaction)
    elif isinstance(redeemer, Slash):
        check_slash(datum, redeemer.targets, context.transaction)
    else:
        assert False, "unknown redeemer"
