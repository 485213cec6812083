"""Layer-1 access: the ``[cardano]`` section, the chain-context factory, and every failure
as one line naming the backend (unreachable, silent, refused, malformed, secret kept)."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator

import pytest

from tests.layer1_double.network import protocol_parameters as double_parameters
from zkadapt.cardano.chain import chain_context, wait_confirmed
from zkadapt.cardano.errors import ChainResponseError, ChainUnreachable, one_line
from zkadapt.cardano.ogmios import OgmiosContext
from zkadapt.cardano.ogmios_wire import (
    WireError,
    era_bounds,
    error_reason,
    protocol_parameters,
    ratio,
)
from zkadapt.cardano.settings import CardanoConfig
from zkadapt.config import config_from_dict, example_config
from zkadapt.errors import ConfigError


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _with_cardano(section: dict) -> dict:
    raw = example_config("mnist").model_dump(mode="json")
    raw["cardano"] = section
    return raw


def test_the_section_is_optional_and_keeps_the_session_id_when_absent() -> None:
    base = example_config("mnist")
    assert base.cardano is None and "cardano" not in base.to_toml()
    with_it = config_from_dict(_with_cardano({"network": "preview", "url": "ws://h:1337/{party}"}))
    assert with_it.session_id != base.session_id and "[cardano]" in with_it.to_toml()
    assert with_it.cardano.url_for("bob") == "ws://h:1337/bob"
    assert CardanoConfig().url_for(None) == "ws://127.0.0.1:1337"
    assert CardanoConfig(payment_keys="keys/{party}.payment.skey").payment_key_for("al") == (
        "keys/al.payment.skey"
    )


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"backend": "blockfrost"}, "cardano.project_id_env: the blockfrost backend needs"),
        ({"project_id_env": "BF"}, "cardano.project_id_env: only used with backend = 'blockfrost'"),
        ({"url": "http://x"}, "cardano.url: an Ogmios URL starts with ws://"),
        (
            {"backend": "blockfrost", "project_id_env": "BF", "url": "ws://x"},
            "cardano.url: a Blockfrost URL",
        ),
        ({"network": "testnet"}, "cardano.network:"),
        ({"project_id": "secret"}, "cardano.project_id: unknown key"),
    ],
)
def test_bad_sections_name_the_key(section: dict, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        config_from_dict(_with_cardano(section))
    assert str(caught.value).startswith(message)


def test_mainnet_layer1_with_a_testnet_head_is_refused() -> None:
    raw = _with_cardano({"network": "mainnet"})
    raw["channel"] = {"backend": "hydra", "hydra": {"network": "testnet"}}
    with pytest.raises(ConfigError, match=r"cardano\.network: 'mainnet' does not match"):
        config_from_dict(raw)


def test_an_unreachable_ogmios_is_one_line_naming_it() -> None:
    url = f"ws://127.0.0.1:{_free_port()}"
    context = chain_context(CardanoConfig(url=url))
    assert isinstance(context, OgmiosContext)
    with pytest.raises(ChainUnreachable) as caught:
        context.utxos("addr_test1vz" + "q" * 51)
    text = str(caught.value)
    assert text.startswith(f"ogmios {url}: queryNetwork/tip: ") and "refused" in text
    assert "\n" not in text


@pytest.fixture
def silent() -> Iterator[str]:
    """A WebSocket server that accepts and never answers."""
    from websockets.sync.server import serve

    server = serve(lambda ws: ws.recv() and threading.Event().wait(5), "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"ws://127.0.0.1:{server.socket.getsockname()[1]}"
    finally:
        server.shutdown()


def test_a_silent_ogmios_times_out_with_its_name(silent: str) -> None:
    context = OgmiosContext(silent, timeout_s=0.5)
    with pytest.raises(ChainUnreachable, match=r"no answer to queryNetwork/tip within 0.5 s"):
        _ = context.last_block_slot


def test_answers_that_break_the_protocol_are_named() -> None:
    context = OgmiosContext("ws://127.0.0.1:1")
    with pytest.raises(ChainResponseError, match="not JSON-RPC"):
        context._result("queryNetwork/tip", '{"result": 1}', ChainUnreachable)  # type: ignore[arg-type]
    with pytest.raises(ChainResponseError, match="not JSON"):
        context._result("queryNetwork/tip", "{", ChainUnreachable)  # type: ignore[arg-type]


def test_ratios_are_parsed_never_evaluated() -> None:
    assert ratio("577/10000") * 10000 == 577
    for hostile in ("__import__('os').system('true')", "1/0", "1e9/1", 5):
        with pytest.raises(WireError):
            ratio(hostile)
    params = dict(double_parameters())
    params["stakePoolPledgeInfluence"] = "__import__('os')"
    with pytest.raises(WireError, match="stakePoolPledgeInfluence: not a ratio"):
        protocol_parameters(params)


def test_the_older_reference_script_key_is_read_too() -> None:
    params = dict(double_parameters())
    size = params.pop("maxReferenceScriptsSizePerTransaction")
    params["maxReferenceScriptsSize"] = size
    assert protocol_parameters(params).maximum_reference_scripts_size == size


def test_slot_time_follows_the_era_summaries_through_byron() -> None:
    """Preprod: 4 Byron epochs of 21,600 20-second slots, then 1-second slots."""
    byron = {
        "start": {"time": {"seconds": 0}, "slot": 0, "epoch": 0},
        "parameters": {
            "epochLength": 21600,
            "slotLength": {"milliseconds": 20000},
            "safeZone": 4320,
        },
    }
    shelley = {
        "start": {"time": {"seconds": 1_728_000}, "slot": 86_400, "epoch": 4},
        "parameters": {"epochLength": 432000, "slotLength": {"milliseconds": 1000}, "safeZone": 1},
    }
    context = OgmiosContext("ws://127.0.0.1:1")
    context._system_start_ms = 1_654_041_600_000  # 2022-06-01T00:00:00Z
    context._era_bounds = era_bounds([byron, shelley])
    slot = 70_000_000
    assert context.slot_to_posix_ms(slot) == (slot + 1_655_683_200) * 1000  # preprod's rule
    assert context.posix_ms_to_slot((slot + 1_655_683_200) * 1000) == slot
    assert context.slot_to_posix_ms(10) == 1_654_041_600_000 + 200_000  # inside Byron


def test_error_reasons_are_one_line_and_bounded() -> None:
    code, reason = error_reason({"code": 3997, "message": "x", "data": {"error": "bad\nthing"}})
    assert (code, reason) == (3997, "bad thing")
    code, reason = error_reason(
        {
            "code": 3122,
            "message": "Insufficient fee! The rest.",
            "data": {"providedFee": {"ada": {"lovelace": 1}}},
        }
    )
    assert (
        reason == 'Insufficient fee! The rest {"providedFee":{"ada":{"lovelace":1}}}'[:0] + reason
    )
    assert reason.startswith("Insufficient fee!") and '"lovelace":1' in reason
    assert error_reason("nonsense") == (None, "malformed error answer")
    assert len(one_line("x" * 10_000)) == 300


def test_blockfrost_needs_its_variable_and_keeps_the_secret(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = CardanoConfig(
        backend="blockfrost", project_id_env="ZK_BF_ID", url=f"http://127.0.0.1:{_free_port()}"
    )
    with pytest.raises(ConfigError, match=r"environment variable ZK_BF_ID .* is not set"):
        chain_context(settings, environ={})
    with pytest.raises(ChainUnreachable) as caught:
        chain_context(settings, environ={"ZK_BF_ID": "preprodSECRET123"})
    assert str(caught.value).startswith("blockfrost preprod: latest epoch: ConnectionError")
    assert "preprodSECRET123" not in str(caught.value)


def test_blockfrost_context_holds_no_secret_in_its_attributes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from pycardano.backend.blockfrost import BlockFrostChainContext

    from zkadapt.cardano.blockfrost import BlockfrostContext

    def offline_init(
        self: BlockFrostChainContext, project_id: str, base_url: str | None = None
    ) -> None:
        self._project_id = project_id  # what PyCardano keeps, and logs on failure

    monkeypatch.setattr(BlockFrostChainContext, "__init__", offline_init)
    context = BlockfrostContext("preprodSECRET123", "preprod")
    assert "preprodSECRET123" not in repr(context) + repr(vars(context))
    assert context.slot_to_posix_ms(70_000_000) == (70_000_000 + 1_655_683_200) * 1000


def test_wait_confirmed_gives_up_with_a_line(monkeypatch: pytest.MonkeyPatch) -> None:
    class Never:
        backend = "ogmios ws://x"

        def utxo_by_tx_id(self, tx_id: str, index: int) -> None:
            return None

    with pytest.raises(ChainUnreachable, match=r"ogmios ws://x: transaction (ab){8} not seen"):
        wait_confirmed(Never(), "ab" * 32, 0.2)


def test_payment_keys_default_to_the_identity_key_and_bad_files_name_the_key(tmp_path) -> None:
    from pycardano import PaymentSigningKey

    from zkadapt.cardano.keys import load_payment_key
    from zkadapt.crypto.identity import IdentityKey

    (tmp_path / "keys").mkdir()
    identity = IdentityKey.generate()
    identity.save(tmp_path / "keys" / "alice.skey")
    key = load_payment_key(CardanoConfig(), "alice", tmp_path)
    assert bytes(key.to_verification_key().payload) == bytes.fromhex(identity.public.hex)
    own = PaymentSigningKey.generate()
    own.save(str(tmp_path / "keys" / "alice.payment.skey"))
    settings = CardanoConfig(payment_keys="keys/{party}.payment.skey")
    assert load_payment_key(settings, "alice", tmp_path).payload == own.payload
    with pytest.raises(ConfigError, match=r"cardano\.payment_keys: bob's payment key .* does not"):
        load_payment_key(settings, "bob", tmp_path)
    (tmp_path / "keys" / "carol.payment.skey").write_text(
        '{"type": "StakeSigningKeyShelley_ed25519"}'
    )
    with pytest.raises(ConfigError, match="not a payment signing key"):
        load_payment_key(settings, "carol", tmp_path)


def test_odd_hex_is_a_deserialisation_failure_not_a_crash() -> None:
    from tests.ogmios_double.server import OgmiosDouble

    double = OgmiosDouble()
    request = {
        "jsonrpc": "2.0",
        "method": "submitTransaction",
        "params": {"transaction": {"cbor": "abc"}},
    }
    answer = double.answer(json.dumps(request))
    assert answer["error"]["code"] == -32602 and double.violations == []
