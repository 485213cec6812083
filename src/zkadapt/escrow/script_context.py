"""Plutus V3 script contexts as Plutus data, derived from a transaction, for evaluating scripts.

Layouts follow the ledger's ``PlutusLedgerApi.V3`` (CIP-69 / Conway): a script receives one
argument, ``ScriptContext = Constr 0 [TxInfo, Redeemer, ScriptInfo]``; ``TxInfo`` has sixteen
fields; ``TxId`` is plain bytes (no wrapper, unlike V1/V2); spending is
``ScriptInfo = SpendingScript = Constr 1 [TxOutRef, Maybe Datum]``. Plutus data is CBOR:
constructor ``i`` is tag ``121 + i`` (``i < 7``) or ``1280 + i - 7``; ``Just x = Constr 0 [x]``,
``Nothing = Constr 1 []``, ``False = Constr 0 []``, ``True = Constr 1 []``; a ``Value`` maps
currency symbols to maps of token names to amounts, ada under ``b""``/``b""``. The validity
range is ``Interval (LowerBound (Extended t) Closure) (UpperBound (Extended t) Closure)`` of
POSIX milliseconds, with ``NegInf = Constr 0 []``, ``Finite t = Constr 1 [t]``,
``PosInf = Constr 2 []``.

A :class:`Transaction` is what a node sees: its inputs (the outputs they spend, resolved),
outputs, signatories, validity range and a redeemer for each script input. Like a node, it
gives each script input its own context (:meth:`Transaction.script_context`): the same
``TxInfo`` (inputs sorted by out-ref, every redeemer), with that input's redeemer and
``SpendingScript`` purpose.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cbor2

Data = object


def constr(index: int, *fields: Data) -> cbor2.CBORTag:
    """Plutus ``Constr index fields`` (hashable, so it can key a map)."""
    if not 0 <= index < 128:
        raise ValueError("constructor index must be in 0..127")
    tag = 121 + index if index < 7 else 1280 + index - 7
    return cbor2.CBORTag(tag, tuple(fields))


FALSE = constr(0)
TRUE = constr(1)
NOTHING = constr(1)
NO_OUTPUT_DATUM = constr(0)
NO_STAKING = NOTHING
NEG_INF = constr(0)
POS_INF = constr(2)


def just(value: Data) -> cbor2.CBORTag:
    return constr(0, value)


def tx_out_ref(tx_id: bytes, index: int) -> cbor2.CBORTag:
    return constr(0, tx_id, index)


def key_address(key_hash: bytes) -> cbor2.CBORTag:
    """``Address (PubKeyCredential h) Nothing``."""
    return constr(0, constr(0, key_hash), NO_STAKING)


def script_address(script_hash: bytes) -> cbor2.CBORTag:
    """``Address (ScriptCredential h) Nothing``."""
    return constr(0, constr(1, script_hash), NO_STAKING)


def ada(lovelace: int) -> dict[bytes, dict[bytes, int]]:
    return {b"": {b"": lovelace}}


def tx_out(address: Data, lovelace: int, datum: Data | None = None) -> cbor2.CBORTag:
    """``TxOut address value datum Nothing`` with an inline datum if given."""
    output_datum = constr(2, datum) if datum is not None else NO_OUTPUT_DATUM
    return constr(0, address, ada(lovelace), output_datum, NOTHING)


def validity_range(
    lower: int | None = None,
    upper: int | None = None,
    *,
    lower_closed: bool = True,
    upper_closed: bool = False,
) -> cbor2.CBORTag:
    """The ``POSIXTimeRange`` from ``lower`` to ``upper`` (None: unbounded).

    The defaults are what the ledger derives from a transaction's validity interval: the
    first valid slot's time included, the first invalid slot's time excluded.
    """
    low = NEG_INF if lower is None else constr(1, lower)
    high = POS_INF if upper is None else constr(1, upper)
    return constr(
        0,
        constr(0, low, TRUE if lower_closed or lower is None else FALSE),
        constr(0, high, TRUE if upper_closed or upper is None else FALSE),
    )


ALWAYS = validity_range()  # (-inf, +inf)


def _ref_key(ref: cbor2.CBORTag) -> tuple[bytes, int]:
    tx_id, index = ref.value
    return tx_id, index


@dataclass(frozen=True)
class SpendInput:
    """An input of the transaction: where it comes from, what it holds, how it is spent.

    Attributes:
        ref: the ``TxOutRef`` spent.
        output: the ``TxOut`` it resolves to.
        redeemer: set for a script input (the script runs with it), None for a key input.
        datum: the spent output's datum, handed to the script in ``SpendingScript``.
    """

    ref: cbor2.CBORTag
    output: cbor2.CBORTag
    redeemer: Data | None = None
    datum: Data | None = None


@dataclass(frozen=True)
class Transaction:
    """The parts of a transaction a Plutus V3 spending script can see."""

    inputs: Sequence[SpendInput]
    outputs: Sequence[cbor2.CBORTag]
    signatories: Sequence[bytes] = ()
    validity: cbor2.CBORTag = ALWAYS
    tx_id: bytes = b"\x11" * 32
    fee: int = 0

    def __post_init__(self) -> None:
        refs = [_ref_key(i.ref) for i in self.inputs]
        if len(set(refs)) != len(refs):
            raise ValueError("a transaction spends each out-ref at most once")

    @property
    def script_inputs(self) -> tuple[SpendInput, ...]:
        """Inputs spent by a script (those with a redeemer), in ledger order."""
        return tuple(i for i in self._sorted_inputs() if i.redeemer is not None)

    def _sorted_inputs(self) -> list[SpendInput]:
        return sorted(self.inputs, key=lambda i: _ref_key(i.ref))

    def tx_info(self) -> cbor2.CBORTag:
        """``TxInfo`` (V3): the sixteen fields, inputs in ledger (out-ref) order."""
        redeemers = {constr(1, i.ref): i.redeemer for i in self.script_inputs}
        return constr(
            0,
            [constr(0, i.ref, i.output) for i in self._sorted_inputs()],  # inputs
            [],  # reference inputs
            list(self.outputs),
            self.fee,
            {},  # mint
            [],  # certificates
            {},  # withdrawals
            self.validity,
            sorted(set(self.signatories)),
            redeemers,  # ScriptPurpose (Spending ref) -> redeemer
            {},  # datums (inline datums are not listed)
            self.tx_id,
            {},  # votes
            [],  # proposal procedures
            NOTHING,  # current treasury amount
            NOTHING,  # treasury donation
        )

    def script_context(self, ref: cbor2.CBORTag) -> bytes:
        """The CBOR ``ScriptContext`` the script guarding input ``ref`` is run with.

        Raises:
            ValueError: ``ref`` is not a script input of this transaction.
        """
        for spent in self.script_inputs:
            if spent.ref == ref:
                script_info = constr(1, ref, NOTHING if spent.datum is None else just(spent.datum))
                return cbor2.dumps(constr(0, self.tx_info(), spent.redeemer, script_info))
        raise ValueError("not a script input of this transaction")
