"""A Cardano layer-1 ledger double that really validates what it is sent (issue 19).

Stable Python API (other tests and helpers build on it; keep it):

``Ledger(network="preprod", *, params=None, clock=None)``  (:mod:`.ledger`)
    ``fund(address, lovelace, *, assets=None, datum=None, script=None) -> TransactionInput``
        a faucet output (``address``: bech32 text or ``pycardano.Address``);
    ``utxos_at(address) -> {TransactionInput: TransactionOutput}``, ``balance(address) -> int``
        (lovelace), ``lookup(refs)``, ``utxo`` (the whole set), ``spent`` (ref -> spending tx
        id), ``applied`` (tx id -> ``pycardano.Transaction``), ``rejections`` (``Rejected``);
    ``submit(cbor: bytes) -> tx id hex``  validate (phase 1 and 2) and apply, or raise
        ``Rejected`` (``.code``, ``.message``, ``.data``, ``.error``: the Ogmios error object);
    ``apply_trusted(tx) -> tx id hex``  apply a ``pycardano.Transaction`` unjudged (inputs
        must be unspent): what a double plays for scripts it does not model (the head's);
    ``evaluate(cbor, additional=None) -> [Evaluated(run, result)]``  run the scripts only;
    time: ``slot`` (current), ``advance(seconds) -> slot``, ``set_slot(slot)`` (freezes),
        ``slot_to_posix_ms(slot)``, ``posix_ms_to_slot(ms)``; by default the slot follows the
        wall clock from the genesis start (1-second slots), plus what ``advance`` added;
    ``params`` (Ogmios protocol parameters), ``genesis`` (Ogmios Shelley genesis),
        ``fees`` (:class:`.network.Fees`: ``minimum(size, memory, cpu, ref_bytes)``).

``LedgerContext(ledger)``  (:mod:`.context`)
    a PyCardano ``ChainContext`` straight on the ledger (no socket); rejections raise
    ``zkadapt.cardano.errors.TransactionRejected`` like the Ogmios context.

``tests.ogmios_double.OgmiosDouble(ledger=None)``  (start/stop or ``with``; ``.url``)
    the same ledger behind an Ogmios v6 WebSocket, every message schema-checked
    (``.violations``); use ``zkadapt.cardano.ogmios.OgmiosContext(double.url)``.

What the rules check and what they leave out: :mod:`.rules` and :mod:`.ledger` docstrings.
Script contexts come from :func:`zkadapt.escrow.tx_context.script_runs`.
"""
