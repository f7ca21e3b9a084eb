import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from gateway.config.model import ConfigError, load_config, parse_config

DEFAULT = "config/tillgate.toml"


def test_default_config_is_host_spec_section_6():
    config = load_config(DEFAULT)
    iso, line = config.listeners
    assert (iso.protocol, iso.host, iso.port, iso.framing, iso.bitmap) == (
        "iso8583", "127.0.0.1", 8583, "len2b", "ascii")
    assert (line.protocol, line.host, line.port, line.ack) == ("line", "127.0.0.1", 8584, True)
    assert (config.http.host, config.http.port) == ("127.0.0.1", 8580)
    assert config.redis.url is None and str(config.data_dir) == "var"
    assert config.merchants["STORE0000000001"].terminals == ("TILL0001", "TILL0002")
    assert config.merchants["BHNRESELLER0001"].terminals == ("BHN00001",)
    assert config.merchants["BHNRESELLER0001"].reseller == "blackhawk"
    gift, secure, loyalty = (config.programs[p] for p in ("gift", "secure", "loyalty"))
    assert (gift.kind, gift.currency, gift.card_length_max, gift.prefix, gift.luhn) == (
        "gift", "840", 19, "603953", True)
    assert (gift.pin_required, gift.max_balance, gift.reload, gift.partial_approval,
            gift.invoice_required) == (False, 100000, True, True, False)
    assert (secure.card_length_max, secure.prefix, secure.pin_length, secure.pin_tries,
            secure.pin_lock_seconds, secure.invoice_required) == (16, "603954", 4, 3, 86400, True)
    assert (loyalty.kind, loyalty.card_length_max, loyalty.prefix, loyalty.luhn) == (
        "loyalty", 10, "77", False)
    assert (loyalty.points_per_unit, loyalty.unit, loyalty.rounding, loyalty.points_only) == (
        1, 100, "floor", True)
    assert loyalty.reward("COFFEE").cost == 100
    # exactly section 6's: unknown cards per terminal (alert); (1.1) balance inquiries per card,
    # `316000` and `319000` alike (declined with 65)
    assert [(r.scope, r.event, r.window, r.max_count, r.max_amount, r.action)
            for r in config.rules] == [("terminal", "unknown_card", 60, 20, 0, "alert"),
                                       ("card", "balance", 60, 30, 0, "decline"),
                                       ("card", "pbalance", 60, 30, 0, "decline")]


BAD = textwrap.dedent("""
    [gateway]
    data_dir = 5
    [redis]
    url = "http://nope"
    [[listeners]]
    name = "iso"
    protocol = "iso8583"
    port = 70000
    framing = "len3"
    [merchants.M1]
    terminals = ["T1", "T1TOOLONGID"]
    [programs.gift]
    kind = "gift"
    card_length = 19
    prefix = "6039"
    max_balance = -5
    colour = "blue"
""")


def test_every_error_is_reported_with_its_path():
    with pytest.raises(ConfigError) as raised:
        parse_config(__import__("tomllib").loads(BAD))
    errors = raised.value.errors
    expected = [
        "gateway.data_dir: must be a string",
        "redis.url: must be a redis://, rediss:// or unix:// URL",
        "listeners[0].port: must be an integer from 0 to 65535",
        "listeners[0].framing: must be one of len2b, len4a, tpdu",
        "merchants.M1.terminals: terminal id 'T1TOOLONGID' must be 1 to 8 printable characters",
        "programs.gift.max_balance: must be a non-negative integer",
        "programs.gift.colour: is not a known setting",
    ]
    for line in expected:
        assert any(e.startswith(line) for e in errors), (line, errors)
    assert len(errors) == len(expected)


def test_positive_integer_message():
    with pytest.raises(ConfigError) as raised:
        parse_config({"programs": {"gift": {"kind": "gift", "card_length": 19, "prefix": "6",
                                            "pin_tries": 0}}})
    assert raised.value.errors == ["programs.gift.pin_tries: must be a positive integer"]


def test_imports_section_errors_name_their_path():
    with pytest.raises(ConfigError) as raised:
        parse_config({"imports": {"confirm_to": ["nobody"], "max_tries": 0, "code": 1}})
    assert raised.value.errors == [
        "imports.max_tries: must be an integer from 1 to 10",
        "imports.confirm_to: 'nobody' is not an e-mail address",
        "imports.code: is not a known setting",
    ]


def test_issue_secret_is_read_from_the_environment_and_long_enough(monkeypatch):
    monkeypatch.setenv("TG_SHORT_SECRET", "too-short")
    with pytest.raises(ConfigError) as raised:
        parse_config({"security": {"issue_secret_env": "TG_SHORT_SECRET"}})
    assert raised.value.errors == [
        "security.issue_secret_env: must be at least 32 bytes (e.g. `openssl rand -hex 32`)"]
    with pytest.raises(ConfigError, match="security.issue_secret: secrets are never written"):
        parse_config({"security": {"issue_secret": "x" * 64}})
    monkeypatch.setenv("TG_LONG_SECRET", "x" * 64)
    config = parse_config({"security": {"issue_secret_env": "TG_LONG_SECRET"}})
    assert config.security.issue_secret is not None
    assert config.security.issue_secret.value == b"x" * 64
    assert "x" * 8 not in repr(config.security)


def test_config_check_command(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text(BAD)
    run = subprocess.run([sys.executable, "-m", "gateway.cli", "config", "check", str(bad)],
                         capture_output=True, text=True)
    assert run.returncode == 2
    assert f"{bad}: programs.gift.max_balance: must be a non-negative integer" in run.stderr
    assert run.stderr.count("\n") == 7
    ok = subprocess.run([sys.executable, "-m", "gateway.cli", "config", "check", DEFAULT],
                        capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    assert "3 programs" in ok.stdout


def test_not_toml_and_missing_file(tmp_path):
    broken = tmp_path / "broken.toml"
    broken.write_text("[gateway\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(broken)
    with pytest.raises(ConfigError, match="no such file"):
        load_config(tmp_path / "absent.toml")


def test_reseller_profiles_load_with_overrides(tmp_path):
    from gateway.testing import config_text

    text = config_text(DEFAULT, data_dir="var", ports={}) + "\n"
    text = text.replace('profile = ', 'reversal_window = 3600\nprofile = ', 1)
    config = parse_config(__import__("tomllib").loads(text))
    blackhawk = config.resellers["blackhawk"]
    assert blackhawk.reversal_window == 3600  # the gateway's own key wins over the profile
    assert blackhawk.products["799366289999"].admits(2500)
    assert not blackhawk.products["799366289999"].admits(2000)
    assert blackhawk.products["799366289975"].admits(1000)
    assert not blackhawk.products["799366289975"].admits(50001)


def test_reseller_errors_name_their_path(tmp_path):
    profile = tmp_path / "p.toml"
    profile.write_text('[resellers.bhn]\n[[resellers.bhn.products]]\nupc = "12"\n'
                       'program = "nope"\n')
    with pytest.raises(ConfigError) as raised:
        parse_config({"merchants": {"M": {"terminals": ["T"], "reseller": "other"}},
                      "resellers": {"bhn": {"profile": str(profile)}}})
    errors = raised.value.errors
    assert "resellers.bhn.products[0].upc: must be 8 to 14 digits (got '12')" in errors
    assert "resellers.bhn.products[0].program: unknown program 'nope'" in errors
    assert "resellers.bhn.products[0]: needs a denomination, or a min and max" in errors
    assert "merchants.M.reseller: no reseller 'other' under [resellers]" in errors


def test_slow_and_many_client_settings_are_read_and_checked():
    """Issue 12: frame deadline, connection caps and backlog per listener, errors by path."""
    listener = {"name": "iso", "protocol": "iso8583", "port": 0}
    config = parse_config({"listeners": [{**listener, "frame_timeout": 5, "max_connections": 10,
                                          "max_connections_per_source": 0, "backlog": 4096}]})
    got = config.listeners[0]
    assert (got.frame_timeout, got.max_connections, got.max_connections_per_source,
            got.backlog) == (5, 10, 0, 4096)
    default = parse_config({"listeners": [listener]}).listeners[0]
    assert (default.frame_timeout, default.max_connections, default.max_connections_per_source,
            default.backlog) == (30, 1024, 256, 1024)
    with pytest.raises(ConfigError) as raised:
        parse_config({"listeners": [{**listener, "frame_timeout": -1, "max_connections": "many",
                                     "max_connections_per_source": -2, "backlog": 0}]})
    assert raised.value.errors == [
        "listeners[0].frame_timeout: must be a non-negative integer",
        "listeners[0].max_connections: must be a non-negative integer",
        "listeners[0].max_connections_per_source: must be a non-negative integer",
        "listeners[0].backlog: must be an integer from 1 to 65535",
    ]


def tillgate(*args: str, cwd) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "gateway.cli", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=60)


def test_the_shipped_config_loads_from_any_folder(tmp_path, monkeypatch):
    """Its reseller profile is named, not a path relative to the checkout (issue 14)."""
    shipped = Path(DEFAULT).resolve()
    monkeypatch.chdir(tmp_path)
    config = load_config(shipped)
    assert sorted(config.resellers["blackhawk"].products) == [
        "799366289975", "799366289982", "799366289999"]


def test_shipped_profiles_are_named_and_a_path_still_works(tmp_path):
    def resellers(table: dict) -> dict:
        return parse_config({"programs": {"gift": {"kind": "gift", "card_length": 19,
                                                   "prefix": "603953"}},
                             "resellers": table}).resellers

    # a shipped profile by name, under a reseller id of one's own
    incomm = resellers({"mine": {"profile": "incomm", "reversal_window": 60}})["mine"]
    assert incomm.name == "InComm Payments" and incomm.reversal_window == 60
    assert set(incomm.products) == {"799366300014", "799366300021"}
    own = tmp_path / "own.toml"
    own.write_text('[resellers.mine]\nname = "Mine"\n[[resellers.mine.products]]\n'
                   'upc = "12345678"\nprogram = "gift"\ndenomination = 500\n')
    assert set(resellers({"mine": {"profile": str(own)}})["mine"].products) == {"12345678"}
    with pytest.raises(ConfigError) as raised:
        resellers({"a": {"profile": "blackhawks"}, "b": {"profile": "gone/x.toml"}})
    assert raised.value.errors == [
        "resellers.a.profile: no shipped profile 'blackhawks' (shipped: blackhawk, incomm; "
        "or give the path of a profile file)",
        "resellers.b.profile: no such file 'gone/x.toml' (a path is relative to the working "
        "directory; shipped profiles are named: blackhawk, incomm)"]


def test_config_show_and_init_give_the_built_in_default(tmp_path):
    shown = tillgate("config", "show", cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout == Path(DEFAULT).resolve().read_text()
    assert "# " in shown.stdout  # annotated

    mine = tmp_path / "mine.toml"
    made = tillgate("config", "init", str(mine), cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    assert mine.read_text() == shown.stdout
    mine.write_text(mine.read_text().replace('log_level = "INFO"', 'log_level = "DEBUG"'))
    again = tillgate("config", "init", str(mine), cwd=tmp_path)
    assert again.returncode == 2 and again.stderr == f"tillgate: {mine}: exists, not overwritten\n"
    assert 'log_level = "DEBUG"' in mine.read_text()  # an edited file is never overwritten
    # a copy starts anywhere (its profile is named), here from another folder
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    checked = tillgate("config", "check", str(mine), cwd=elsewhere)
    assert checked.returncode == 0, checked.stderr


def test_without_a_config_file_the_built_in_default_applies(tmp_path):
    checked = tillgate("config", "check", cwd=tmp_path)  # no --config, no config/ here
    assert checked.returncode == 0, checked.stderr
    assert "(the built-in default): ok (3 programs" in checked.stdout
    missing = tillgate("config", "check", "--config", "absent.toml", cwd=tmp_path)
    assert missing.returncode == 2 and "absent.toml: no such file" in missing.stderr


def test_portal_terminal_is_a_terminal_of_its_merchant():
    config = load_config(DEFAULT)
    store = config.merchants["STORE0000000001"]
    assert store.portal_terminal == "WEB00001"
    assert store.terminals == ("TILL0001", "TILL0002")  # the tills stay HOST-SPEC 6's
    assert config.merchant_of_terminal("WEB00001") is store
    with pytest.raises(ConfigError) as raised:
        parse_config({"merchants": {
            "M1": {"terminals": ["T1"], "portal_terminal": "T2"},
            "M2": {"terminals": ["T2"], "portal_terminal": "WEB000001"}}})
    assert raised.value.errors == [
        "merchants.M2.portal_terminal: terminal id 'WEB000001' must be 1 to 8 printable "
        "characters",
        "merchants.M1.portal_terminal: terminal 'T2' already belongs to merchant 'M2'"]
