"""The source protocol, registry and configuration: validation of sources/*.yaml and treaties.yaml (exit code 2
material) and the registry's tables. (A maintenance page that clears is tested through the flow's fetch task in
tests/test_hostile.py.)"""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from flows import automations
from tasks import catalog, registry, tables


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize("text, problem", [
    ('- {id: "XVIII-12-c\\n", short_name: Firearms Protocol}\n',
     "entry 1 (XVIII-12-c), key id: Value error, needs an MTDSG id such as XVIII-12-c, not 'XVIII-12-c\\n'"),
    ("- {id: XXVI-8, short_name: {en: ATT}}\n", "entry 1 (XXVI-8), key short_name: Input should be a valid string"),
    ("- {id: XXVI-8, short_name: ATT, ulr: https://example.org}\n",
     "entry 1 (XXVI-8), key ulr: Extra inputs are not permitted"),
    ("- {id: XXVI-8, short_name: ''}\n", "entry 1 (XXVI-8), key short_name: String should have at least 1 character"),
    ("- {id: XXVI-8, url: not a url}\n", "entry 1 (XXVI-8), key url: Input should be a valid URL"),
    ("- XXVI-8\n", "key entry 1: Input should be a valid dictionary"),
    ("- {id: 12}\n", "entry 1, key id: Input should be a valid string"),
    ("- {id: XXVI-8}\n- {id: XXVI-8}\n", "XXVI-8 is listed twice"),
    ("{id: XXVI-8}\n", "expected a non-empty list"),
])
def test_treaty_catalog_errors_name_file_entry_and_key(tmp_path, text, problem):
    path = write(tmp_path, "treaties.yaml", text)
    with pytest.raises(catalog.CatalogError, match="treaty catalog") as error:
        catalog.load(path)
    assert str(path) in str(error.value) and problem in str(error.value), str(error.value)


def test_treaty_catalog_default_and_explicit_url():
    assert [t.id for t in catalog.load()][:2] == ["XVIII-12", "XVIII-12-a"]
    assert catalog.load()[3].url.endswith("/Volume%20II/Chapter%20XVIII/XVIII-12-c.en.xml")


def project_config(name: str) -> dict:
    return yaml.safe_load((registry.FOLDER / f"{name}.yaml").read_text())


@pytest.mark.parametrize("name, change, problem", [
    ("iafq", lambda c: c.update(releases=c["releases"][0]), "key releases: Input should be a valid list"),
    ("iafq", lambda c: c.update(relaeses=c.pop("releases")), "key relaeses: Extra inputs are not permitted"),
    ("iafq", lambda c: c.update(file_name=""), "key file_name: String should have at least 1 character"),
    ("iafq", lambda c: c.update(max_compression_ratio="100"),
     "key max_compression_ratio: Input should be a valid number"),
    ("sdg", lambda c: c["series"][0].update(page_size=0), "series[1] (VC_ARM_SZTRACE), key page_size"),
    ("sdg", lambda c: c["series"][1].update(page_size="1000"),
     "series[2] (VC_IHR_PSRC), key page_size: Input should be a valid integer"),
    ("sdg", lambda c: c["series"][0].update(code="VC_ARM_SZTRACE\n"),
     "series[1] (VC_ARM_SZTRACE), key code: String should match"),
    ("sdg", lambda c: c["series"][1].update(ulr="x"),
     "series[2] (VC_IHR_PSRC), key ulr: Extra inputs are not permitted"),
    ("sdg", lambda c: c["series"].append(copy.deepcopy(c["series"][0])),
     "key series: Value error, series listed twice: ['VC_ARM_SZTRACE']"),
    ("sdg", lambda c: c["series"][0]["panel"]["arms_traced_pct"].update(dimensions={}),
     "series[1] (VC_ARM_SZTRACE).panel.arms_traced_pct, key dimensions: Dictionary should have at least 1 item"),
    ("sdg", lambda c: c.update(series=[]), "key series: List should have at least 1 item"),
    ("sdg", lambda c: c["origin"]["license"].pop("url"), "origin.license, key url: Field required"),
])
def test_source_configuration_errors_name_file_entry_and_key(tmp_path, name, change, problem):
    folder = tmp_path / "sources"
    folder.mkdir()
    for source in registry.names():
        config = project_config(source)
        if source == name:
            change(config)
        (folder / f"{source}.yaml").write_text(yaml.safe_dump(config))
    with pytest.raises(catalog.CatalogError) as error:
        registry.load(folder)
    assert f"source {name}: {folder / name}.yaml" in str(error.value) and problem in str(error.value), str(error.value)


def config_files(tmp_path: Path) -> dict:
    """Each kind of configuration file: (path it reads, how armswatch loads it)."""
    folder = tmp_path / "sources"
    folder.mkdir()
    for name in registry.names():
        (folder / f"{name}.yaml").write_text((registry.FOLDER / f"{name}.yaml").read_text())
    return {"treaty catalog": (tmp_path / "treaties.yaml", lambda p: catalog.load(p)),
            "source sdg": (folder / "sdg.yaml", lambda p: registry.load(folder)),
            "country aliases": (tmp_path / "aliases.yaml", lambda p: catalog.country_aliases(p)),
            "automations file": (tmp_path / "armswatch.yaml", lambda p: automations.load(p.parent))}


@pytest.mark.parametrize("kind", ["treaty catalog", "source sdg", "country aliases", "automations file"])
@pytest.mark.parametrize("text, problem", [
    ("- &t {id: XXVI-8}\n- *t\n", "anchor &t: anchors and aliases are not allowed here at line 1, column 3"),
    ("a: *undefined\n", "alias *undefined: anchors and aliases are not allowed here at line 1, column 4"),
    ("a: 1\nb:\n  c: 2\n  c: 3\n", "duplicate key 'c' at line 4, column 3"),
    ("max_pages: 500\nmax_pages: 100000000\n", "duplicate key 'max_pages' at line 2, column 1"),
    ("- {id: XXVI-8, short_name: ATT, id: XXVI-2}\n", "duplicate key 'id' at line 1, column 33"),
])
def test_yaml_aliases_and_duplicate_keys_are_configuration_errors_naming_where(tmp_path, kind, text, problem):
    """Every configuration file goes through one loader: anchors and aliases are refused where they start (an alias
    bomb: tests/test_hostile_memory.py), and a repeated key (YAML keeps the last one silently) is named."""
    path, load = config_files(tmp_path)[kind]
    path.write_text(text)
    with pytest.raises(catalog.CatalogError) as error:
        load(path)
    message = str(error.value)
    assert message.startswith(kind) and f"{path}: not valid YAML: {problem}" in message, message
    assert len(message) < 300 and "\n" not in message, message


def test_registry_folder_problems(tmp_path):
    with pytest.raises(catalog.CatalogError, match="not a folder"):
        registry.load(tmp_path / "nowhere")
    (tmp_path / "sdgg.yaml").write_text("{}")
    with pytest.raises(catalog.CatalogError, match="sdgg.yaml name no registered source"):
        registry.load(tmp_path)
    with pytest.raises(catalog.CatalogError, match="unknown source 'treaty'"):
        registry.load(None, "treaty")


def test_the_treaty_source_is_registered_with_its_origin_and_hosts(tmp_path):
    untc = registry.treaty_source()
    assert untc.origin.producer == "United Nations Office of Legal Affairs, Treaty Section"
    assert str(untc.origin.url_main) == "https://treaties.un.org/"
    assert str(untc.origin.license.url) == "https://www.un.org/en/about-us/terms-of-use"
    assert untc.hosts == ["https://treaties.un.org"]
    assert [o.attribution_short for o in registry.origins()][0] == "UN Treaty Collection"
    config = yaml.safe_load((registry.FOLDER / "untc.yaml").read_text())
    config["origin"].pop("citation_full")
    (tmp_path / "untc.yaml").write_text(yaml.safe_dump(config))
    with pytest.raises(catalog.CatalogError, match="source untc: .*untc.yaml: origin, key citation_full: Field "
                                                   "required"):
        registry.treaty_source(tmp_path)


def test_registry_loads_every_source_with_its_origin():
    sources = registry.load()
    assert [s.name for s in sources] == registry.names() == ["sdg", "iafq", "m49"]
    assert all(s.origin.producer and s.origin.license.url and s.origin.citation_full for s in sources)
    assert [t.name for t in registry.tables()] == [
        tables.INDICATOR_OBSERVATIONS.name, tables.FIREARMS_SEIZURES.name, tables.COUNTRIES.name,
        tables.INDICATOR_REVISIONS.name]
