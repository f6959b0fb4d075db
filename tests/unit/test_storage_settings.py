"""Where the data is (the tables and the region) comes from referrals.config, with no fallback: a function
deployed without a table's variable stops at its cold start with one line naming it."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from devserver.stack import Stack
from referrals import storage
from referrals.config import SettingsError, load_storage_settings

ROOT = Path(__file__).resolve().parents[2]
TABLES = {
    "CUSTOMERS_TABLE": "the name of the customers table",
    "CODES_TABLE": "the name of the referral codes table",
    "COUNTS_TABLE": "the name of the referral counts table",
    "REFERRALS_TABLE": "the name of the referrals table",
    "INVITES_TABLE": "the name of the invites table",
    "FIGURES_TABLE": "the name of the programme figures table",
}


@pytest.fixture
def fresh_settings() -> Iterator[None]:
    """storage reads its settings once; let a test read them again from its own environment, then forget them."""
    storage.settings.cache_clear()
    try:
        yield
    finally:
        storage.settings.cache_clear()


@pytest.mark.parametrize("variable", list(TABLES))
@pytest.mark.parametrize("value", [None, "", "  "])
def test_a_missing_or_empty_table_variable_is_one_clear_line(monkeypatch, variable, value):
    if value is None:
        monkeypatch.delenv(variable, raising=False)
    else:
        monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError) as raised:
        load_storage_settings()
    assert str(raised.value) == f"{variable} is not set ({TABLES[variable]}, set by template.yaml)"


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("CODES_TABLE", "my codes", "CODES_TABLE is 'my codes', which is not a DynamoDB table name"),
        ("INVITES_TABLE", "ab", "INVITES_TABLE is 'ab', which is not a DynamoDB table name"),
        ("AWS_REGION", "Ireland", "AWS_REGION is 'Ireland', which is not an AWS region such as eu-west-1"),
    ],
)
def test_a_malformed_variable_is_refused_and_named(monkeypatch, variable, value, expected):
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError, match=re.escape(expected)):
        load_storage_settings()


def test_the_region_is_lambdas_and_required(monkeypatch):
    monkeypatch.setenv("AWS_REGION", "eu-central-1")
    assert load_storage_settings().region == "eu-central-1"
    monkeypatch.delenv("AWS_REGION")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-2")
    assert load_storage_settings().region == "eu-west-2"
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    with pytest.raises(SettingsError, match=r"^AWS_REGION is not set \(the function's region, set by Lambda\)$"):
        load_storage_settings()


def test_the_models_take_their_tables_from_the_settings(monkeypatch, fresh_settings):
    monkeypatch.setenv("CUSTOMERS_TABLE", "prod-CustomersTable-1A2B")
    assert storage.CustomerItem.Meta.table_name == "prod-CustomersTable-1A2B"
    assert storage.CustomerItem.Meta.region == os.environ["AWS_REGION"]


def test_no_table_has_a_fallback_name(monkeypatch, fresh_settings):
    # Given a function whose CUSTOMERS_TABLE is missing
    monkeypatch.delenv("CUSTOMERS_TABLE")
    # When any request would name the table, Then it is refused: there is no table called "CUSTOMERS_TABLE"
    with pytest.raises(SettingsError, match="CUSTOMERS_TABLE is not set"):
        _ = storage.CustomerItem.Meta.table_name
    with pytest.raises(SettingsError, match="CUSTOMERS_TABLE is not set"):
        storage.load_customer("someone")


# Imports each function's handler module as Lambda would, in a fresh interpreter, and prints how it ended.
_COLD_START = """
import importlib.util, sys
for name, path in [line.split("=", 1) for line in sys.argv[1:]]:
    spec = importlib.util.spec_from_file_location(f"app_{name}", path)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
        print(f"{name} started")
    except Exception as error:
        print(f"{name} {type(error).__name__}: {error}")
"""


# The HTTP door reads no table (it invokes the functions that do): it stops without its own wiring instead
# (tests/integration/test_http_door.py).
NO_TABLES = {"HttpApiFunction"}


def test_every_function_stops_at_cold_start_without_its_tables_while_the_domain_imports():
    functions = {name: spec for name, spec in Stack().functions().items() if name not in NO_TABLES}
    env = {k: v for k, v in os.environ.items() if k != "CUSTOMERS_TABLE"}
    env["PYTHONPATH"] = os.pathsep.join(str(p) for p in (ROOT / "layers" / "referrals", ROOT))
    paths = [f"{name}={spec.code_dir / (spec.module + '.py')}" for name, spec in functions.items()]
    script = "import referrals.customers, referrals.rewards, referrals.privacy\n" + _COLD_START
    done = subprocess.run(
        [sys.executable, "-c", script, *paths],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    line = "SettingsError: CUSTOMERS_TABLE is not set (the name of the customers table, set by template.yaml)"
    assert done.stdout.splitlines() == [f"{name} {line}" for name in functions]


def test_only_config_reads_the_environment():
    sources = [*(ROOT / "layers").rglob("*.py"), *(ROOT / "functions").rglob("*.py")]
    readers = [p.relative_to(ROOT).as_posix() for p in sources if re.search(r"os\.environ|getenv", p.read_text())]
    assert readers == ["layers/referrals/referrals/config.py"]


@pytest.mark.parametrize("value", [None, "", "bus with spaces"])
def test_the_event_bus_has_no_made_up_fallback(monkeypatch: pytest.MonkeyPatch, value: str | None) -> None:
    # Given no bus name, or a malformed one (a made-up bus would strand every event in the outbox)
    if value is None:
        monkeypatch.delenv("EVENT_BUS_NAME", raising=False)
    else:
        monkeypatch.setenv("EVENT_BUS_NAME", value)
    # When the event settings are read, Then the one line names the variable
    from referrals.config import load_event_settings

    with pytest.raises(SettingsError, match=r"^EVENT_BUS_NAME is "):
        load_event_settings()


def test_a_region_of_a_partition_with_a_longer_prefix_is_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_REGION", "eusc-de-east-1")
    assert load_storage_settings().region == "eusc-de-east-1"


def test_every_settings_error_is_a_value_error() -> None:
    assert issubclass(SettingsError, ValueError)
