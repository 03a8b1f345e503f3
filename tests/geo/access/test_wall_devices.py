"""Wall devices: tokens stored as hashes, claimed once, expiring, revocable; and their CLI."""

import datetime as dt
import re

import pytest

from geo.access import audit, wall_devices
from geo.cli.main import main
from geo.errors import AreaNotFound, BadParameter
from geo.store import open_store
from tests.stores import copy_settings, dump, use_location

T0 = dt.datetime(2026, 11, 28, 8, 0, tzinfo=dt.timezone.utc)


@pytest.fixture
def store(new_store):
    return new_store()


def _refusal(call) -> str:
    with pytest.raises(wall_devices.DeviceRefused) as err:
        call()
    assert err.value.http_status == 403
    return err.value.reason


def test_the_store_keeps_only_a_hash_of_the_token(store):
    device, token = wall_devices.issue(store, "hall-left", "330200", 30, now=T0)
    assert len(token) >= 43 and device.area == "330200" and device.state(T0) == "issued"
    assert device.expires_at.startswith("2026-12-28")
    stored = dump(store)
    assert token not in stored and wall_devices.token_hash(token) in stored


def test_a_token_is_claimed_once_and_its_session_stays_valid(store):
    _, token = wall_devices.issue(store, "hall-left", None, 30, now=T0)
    device = wall_devices.claim(store, token, "10.0.0.5", now=T0)
    assert (device.name, device.claimed_from, device.state(T0)) == ("hall-left", "10.0.0.5", "active")
    assert _refusal(lambda: wall_devices.claim(store, token, now=T0)) == "used"
    later = T0 + dt.timedelta(days=29)
    assert wall_devices.check_session(store, "hall-left", device.stamp, now=later).name == "hall-left"
    assert wall_devices.get_device(store, "hall-left").last_seen_at.startswith("2026-12-27")


def test_unknown_expired_revoked_and_replaced_tokens_are_refused(store):
    assert _refusal(lambda: wall_devices.claim(store, "not-a-token", now=T0)) == "unknown"
    _, token = wall_devices.issue(store, "old", "330212", 2, now=T0)
    assert _refusal(lambda: wall_devices.claim(store, token, now=T0 + dt.timedelta(days=2))) == "expired"
    _, token = wall_devices.issue(store, "hall", "330212", 30, now=T0)
    device = wall_devices.claim(store, token, now=T0)
    wall_devices.revoke(store, "hall", now=T0 + dt.timedelta(hours=1))
    assert _refusal(lambda: wall_devices.check_session(store, "hall", device.stamp, now=T0)) == "revoked"
    # A new token under the same name ends the sessions of the old one (and lifts the revocation).
    _, again = wall_devices.issue(store, "hall", "330212", 30, now=T0)
    assert _refusal(lambda: wall_devices.check_session(store, "hall", device.stamp, now=T0)) == "replaced"
    assert _refusal(lambda: wall_devices.claim(store, token, now=T0)) == "unknown"
    assert wall_devices.claim(store, again, now=T0).state(T0) == "active"
    assert _refusal(lambda: wall_devices.check_session(store, "gone", "x", now=T0)) == "replaced"


def test_a_device_shows_the_city_or_one_district_only(store, atlas):
    assert wall_devices.issue(store, "dd", "330212", atlas=atlas)[0].scope.root == "330212"
    assert wall_devices.get_device(store, "dd").role == "district"
    with pytest.raises(BadParameter, match="wall device name"):
        wall_devices.issue(store, "d")
    for bad in ("330212108", "33", "abc"):
        with pytest.raises(BadParameter, match="the city 330200 or a district"):
            wall_devices.issue(store, "dd", bad)
    with pytest.raises(AreaNotFound):
        wall_devices.issue(store, "dd", "330299", atlas=atlas)
    for days in (0, 367, 1.5):
        with pytest.raises(BadParameter, match="days"):
            wall_devices.issue(store, "dd", None, days)
    with pytest.raises(BadParameter, match="no wall device"):
        wall_devices.revoke(store, "nobody")


@pytest.mark.both_stores
def test_cli_issues_lists_and_revokes_with_audit_entries(demo_settings, tmp_path, monkeypatch, capsys):
    import shutil

    settings = copy_settings(demo_settings, tmp_path / "data",
                             copy_options={"ignore": shutil.ignore_patterns("*.parquet", "events")})
    use_location(monkeypatch, settings)
    assert main(["users", "wall-token", "hall-left", "--area", "330212", "--days", "7",
                 "--base-url", "http://10.0.0.5:5000/"]) == 0
    out = capsys.readouterr().out
    token = re.search(r"http://10\.0\.0\.5:5000/wall/device#token=([\w-]+)", out).group(1)
    store = open_store(settings)
    assert wall_devices.claim(store, token).area == "330212"
    assert main(["users", "wall-token", "--list"]) == 0
    listing = capsys.readouterr().out
    assert "hall-left  330212  active" in listing and token not in listing
    assert main(["users", "wall-token", "--revoke", "hall-left"]) == 0
    assert "revoked" in capsys.readouterr().out
    assert main(["users", "wall-token", "x", "--area", "330212108"]) == 2
    actions = [e.action for e in audit.entries(store, limit=5)]
    assert actions[:2] == ["wall_device_revoked", "wall_device_issued"]
