# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The changelog holds every release before the version galaxy.yml is working towards, CHANGELOG.rst shows each of
them, and that version's own changes are still fragments."""
from __future__ import annotations

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
    assert sorted(releases, key=_version) == ["%d.%d.0" % (major, m) for m in range(1, minor)]
    assert list((ROOT / "changelogs" / "fragments").glob("*.yml")), "the current version's changes are fragments"


def test_changelog_rst_shows_every_release():
    releases = yaml.safe_load((ROOT / "changelogs" / "changelog.yaml").read_text())["releases"]
    rst = (ROOT / "CHANGELOG.rst").read_text()
    for version in releases:
        assert "\nv%s\n" % version in rst, version
