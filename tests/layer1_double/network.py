"""The network the layer-1 double pretends to be: protocol parameters, genesis, clock.

Values are preprod's Conway parameters as Ogmios v6 reports them (``cardano.json``
``ProtocolParameters``; fees 44 lovelace/byte + 155,381, 4,310 lovelace per UTxO byte,
script prices 577/10,000 per memory unit and 721/10,000,000 per step, 150 % collateral).
The Plutus cost models are the ones ``uplc`` evaluates with (its bundled
``cost-model-merged.json``), so what the double charges and what it runs agree.

Time: one era from slot 0 with 1-second slots from the genesis ``startTime`` (preview's
shape; preprod's first 4 epochs were Byron with 20-second slots, which the double leaves out).
:class:`SlotClock` converts both ways; the era summaries and the Shelley genesis the Ogmios
double serves are derived from the same values, so a client's conversion and the ledger's
agree.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from fractions import Fraction
from functools import lru_cache
from pathlib import Path
from typing import Any

#: Eras in order (``cardano.json`` ``Era``); the double lives in the last.
ERAS = ("byron", "shelley", "allegra", "mary", "alonzo", "babbage", "conway")
#: Preview's system start; any fixed instant works.
SYSTEM_START = "2022-10-25T00:00:00Z"
SLOT_LENGTH_MS = 1000
EPOCH_LENGTH = 86_400
NETWORK_MAGIC = {"preprod": 1, "preview": 2, "mainnet": 764824073}


@lru_cache(maxsize=1)
def _cost_models() -> dict[str, list[int]]:
    import uplc

    path = Path(uplc.__file__).parent / "cost_model_files" / "2024-07-30" / "cost-model-merged.json"
    merged = json.loads(path.read_text())
    return {f"plutus:v{i}": [int(v) for v in merged[f"PlutusV{i}"].values()] for i in (1, 2, 3)}


def protocol_parameters() -> dict[str, Any]:
    """Conway protocol parameters in Ogmios v6 form (``queryLedgerState/protocolParameters``)."""
    return {
        "minFeeCoefficient": 44,
        "minFeeConstant": {"ada": {"lovelace": 155_381}},
        "minFeeReferenceScripts": {"range": 25_600, "base": 15.0, "multiplier": 1.2},
        "minUtxoDepositCoefficient": 4_310,
        "minUtxoDepositConstant": {"ada": {"lovelace": 0}},
        "maxBlockBodySize": {"bytes": 90_112},
        "maxBlockHeaderSize": {"bytes": 1_100},
        "maxTransactionSize": {"bytes": 16_384},
        "maxValueSize": {"bytes": 5_000},
        "extraEntropy": "neutral",
        "stakeCredentialDeposit": {"ada": {"lovelace": 2_000_000}},
        "stakePoolDeposit": {"ada": {"lovelace": 500_000_000}},
        "stakePoolRetirementEpochBound": 18,
        "stakePoolPledgeInfluence": "3/10",
        "minStakePoolCost": {"ada": {"lovelace": 170_000_000}},
        "desiredNumberOfStakePools": 500,
        "monetaryExpansion": "3/1000",
        "treasuryExpansion": "1/5",
        "collateralPercentage": 150,
        "maxCollateralInputs": 3,
        "plutusCostModels": _cost_models(),
        "scriptExecutionPrices": {"memory": "577/10000", "cpu": "721/10000000"},
        "maxExecutionUnitsPerTransaction": {"memory": 14_000_000, "cpu": 10_000_000_000},
        "maxExecutionUnitsPerBlock": {"memory": 62_000_000, "cpu": 20_000_000_000},
        "maxReferenceScriptsSizePerTransaction": {"bytes": 204_800},
        "maxReferenceScriptsSizePerBlock": {"bytes": 1_048_576},
        "version": {"major": 10, "minor": 0},
    }


def ratio(text: str) -> Fraction:
    """An Ogmios ``Ratio`` (``"577/10000"``) as an exact fraction."""
    num, den = text.split("/")
    return Fraction(int(num), int(den))


@dataclass(frozen=True)
class Fees:
    """The fee rules of the protocol parameters (Conway ledger ``getMinFeeTx``)."""

    per_byte: int
    constant: int
    price_memory: Fraction
    price_cpu: Fraction
    ref_base: Fraction
    ref_range: int
    ref_multiplier: Fraction

    @classmethod
    def of(cls, params: dict[str, Any]) -> Fees:
        ref = params["minFeeReferenceScripts"]
        prices = params["scriptExecutionPrices"]
        return cls(
            params["minFeeCoefficient"],
            params["minFeeConstant"]["ada"]["lovelace"],
            ratio(prices["memory"]),
            ratio(prices["cpu"]),
            Fraction(ref["base"]),
            int(ref["range"]),
            Fraction(ref["multiplier"]).limit_denominator(1000),
        )

    def reference_scripts(self, size: int) -> int:
        """The tiered fee for ``size`` bytes of reference scripts (Conway ``tierRefScriptFee``)."""
        total, price = Fraction(0), self.ref_base
        while size > self.ref_range:
            total += price * self.ref_range
            size -= self.ref_range
            price *= self.ref_multiplier
        return math.floor(total + price * size)

    def minimum(self, size: int, memory: int = 0, cpu: int = 0, ref_bytes: int = 0) -> int:
        """``a * size + b + ceil(prices * units) + refScriptFee``."""
        scripts = math.ceil(self.price_memory * memory + self.price_cpu * cpu)
        return self.per_byte * size + self.constant + scripts + self.reference_scripts(ref_bytes)


def _start_ms(text: str) -> int:
    moment = datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
    return int(moment.timestamp() * 1000)


@dataclass
class SlotClock:
    """Slots from the genesis ``startTime`` with fixed-length slots.

    The current slot follows the wall clock plus an offset (:meth:`advance`), or stays at
    ``frozen`` until moved (:meth:`set_slot`).
    """

    system_start: str = SYSTEM_START
    slot_length_ms: int = SLOT_LENGTH_MS
    frozen: int | None = None
    offset_ms: int = 0
    start_ms: int = field(init=False)

    def __post_init__(self) -> None:
        self.start_ms = _start_ms(self.system_start)

    def slot_to_posix_ms(self, slot: int) -> int:
        """The POSIX time (ms) at which ``slot`` starts."""
        return self.start_ms + slot * self.slot_length_ms

    def posix_ms_to_slot(self, ms: int) -> int:
        """The slot that holds POSIX time ``ms``."""
        return max(0, (ms - self.start_ms) // self.slot_length_ms)

    @property
    def slot(self) -> int:
        if self.frozen is not None:
            return self.frozen
        return self.posix_ms_to_slot(int(time.time() * 1000) + self.offset_ms)

    def advance(self, seconds: float) -> int:
        """Move time forward by ``seconds``; returns the new slot."""
        if self.frozen is not None:
            self.frozen += math.ceil(seconds * 1000 / self.slot_length_ms)
        else:
            self.offset_ms += int(seconds * 1000)
        return self.slot

    def set_slot(self, slot: int) -> None:
        """Make ``slot`` the current slot (it then stays there)."""
        self.frozen = slot


def shelley_genesis(network: str, clock: SlotClock, params: dict[str, Any]) -> dict[str, Any]:
    """``queryNetwork/genesisConfiguration`` for ``shelley`` (the double's clock and fees)."""
    return {
        "era": "shelley",
        "startTime": clock.system_start,
        "networkMagic": NETWORK_MAGIC[network],
        "network": "mainnet" if network == "mainnet" else "testnet",
        "activeSlotsCoefficient": "1/20",
        "securityParameter": 432,
        "epochLength": EPOCH_LENGTH,
        "slotsPerKesPeriod": 129_600,
        "maxKesEvolutions": 62,
        "slotLength": {"milliseconds": clock.slot_length_ms},
        "updateQuorum": 5,
        "maxLovelaceSupply": 45_000_000_000_000_000,
        "initialParameters": {
            key: params[key]
            for key in (
                "minFeeCoefficient",
                "minFeeConstant",
                "maxBlockBodySize",
                "maxBlockHeaderSize",
                "maxTransactionSize",
                "stakeCredentialDeposit",
                "stakePoolDeposit",
                "stakePoolRetirementEpochBound",
                "desiredNumberOfStakePools",
                "stakePoolPledgeInfluence",
                "monetaryExpansion",
                "treasuryExpansion",
                "minUtxoDepositConstant",
                "minStakePoolCost",
            )
        }
        | {
            "extraEntropy": "neutral",
            "federatedBlockProductionRatio": "1/1",
            "minUtxoDepositCoefficient": 0,
            "version": {"major": 2, "minor": 0},
        },
        "initialDelegates": [],
        "initialFunds": {},
        "initialStakePools": {"stakePools": {}, "delegators": {}},
    }


def era_summaries(clock: SlotClock, horizon_slot: int) -> list[dict[str, Any]]:
    """``queryLedgerState/eraSummaries``: every era before Conway empty at slot 0, then Conway
    from slot 0 up to ``horizon_slot`` (the safe zone past the tip, as a node reports)."""

    def bound(slot: int) -> dict[str, Any]:
        return {
            "time": {"seconds": slot * clock.slot_length_ms // 1000},
            "slot": slot,
            "epoch": slot // EPOCH_LENGTH,
        }

    parameters = {
        "epochLength": EPOCH_LENGTH,
        "slotLength": {"milliseconds": clock.slot_length_ms},
        "safeZone": 3 * 432 * 20,
    }
    empty = [{"start": bound(0), "end": bound(0), "parameters": parameters} for _ in ERAS[:-1]]
    return [*empty, {"start": bound(0), "end": bound(horizon_slot), "parameters": parameters}]
