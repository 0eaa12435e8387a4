"""The CLI's other commands: record a mirror, print the data dictionary."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from conftest import SHARED
from flows.cli import main
from tasks import registry
from tasks.dictionary import markdown
from tasks.panel import PUBLISHED_TABLES

PROJECT = Path(__file__).resolve().parents[1]


def test_warehouse_readme_is_the_generated_data_dictionary():
    assert (PROJECT / "warehouse" / "README.md").read_text() == markdown() + "\n", "run: armswatch docs > warehouse/README.md"


def test_docs_documents_every_column(capsys):
    assert main(["docs"]) == 0
    out = capsys.readouterr().out
    assert "| `consent_kind` | `string` |" in out and "## country_year_panel" in out and "## treaty_status" in out
    counts = out.split("## Which table counts what", 1)[1].split("\n## ", 1)[0]
    for words in ("organisations included", "states only", "consents deposited", "parties in force", "as_of"):
        assert words in counts
    columns = {(t.name, f.name) for t in PUBLISHED_TABLES for f in t.schema}
    named = re.findall(r"`([a-z_]+)\.([a-z_]+)`", counts)
    assert len(named) >= 8 and set(named) <= columns, "every column the definitions name exists"
    sources = out.split("## Sources and licences", 1)[1].split("\n## ", 1)[0]
    for origin in registry.origins():
        assert f"[{origin.license.name}]({origin.license.url})" in sources and origin.citation_full in sources


@pytest.mark.usefixtures("prefect_harness")
def test_record_writes_a_mirror_in_the_shared_manifest_format(tmp_path, capsys):
    catalog = tmp_path / "catalog.yaml"
    catalog.write_text("- {id: XVIII-12-c, short_name: Firearms Protocol}\n")
    recorded = tmp_path / "recorded"
    assert main(["record", str(recorded), "--mirror", str(SHARED), "--treaties", str(catalog)]) == 0
    entries = json.loads((recorded / "manifest.json").read_text())
    shared = {e["url"]: e for e in json.loads((SHARED / "manifest.json").read_text())}
    assert len(entries) == 1 + 2 + 3 + 6 + 2 + 1  # treaty, SDG series lists, pages of both series, IAFQ releases, M49
    for entry in entries:
        assert set(entry) == set(shared[entry["url"]]), "same fields as ../shared/data/manifest.json"
        assert entry["sha256"] == shared[entry["url"]]["sha256"]
        assert (recorded / entry["file"]).read_bytes() == (SHARED / shared[entry["url"]]["file"]).read_bytes()
    capsys.readouterr()
    code = main(["run", "--only", "treaties", "--mirror", str(recorded), "--treaties", str(catalog),
                 "--warehouse", str(tmp_path / "wh")])
    assert code == 0 and re.search(r"treaties +XVIII-12-c +published", capsys.readouterr().out)


@pytest.mark.usefixtures("prefect_harness")
def test_default_relative_warehouse(tmp_path, monkeypatch, capsys):
    catalog = tmp_path / "catalog.yaml"
    catalog.write_text("- {id: XXVI-8, short_name: ATT}\n")
    monkeypatch.chdir(tmp_path)
    assert main(["run", "--only", "treaties", "--mirror", str(SHARED), "--treaties", str(catalog)]) == 0
    assert (tmp_path / "warehouse" / "participation" / "XXVI-8.parquet").exists()
    assert (tmp_path / "warehouse" / "_docs" / "index.html").exists()


@pytest.mark.parametrize("variable, value, problem", [
    ("ARMSWATCH_KEEP", "abc", "ARMSWATCH_KEEP='abc': Input should be a valid integer"),
    ("ARMSWATCH_KEEP", "0", "ARMSWATCH_KEEP='0': Input should be greater than or equal to 1"),
    ("ARMSWATCH_REMIND_DAYS", "-1", "ARMSWATCH_REMIND_DAYS='-1': Input should be greater than or equal to 0"),
    ("ARMSWATCH_SERVER_STARTUP_TIMEOUT", "inf", "ARMSWATCH_SERVER_STARTUP_TIMEOUT='inf': Value error, should be a "
                                                "finite number"),
    ("ARMSWATCH_ALERT_BLOCK", "slack", "ARMSWATCH_ALERT_BLOCK='slack': should be a block slug"),
    ("ARMSWATCH_ALERT_URL", "hooks.example.org/TOKEN", "ARMSWATCH_ALERT_URL=(not shown: a secret): should be a URL"),
    ("ARMSWATCH_KEPP", "3", "ARMSWATCH_KEPP='3': names no setting (known: ARMSWATCH_MIRROR, "),
])
def test_every_environment_setting_is_checked_before_any_flow_exit_2(tmp_path, capsys, monkeypatch, variable, value,
                                                                     problem):
    """`ARMSWATCH_KEEP=abc` once published and then crashed (exit 4) at the retention step."""
    monkeypatch.setenv(variable, value)
    assert main(["run", "--mirror", str(SHARED), "--warehouse", str(tmp_path / "wh")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"armswatch: environment: {problem}") and err.count("\n") == 1, err
    assert "TOKEN" not in err
    assert not (tmp_path / "wh").exists()


@pytest.mark.usefixtures("prefect_harness")
def test_a_deployed_flow_checks_the_environment_before_it_opens_its_run(tmp_path, monkeypatch):
    """Deployments call the flows without the CLI: the flow fails on the setting, before anything is published."""
    from flows.indicators import indicators

    monkeypatch.setenv("ARMSWATCH_KEEP", "abc")
    state = indicators(warehouse=str(tmp_path / "wh"), mirror=str(SHARED), only="m49", notify=False,
                       return_state=True)
    assert state.is_failed()
    problem = str(state.result(raise_on_failure=False))
    assert "environment: ARMSWATCH_KEEP='abc': Input should be a valid integer" in problem, problem
    assert not (tmp_path / "wh").exists()
