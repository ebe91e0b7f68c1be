"""The documentation says what the code declares: Scenario's Parameters section and
the README's parameter table come from ``PARAMETERS``; the docs site lists the public
API; the changelog names the version."""
import inspect
import pathlib
import re
import tomllib

import pytest

import toolkit
from toolkit import docgen
from toolkit.scenario import PARAMETERS, Scenario, parameters_section

ROOT = pathlib.Path(__file__).resolve().parents[1]
README = ROOT / "README.md"


def _scenario_parameters() -> list[tuple[str, str, str]]:
    """(name, type line, description) of each entry of Scenario's Parameters section."""
    doc = inspect.getdoc(Scenario)
    section = doc.split("Parameters\n----------\n", 1)[1].split("\n\n", 1)[0]
    entries = re.findall(r"^(\w+) : (.*)\n((?:    .*\n?)+)", section, flags=re.M)
    return [(name, kind, " ".join(line.strip() for line in text.splitlines()))
            for name, kind, text in entries]


def test_scenario_docstring_lists_every_parameter_in_table_order():
    entries = _scenario_parameters()
    assert [name for name, _, _ in entries] == [p.name for p in PARAMETERS]
    assert parameters_section("    ") in Scenario.__doc__


@pytest.mark.parametrize("spec", PARAMETERS, ids=lambda p: p.name)
def test_each_parameter_entry_has_type_default_units_and_range(spec):
    (kind, text), = [(k, t) for n, k, t in _scenario_parameters() if n == spec.name]
    assert kind.startswith(spec.type_words + ", default ")
    assert text.startswith(spec.doc)
    if spec.display_units:
        assert f"[{spec.display_units}]" in text
    if spec.range_words():
        assert spec.range_words() in text


def test_the_readme_parameter_table_is_the_one_docgen_writes():
    text = README.read_text(encoding="utf-8")
    assert docgen.with_table(text) == text, "README is stale: run python -m toolkit.docgen"
    rows = [line for line in docgen.parameter_table().splitlines()[2:]]
    assert [row.split("`")[1] for row in rows] == [p.name for p in PARAMETERS]


def test_docgen_rewrites_checks_and_refuses(tmp_path, capsys):
    stale = tmp_path / "README.md"
    stale.write_text(f"# x\n{docgen.BEGIN}\n| old |\n{docgen.END}\ntail\n")
    assert docgen.main(["--check", "--readme", str(stale)]) == 1
    assert "out of date" in capsys.readouterr().err
    assert docgen.main(["--readme", str(stale)]) == 0
    text = stale.read_text()
    assert "| old |" not in text and docgen.parameter_table() in text and text.endswith("tail\n")
    assert docgen.main(["--check", "--readme", str(stale)]) == 0
    stale.write_text("no markers\n")
    assert docgen.main(["--readme", str(stale)]) == 2
    assert "expected the markers" in capsys.readouterr().err
    assert stale.read_text() == "no markers\n"


# the units a parameter's kind must carry: one rule, so a new parameter cannot get
# a size in ms or a rate without "/s"
@pytest.mark.parametrize("spec", PARAMETERS, ids=lambda p: p.name)
def test_units_follow_the_kind(spec):
    units = spec.display_units
    if spec.quantity == "size":
        assert units == "B"
    elif spec.quantity == "rate":          # also avail, a rate with its own settings
        assert units == "B/s"
    elif spec.quantity == "duration":
        assert units.split("/")[0] in ("ns", "ms", "s")
        assert spec.name.endswith(("_time", "_per_gib", "_fixed", "_page", "_limit",
                                   "_overhead"))
    elif not spec.rules.numeric:           # bool, choice, text, path, policy
        assert units == ""
    if units == "%":
        assert spec.kind == "int" and spec.hi <= 100
    if spec.name.endswith("_per_gib"):
        assert units.endswith("/GiB")
    if spec.name.endswith("_time") and spec.quantity == "duration":
        assert "/" not in units


def test_display_units_read_as_people_write_them():
    index = {p.name: p for p in PARAMETERS}
    assert index["sync_time_per_gib"].display_units == "ms/GiB"
    assert index["vcpu_dirty_limit"].display_units == "MiB/s"
    assert index["max_time"].range_words() == "(0, 10^6]"
    assert index["ram_size"].range_words() == "[4 KiB, 16 TiB]"
    assert index["seed"].range_words() == "[0, 2^64 - 1]"


def test_the_api_reference_lists_the_public_api():
    api = (ROOT / "docs" / "api" / "index.rst").read_text()
    listed = set(re.findall(r"^   ([\w.]+)$", api, flags=re.M))
    listed |= {name.rpartition(".")[2] for name in listed if name.startswith("scenario.")}
    # IDEAL_HOST is a dict of zeros, documented with Scenario's host parameters
    missing = set(toolkit.__all__) - listed - {"__version__", "IDEAL_HOST"}
    assert not missing, f"not in docs/api/index.rst: {sorted(missing)}"


def test_every_docs_page_is_in_a_toctree():
    docs = ROOT / "docs"
    index = (docs / "index.md").read_text()
    pages = {p.stem for p in docs.glob("*.md")} - {"index"}
    assert all(re.search(rf"^{page}$", index, flags=re.M) for page in pages - {"notebooks"}), \
        pages
    assert re.search(r"^notebooks$", index, flags=re.M) and re.search(r"^api/index$", index,
                                                                       flags=re.M)


def test_the_version_is_declared_once():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "version" not in project["project"] and "version" in project["project"]["dynamic"]
    assert project["tool"]["setuptools"]["dynamic"]["version"] == {
        "attr": "toolkit._version.__version__"}
    newest = re.search(r"^## (\S+)", (ROOT / "CHANGELOG.md").read_text(), flags=re.M)[1]
    assert newest == toolkit.__version__
    assert project["project"]["license"] == "MIT"
    assert all((ROOT / f).is_file() for f in project["project"]["license-files"])
