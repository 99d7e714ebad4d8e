# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""galaxy.yml's links lead to this collection (its repository, docs and tracker), not to GTSfM's."""

from __future__ import annotations

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def test_every_link_points_into_the_collections_own_repository():
    galaxy = yaml.safe_load((ROOT / "galaxy.yml").read_text())
    repository = galaxy["repository"]
    assert repository.rstrip("/").endswith(f"/{galaxy['namespace']}.{galaxy['name']}")
    assert galaxy["homepage"] == repository
    assert galaxy["documentation"].startswith(repository + "/")
    assert galaxy["issues"] == repository + "/issues"
