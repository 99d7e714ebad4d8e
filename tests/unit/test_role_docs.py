# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""README's role variable tables are made from the argument specs, so docs and code cannot drift."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def test_readme_role_tables_match_the_argument_specs():
    res = subprocess.run([sys.executable, str(ROOT / "scripts" / "role_docs.py"), "--check"], capture_output=True,
                         text=True, check=False)
    assert res.returncode == 0, res.stderr


def test_every_role_has_its_table_in_the_readme():
    readme = (ROOT / "README.md").read_text()
    for role in sorted(p.name for p in (ROOT / "roles").iterdir() if (p / "meta" / "argument_specs.yml").exists()):
        assert "<!-- BEGIN role-vars %s -->" % role in readme, role


def test_every_default_is_documented_and_every_documented_variable_has_a_default():
    for role_dir in (ROOT / "roles").iterdir():
        defaults_file = role_dir / "defaults" / "main.yml"
        if not defaults_file.exists():
            continue
        defaults = yaml.safe_load(defaults_file.read_text()) or {}
        options = yaml.safe_load((role_dir / "meta" / "argument_specs.yml").read_text())["argument_specs"]["main"][
            "options"]
        assert set(defaults) == {k for k, v in options.items() if "default" in v}, role_dir.name
        for name, value in defaults.items():
            assert options[name]["default"] == value, (role_dir.name, name)


def test_the_claimed_ansible_core_floor_is_the_version_ci_tests():
    # Issue 12: runtime.yml claimed >=2.16.0 while the plugin needs 2.19's trusted_as_template and CI ran 2.19 only.
    floor = yaml.safe_load((ROOT / "meta" / "runtime.yml").read_text())["requires_ansible"]
    pinned = next(line.split("==")[1].strip() for line in (ROOT / "tests" / "requirements.txt").read_text().splitlines()
                  if line.startswith("ansible-core=="))
    assert floor == ">=%s.0" % ".".join(pinned.split(".")[:2]), (floor, pinned)
    galaxy = yaml.safe_load((ROOT / "galaxy.yml").read_text())
    for role_dir in (ROOT / "roles").iterdir():
        meta = yaml.safe_load((role_dir / "meta" / "main.yml").read_text())
        assert meta["galaxy_info"]["min_ansible_version"] == ".".join(pinned.split(".")[:2]), role_dir.name
    assert galaxy["version"]
