# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The changelog holds every release before the version galaxy.yml is working towards, CHANGELOG.rst shows each of
them, and that version's own changes are still fragments."""

from __future__ import annotations

import ast
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def _version(text: str) -> tuple:
    return tuple(int(part) for part in text.split("."))


def test_every_earlier_release_is_in_the_changelog_and_the_current_one_is_not():
    current = yaml.safe_load((ROOT / "galaxy.yml").read_text())["version"]
    releases = yaml.safe_load((ROOT / "changelogs" / "changelog.yaml").read_text())["releases"]
    assert current not in releases
    assert all(_version(v) < _version(current) for v in releases), sorted(releases)
    major, minor = _version(current)[:2]
    # Every minor line before the current one (this collection has shipped only 0.x releases, each a minor bump).
    assert sorted(releases, key=_version) == [f"{major}.{m}.0" for m in range(1, minor)]
    assert list((ROOT / "changelogs" / "fragments").glob("*.yml")), "the current version's changes are fragments"


def test_changelog_rst_shows_every_release():
    releases = yaml.safe_load((ROOT / "changelogs" / "changelog.yaml").read_text())["releases"]
    rst = (ROOT / "CHANGELOG.rst").read_text()
    for version in releases:
        assert f"\nv{version}\n" in rst, version


def _plugin_docs() -> dict:
    """{(kind, name): (DOCUMENTATION, RETURN)} for every module, inventory plugin and filter, read as plain YAML."""
    docs = {}
    for kind in ("modules", "inventory"):
        for path in sorted((ROOT / "plugins" / kind).glob("*.py")):
            found = {}
            for node in ast.parse(path.read_text()).body:
                if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", None) in ("DOCUMENTATION", "RETURN"):
                    found[node.targets[0].id] = yaml.safe_load(node.value.value) or {}
            docs[(kind, path.stem)] = (found.get("DOCUMENTATION", {}), found.get("RETURN", {}))
    for path in sorted((ROOT / "plugins" / "filter").glob("*.yml")):
        data = yaml.safe_load(path.read_text())
        docs[("filter", path.stem)] = (data["DOCUMENTATION"], data.get("RETURN", {}))
    return docs


def _marks(node, where: str):
    """Every (where, version_added) below node: options, suboptions, return values and what they contain."""
    if isinstance(node, dict):
        if "version_added" in node:
            yield where, str(node["version_added"])
        for key, value in node.items():
            if key != "version_added":
                yield from _marks(value, f"{where}.{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _marks(value, f"{where}[{i}]")


def test_every_version_added_is_a_release_or_the_pending_version():
    current = yaml.safe_load((ROOT / "galaxy.yml").read_text())["version"]
    known = set(yaml.safe_load((ROOT / "changelogs" / "changelog.yaml").read_text())["releases"]) | {current}
    docs = _plugin_docs()
    assert len(docs) > 20, sorted(docs)
    wrong = []
    for (kind, name), (documentation, returns) in docs.items():
        assert "version_added" in documentation, f"{kind}/{name} has no version_added"
        for where, version in [*_marks(documentation, "DOCUMENTATION"), *_marks(returns, "RETURN")]:
            if version not in known:
                wrong.append(f"{kind}/{name} {where}: {version}")
    # Doc fragments: options they add to every module that uses them carry their own version_added.
    for path in sorted((ROOT / "plugins" / "doc_fragments").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Assign)
                and isinstance(node.value, ast.Constant)
                and isinstance(node.value.value, str)
            ):
                fragment = f"doc_fragments/{path.stem}.{getattr(node.targets[0], 'id', '?')}"
                for where, version in _marks(yaml.safe_load(node.value.value) or {}, fragment):
                    if version not in known:
                        wrong.append(f"{where}: {version}")
    assert not wrong, f"version_added must be one of {sorted(known, key=_version)}: {wrong}"


def test_each_plugin_is_new_in_the_release_whose_changelog_lists_it():
    """version_added of a module or plugin is the release that lists it as new, and every release lists its own."""
    releases = yaml.safe_load((ROOT / "changelogs" / "changelog.yaml").read_text())["releases"]
    listed = {}
    for version, release in releases.items():
        for entry in release.get("modules", []):
            listed[("modules", entry["name"])] = version
        for kind, entries in release.get("plugins", {}).items():
            for entry in entries:
                listed[(kind, entry["name"])] = version
    for (kind, name), (documentation, _returns) in _plugin_docs().items():
        added = str(documentation["version_added"])
        if added in releases:
            assert listed.get((kind, name)) == added, (
                f"{kind}/{name}: version_added {added}, changelog {listed.get((kind, name))}"
            )
        else:
            assert (kind, name) not in listed, f"{kind}/{name}: version_added {added}, changelog {listed[(kind, name)]}"
