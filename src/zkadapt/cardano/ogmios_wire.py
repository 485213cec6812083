"""Ogmios v6 answers as PyCardano values: pure functions, every field checked.

The JSON comes from a network service, so it is hostile: each reader takes exactly the
fields the Ogmios v6 schema defines (``ogmios.json``/``cardano.json``, as copied in
``tests/data/ogmios``) and raises :class:`WireError` on anything else, never evaluating
text (PyCardano's own Ogmios context ``eval``-s the ratio strings of the protocol
parameters) and never assuming a key is there.

Protocol parameters are read from both spellings Ogmios v6 has used for the reference
script limit: ``maxReferenceScriptsSizePerTransaction`` (the current schema) and
``maxReferenceScriptsSize`` (older v6 releases). The ``ogmios`` 1.4.3 client knows only
the second and fails with ``TypeError`` on the first, which is why
:class:`~zkadapt.cardano.ogmios.OgmiosContext` reads these answers itself.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime, timezone
from fractions import Fraction
from typing import Any

from zkadapt.cardano.errors import one_line

_RATIO = re.compile(r"^-?[0-9]{1,40}/[0-9]{1,40}$")
_HEX = re.compile(r"^(?:[0-9a-f]{2})*$")


class WireError(ValueError):
    """An Ogmios answer that does not follow the v6 schema."""


def _get(obj: Any, key: str, kind: type | tuple[type, ...], where: str) -> Any:
    if not isinstance(obj, Mapping) or key not in obj:
        raise WireError(f"{where}: missing {key!r}")
    value = obj[key]
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise WireError(f"{where}.{key}: unexpected {type(value).__name__}")
    return value


def _int(obj: Any, key: str, where: str, *, default: int | None = None) -> int:
    if default is not None and (not isinstance(obj, Mapping) or key not in obj):
        return default
    return int(_get(obj, key, int, where))


def _lovelace(obj: Any, key: str, where: str) -> int:
    value = _get(obj, key, dict, where)
    return _int(_get(value, "ada", dict, f"{where}.{key}"), "lovelace", f"{where}.{key}.ada")


def _bytes_of(obj: Any, key: str, where: str) -> int:
    return _int(_get(obj, key, dict, where), "bytes", f"{where}.{key}")


def ratio(text: Any, where: str = "ratio") -> Fraction:
    """An Ogmios ``Ratio`` (``"577/10000"``) as an exact fraction, never ``eval``-ed."""
    if not isinstance(text, str) or not _RATIO.match(text):
        raise WireError(f"{where}: not a ratio")
    num, den = text.split("/")
    if int(den) == 0:
        raise WireError(f"{where}: zero denominator")
    return Fraction(int(num), int(den))


def cost_models(raw: Any) -> dict[str, dict[str, int]]:
    """``plutusCostModels`` in PyCardano's form (V1/V2 keyed by its names, V3 by index)."""
    from pycardano.plutus import PLUTUS_V1_COST_MODEL, PLUTUS_V2_COST_MODEL

    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise WireError("plutusCostModels: not an object")
    out: dict[str, dict[str, int]] = {}
    for language, values in raw.items():
        if not isinstance(values, list) or not all(
            isinstance(v, int) and not isinstance(v, bool) for v in values
        ):
            raise WireError(f"plutusCostModels.{language}: not a list of integers")
        if language == "plutus:v1":
            out["PlutusV1"] = dict(zip(sorted(PLUTUS_V1_COST_MODEL), values, strict=False))
        elif language == "plutus:v2":
            out["PlutusV2"] = dict(zip(sorted(PLUTUS_V2_COST_MODEL), values, strict=False))
        elif language == "plutus:v3":
            width = len(str(len(values)))
            out["PlutusV3"] = {f"{i:0{width}d}": v for i, v in enumerate(values)}
    return out


def protocol_parameters(raw: Any) -> Any:
    """``queryLedgerState/protocolParameters`` as :class:`pycardano.ProtocolParameters`.

    Raises:
        WireError: a required field is missing or mistyped.
    """
    from pycardano.backend.base import ALONZO_COINS_PER_UTXO_WORD, ProtocolParameters

    w = "protocolParameters"
    if not isinstance(raw, Mapping):
        raise WireError(f"{w}: not an object")
    prices = _get(raw, "scriptExecutionPrices", dict, w)
    per_tx = _get(raw, "maxExecutionUnitsPerTransaction", dict, w)
    per_block = _get(raw, "maxExecutionUnitsPerBlock", dict, w)
    version = _get(raw, "version", dict, w)
    ref_size = raw.get("maxReferenceScriptsSizePerTransaction", raw.get("maxReferenceScriptsSize"))
    ref_fee = raw.get("minFeeReferenceScripts")
    if ref_size is not None and not isinstance(ref_size, Mapping):
        raise WireError(f"{w}.maxReferenceScriptsSizePerTransaction: not an object")
    if ref_fee is not None:
        _int(ref_fee, "range", f"{w}.minFeeReferenceScripts")
        for key in ("base", "multiplier"):
            _get(ref_fee, key, (int, float), f"{w}.minFeeReferenceScripts")
    entropy = raw.get("extraEntropy")
    return ProtocolParameters(
        min_fee_constant=_lovelace(raw, "minFeeConstant", w),
        min_fee_coefficient=_int(raw, "minFeeCoefficient", w),
        min_pool_cost=_lovelace(raw, "minStakePoolCost", w),
        max_block_size=_bytes_of(raw, "maxBlockBodySize", w),
        max_tx_size=_bytes_of(raw, "maxTransactionSize", w),
        max_block_header_size=_bytes_of(raw, "maxBlockHeaderSize", w),
        key_deposit=_lovelace(raw, "stakeCredentialDeposit", w),
        pool_deposit=_lovelace(raw, "stakePoolDeposit", w),
        pool_influence=ratio(raw.get("stakePoolPledgeInfluence"), f"{w}.stakePoolPledgeInfluence"),
        monetary_expansion=ratio(raw.get("monetaryExpansion"), f"{w}.monetaryExpansion"),
        treasury_expansion=ratio(raw.get("treasuryExpansion"), f"{w}.treasuryExpansion"),
        decentralization_param=None,  # type: ignore[arg-type] - gone since Babbage
        extra_entropy=entropy if isinstance(entropy, str) else "",
        protocol_major_version=_int(version, "major", f"{w}.version"),
        protocol_minor_version=_int(version, "minor", f"{w}.version"),
        min_utxo=None,  # type: ignore[arg-type] - replaced by coins_per_utxo_byte
        price_mem=ratio(prices.get("memory"), f"{w}.scriptExecutionPrices.memory"),
        price_step=ratio(prices.get("cpu"), f"{w}.scriptExecutionPrices.cpu"),
        max_tx_ex_mem=_int(per_tx, "memory", f"{w}.maxExecutionUnitsPerTransaction"),
        max_tx_ex_steps=_int(per_tx, "cpu", f"{w}.maxExecutionUnitsPerTransaction"),
        max_block_ex_mem=_int(per_block, "memory", f"{w}.maxExecutionUnitsPerBlock"),
        max_block_ex_steps=_int(per_block, "cpu", f"{w}.maxExecutionUnitsPerBlock"),
        max_val_size=_bytes_of(raw, "maxValueSize", w),
        collateral_percent=_int(raw, "collateralPercentage", w),
        max_collateral_inputs=_int(raw, "maxCollateralInputs", w),
        coins_per_utxo_word=ALONZO_COINS_PER_UTXO_WORD,
        coins_per_utxo_byte=_int(raw, "minUtxoDepositCoefficient", w),
        cost_models=cost_models(raw.get("plutusCostModels")),
        maximum_reference_scripts_size=dict(ref_size) if ref_size is not None else None,
        min_fee_reference_scripts=dict(ref_fee) if ref_fee is not None else None,
    )


def posix_seconds(text: Any, where: str = "startTime") -> float:
    """A ``UtcTime`` (``2022-10-25T00:00:00Z``, fractions allowed) as POSIX seconds."""
    if not isinstance(text, str) or len(text) > 64:
        raise WireError(f"{where}: not a time")
    match = re.match(r"^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(\.\d+)?Z?$", text)
    if match is None:
        raise WireError(f"{where}: not a UTC time")
    moment = datetime.strptime(match.group(1), "%Y-%m-%dT%H:%M:%S").replace(tzinfo=timezone.utc)
    return moment.timestamp() + float(match.group(2) or 0)


def genesis_parameters(raw: Any) -> Any:
    """Shelley ``queryNetwork/genesisConfiguration`` as :class:`pycardano.GenesisParameters`."""
    from pycardano.backend.base import GenesisParameters

    w = "genesisConfiguration"
    if not isinstance(raw, Mapping) or raw.get("era") != "shelley":
        raise WireError(f"{w}: not the shelley genesis")
    slot_ms = _int(_get(raw, "slotLength", dict, w), "milliseconds", f"{w}.slotLength")
    if slot_ms <= 0:
        raise WireError(f"{w}.slotLength: not positive")
    return GenesisParameters(
        active_slots_coefficient=ratio(
            raw.get("activeSlotsCoefficient"), f"{w}.activeSlotsCoefficient"
        ),
        update_quorum=_int(raw, "updateQuorum", w),
        max_lovelace_supply=_int(raw, "maxLovelaceSupply", w),
        network_magic=_int(raw, "networkMagic", w),
        epoch_length=_int(raw, "epochLength", w),
        system_start=int(posix_seconds(raw.get("startTime"), f"{w}.startTime")),
        slots_per_kes_period=_int(raw, "slotsPerKesPeriod", w),
        slot_length=slot_ms // 1000 if slot_ms % 1000 == 0 else slot_ms / 1000,  # type: ignore[arg-type]
        max_kes_evolutions=_int(raw, "maxKesEvolutions", w),
        security_param=_int(raw, "securityParameter", w),
    )


def era_bounds(raw: Any) -> list[tuple[int, int, int]]:
    """``queryLedgerState/eraSummaries`` as ``(start slot, start ms since system start,
    slot length ms)`` per era, oldest first (what slot/time conversion needs)."""
    if not isinstance(raw, list) or not raw or len(raw) > 64:
        raise WireError("eraSummaries: not a non-empty list")
    bounds = []
    for i, era in enumerate(raw):
        w = f"eraSummaries[{i}]"
        start = _get(era, "start", dict, w)
        params = _get(era, "parameters", dict, w)
        slot_ms = _int(_get(params, "slotLength", dict, f"{w}.parameters"), "milliseconds", w)
        seconds = _int(_get(start, "time", dict, f"{w}.start"), "seconds", f"{w}.start.time")
        if slot_ms <= 0:
            raise WireError(f"{w}: slot length not positive")
        bounds.append((_int(start, "slot", f"{w}.start"), seconds * 1000, slot_ms))
    return bounds


def utxo_entries(raw: Any) -> list[Any]:
    """``queryLedgerState/utxo`` as ``ogmios.datatypes.Utxo`` (what PyCardano converts).

    Raises:
        WireError: an entry is malformed.
    """
    from ogmios.datatypes import Utxo

    if not isinstance(raw, list):
        raise WireError("utxo: not a list")
    out = []
    for i, item in enumerate(raw):
        w = f"utxo[{i}]"
        tx_id = _get(_get(item, "transaction", dict, w), "id", str, f"{w}.transaction")
        if not re.match(r"^[0-9a-f]{64}$", tx_id):
            raise WireError(f"{w}.transaction.id: not a transaction id")
        value = _get(item, "value", dict, w)
        _lovelace(item, "value", w)
        for policy, assets in value.items():
            if policy != "ada" and (
                not re.match(r"^[0-9a-f]{56}$", policy)
                or not isinstance(assets, Mapping)
                or not all(
                    isinstance(q, int) and isinstance(n, str) and _HEX.match(n)
                    for n, q in assets.items()
                )
            ):
                raise WireError(f"{w}.value: malformed asset")
        datum, datum_hash, script = item.get("datum"), item.get("datumHash"), item.get("script")
        for key, text in (("datum", datum), ("datumHash", datum_hash)):
            if text is not None and (not isinstance(text, str) or not _HEX.match(text)):
                raise WireError(f"{w}.{key}: not hex")
        if script is not None:
            _get(script, "language", str, f"{w}.script")
            cbor = script.get("cbor")
            if not isinstance(cbor, str) or not _HEX.match(cbor):
                raise WireError(f"{w}.script.cbor: not hex")
        out.append(
            Utxo(
                tx_id=tx_id,
                index=_int(item, "index", w),
                address=_get(item, "address", str, w),
                value=value,
                datum_hash=datum_hash,
                datum=datum,
                script=script,
            )
        )
    return out


def error_reason(error: Any) -> tuple[int | None, str]:
    """An Ogmios JSON-RPC ``error`` object as ``(code, one line)``.

    Ogmios' message explains the code; when it points at ``data.error`` (3997: the mempool's
    own reason) that is the reason; otherwise the message's first sentence and the data
    (compact JSON), which holds the specifics (the fee required, the unknown inputs ...).
    """
    import json

    if not isinstance(error, Mapping):
        return None, "malformed error answer"
    code = error.get("code") if isinstance(error.get("code"), int) else None
    message = one_line(error.get("message", ""), 400)
    first = message.split(". ", 1)[0].rstrip(".")
    data = error.get("data")
    if isinstance(data, Mapping) and isinstance(data.get("error"), str):
        return code, one_line(data["error"])
    try:
        detail = json.dumps(data, separators=(",", ":"), sort_keys=True) if data is not None else ""
    except (TypeError, ValueError):
        detail = "(unreadable data)"
    return code, one_line(f"{first} {one_line(detail, 200)}".strip())
