"""Native Storj: credentials from the environment, clear errors, retries (offline), and the
libuplink binding itself as far as it runs without a satellite."""

from __future__ import annotations

import socket

import pytest

from tests.storage.fake_uplink import FakeSatellite, FakeUplink
from zkadapt.errors import StorageError
from zkadapt.storage.location import BucketLocation
from zkadapt.storage.retry import RetryPolicy
from zkadapt.storage.storj import ACCESS_ENV, SEED_ENV, StorjStore, access_env_name

PARTIES = ("alice", "bob", "my-lab")
QUICK = RetryPolicy(retries=3, backoff_s=0.001)


def _store(env: dict[str, str], party: str | None = "alice", **kwargs: object) -> StorjStore:
    sat = kwargs.pop("sat", None) or FakeSatellite(buckets={f"zkadapt-{p}": {} for p in PARTIES})
    locations = {p: BucketLocation("sj://", f"zkadapt-{p}") for p in PARTIES}
    return StorjStore(
        party=party,
        locations=locations,
        uplink=FakeUplink(sat),  # type: ignore[arg-type]
        environ=env,
        retry=QUICK,
        **kwargs,  # type: ignore[arg-type]
    )


def test_access_env_names_follow_the_party_name() -> None:
    assert access_env_name("alice") == "ZKADAPT_STORJ_ACCESS_ALICE"
    assert access_env_name("my-lab") == "ZKADAPT_STORJ_ACCESS_MY_LAB"


def test_the_seeds_variable_names_are_accepted() -> None:
    env = dict(zip(SEED_ENV, ["alice", "12abc@sat.example:7777", "passphrase"], strict=True))
    store = _store(env)
    store.check()
    ref = store.put("zkadapt/x.bin", b"v")
    assert ref.uri == "sj://zkadapt-alice/zkadapt/x.bin"
    assert store.get(ref) == b"v"


def test_own_grant_from_zkadapt_storj_access() -> None:
    store = _store({ACCESS_ENV: "alice-rw"})
    store.check()
    assert store.exists(store.put("k.bin", b"1").uri.removeprefix("sj://zkadapt-alice/"))


def test_without_credentials_the_error_names_the_bucket_party_and_variables() -> None:
    with pytest.raises(StorageError) as info:
        _store({}).check()
    text = str(info.value)
    assert text.startswith("sj://zkadapt-alice/: party alice has no Storj credentials")
    assert "ZKADAPT_STORJ_ACCESS_ALICE" in text and "MY_API_KEY" in text and "\n" not in text


def test_my_bucket_must_agree_with_the_session_file() -> None:
    with pytest.raises(StorageError, match="MY_BUCKET=elsewhere but the session file"):
        _store({ACCESS_ENV: "alice-rw", "MY_BUCKET": "elsewhere"}).check()
    _store({ACCESS_ENV: "alice-rw", "MY_BUCKET": "zkadapt-alice"}).check()


def test_missing_bucket_and_create_bucket() -> None:
    sat = FakeSatellite()
    with pytest.raises(StorageError, match="party alice: bucket zkadapt-alice does not exist"):
        _store({ACCESS_ENV: "alice-rw"}, sat=sat).check()
    _store({ACCESS_ENV: "alice-rw"}, sat=sat, create_bucket=True).check()
    assert "zkadapt-alice" in sat.buckets


def test_a_read_only_grant_cannot_write() -> None:
    store = _store({access_env_name("alice"): "alice-ro"})
    with pytest.raises(StorageError) as info:
        store.put("x.bin", b"x")
    assert str(info.value) == (
        "sj://zkadapt-alice/x.bin: party alice is denied writing: its access grant has no "
        "permission on zkadapt-alice"
    )


def test_others_buckets_are_read_with_their_shared_grants() -> None:
    sat = FakeSatellite(buckets={f"zkadapt-{p}": {} for p in PARTIES})
    bob = _store({access_env_name("bob"): "bob-rw"}, party="bob", sat=sat)
    ref = bob.put("u.bin", b"bob's update")
    alice = _store(
        {access_env_name("alice"): "alice-rw", access_env_name("bob"): "bob-ro"}, sat=sat
    )
    assert alice.get(ref) == b"bob's update"
    auditor = _store({access_env_name("bob"): "bob-ro"}, party=None, sat=sat)
    assert auditor.get(ref) == b"bob's update"
    with pytest.raises(StorageError, match="ZKADAPT_STORJ_ACCESS_ALICE"):
        auditor.get(alice.put("a.bin", b"a"))  # no grant for alice's bucket


def test_dial_failures_are_retried() -> None:
    sat = FakeSatellite(buckets={"zkadapt-alice": {}}, down=2)
    store = _store({ACCESS_ENV: "alice-rw"}, sat=sat)
    store.check()  # two refused dials, then success
    sat.down = 10
    with pytest.raises(StorageError, match="writing failed: rpc: dial tcp"):
        store.put("x.bin", b"x")


def test_reprs_hold_no_secret() -> None:
    store = _store({ACCESS_ENV: "alice-rw", "MY_ENCRYPTION_PASSPHRASE": "hunter2"})
    assert "alice-rw" not in repr(store) and "hunter2" not in repr(store)


# -- the ctypes binding, as far as it runs offline --------------------------------------------

uplink_c = pytest.importorskip("zkadapt.storage.uplink_c")
#: A well-formed satellite node id and API key (macaroon) that no satellite knows.
NODE_ID = "12EayRS2V1kEsWESU9QMRseFhdxYxKicsiFmxrsLZHeLUtdps3S"
API_KEY = (
    "13YqeGFpvtzbUp1QAfpvy2E5ZqLUFFNhEkv7153UDGDVnSmTuYYa7tKUnENGgvFXCCSFP7zNhKw6fsuQmWG5JGdQ"
    "JbXVaVYFhoM2LcA"
)


@pytest.fixture(scope="module")
def uplink() -> object:
    pytest.importorskip("storj_uplink")
    return uplink_c.Uplink(dial_timeout_ms=1000)


def test_library_loads_and_a_bad_grant_is_an_uplink_error(uplink: object) -> None:
    with pytest.raises(uplink_c.UplinkError) as info:
        uplink.parse_access("not-a-grant")  # type: ignore[attr-defined]
    assert info.value.code == uplink_c.INTERNAL
    assert "invalid access grant" in info.value.message


@pytest.mark.slow
def test_unreachable_satellite_is_a_transient_uplink_error(uplink: object) -> None:
    from zkadapt.storage.storj import is_transient

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    satellite = f"{NODE_ID}@127.0.0.1:{port}"
    with pytest.raises(uplink_c.UplinkError) as info:
        uplink.request_access(satellite, API_KEY, "pass")  # type: ignore[attr-defined]
    assert "connector failed" in info.value.message or "dial" in info.value.message
    assert is_transient(info.value)


def test_a_malformed_api_key_is_not_retried(uplink: object) -> None:
    from zkadapt.storage.storj import is_transient

    with pytest.raises(uplink_c.UplinkError) as info:
        uplink.request_access(f"{NODE_ID}@127.0.0.1:1", "13Yq", "pass")  # type: ignore[attr-defined]
    assert "invalid api key format" in info.value.message
    assert not is_transient(info.value)


def test_missing_package_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from zkadapt.errors import ConfigError

    monkeypatch.setitem(sys.modules, "storj_uplink", None)
    with pytest.raises(
        ConfigError, match=r"'storj' needs storj-uplink: pip install 'zkadapt\[storj\]'"
    ):
        uplink_c.library_path()
