# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The role READMEs' variable tables are made from the argument specs, so docs and code cannot drift."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def test_readme_role_tables_match_the_argument_specs():
    res = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "role_docs.py"), "--check"], capture_output=True, text=True, check=False
    )
    assert res.returncode == 0, res.stderr


def test_every_role_has_its_table_in_its_own_readme():
    for role in sorted(p.name for p in (ROOT / "roles").iterdir() if (p / "meta" / "argument_specs.yml").exists()):
        assert f"<!-- BEGIN role-vars {role} -->" in (ROOT / "roles" / role / "README.md").read_text(), role


def test_every_default_is_documented_and_every_documented_variable_has_a_default():
    for role_dir in (ROOT / "roles").iterdir():
        defaults_file = role_dir / "defaults" / "main.yml"
        if not defaults_file.exists():
            continue
        defaults = yaml.safe_load(defaults_file.read_text()) or {}
        options = yaml.safe_load((role_dir / "meta" / "argument_specs.yml").read_text())["argument_specs"]["main"][
            "options"
        ]
        assert set(defaults) == {k for k, v in options.items() if "default" in v}, role_dir.name
        for name, value in defaults.items():
            assert options[name]["default"] == value, (role_dir.name, name)
