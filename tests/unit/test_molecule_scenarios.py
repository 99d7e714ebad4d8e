# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The molecule scenarios sit where molecule looks in a collection, over one shared base config, and every path they
name resolves from where it is written (the scenarios moved one level down once; a stale ../ fails only on a bed)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

# The core matrix's venvs hold ansible-core and pytest only: molecule's own checks run in the tool chain's venv.
pytest.importorskip("molecule")
from molecule import util as molecule_util  # noqa: E402
from molecule.constants import MOLECULE_COLLECTION_GLOB  # noqa: E402
from molecule.model import schema_v3  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
BASE = ROOT / "extensions" / "molecule"
SCENARIOS = sorted(p.parent for p in BASE.glob("*/molecule.yml"))
# ansible.builtin.script's cmd, and the import and vars_files paths, are read relative to the playbook's directory.
RELATIVE = re.compile(r"^\.\./")


def _load(path: Path) -> dict:
    return yaml.safe_load(path.read_text()) or {}


def _merged(scenario: Path) -> dict:
    # What molecule does: the base first, the scenario's molecule.yml merged over it.
    return molecule_util.merge_dicts(_load(BASE / "config.yml"), _load(scenario / "molecule.yml"))


@pytest.fixture
def in_root(monkeypatch):
    monkeypatch.chdir(ROOT)
    molecule_util.get_collection_metadata.cache_clear()
    molecule_util.get_effective_molecule_glob.cache_clear()
    yield
    molecule_util.get_collection_metadata.cache_clear()
    molecule_util.get_effective_molecule_glob.cache_clear()


def test_molecule_finds_the_scenarios_in_extensions_without_the_migration_warning(in_root, caplog):
    assert not (ROOT / "molecule").exists()
    assert molecule_util.get_effective_molecule_glob() == MOLECULE_COLLECTION_GLOB
    assert "should migrate" not in caplog.text
    assert [p.name for p in SCENARIOS] == [
        "default",
        "model_weights",
        "ssh_mesh",
        "ssh_mesh_shared_home",
        "ssh_mesh_single",
    ]


def test_molecule_picks_up_the_shared_base_config(in_root):
    assert molecule_util.lookup_config_file(".config/molecule/config.yml") == str(BASE / "config.yml")


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda p: p.name)
def test_each_scenario_over_the_base_is_valid_and_names_a_bed_of_its_own(scenario):
    config = _merged(scenario)
    assert schema_v3.validate(config) == []
    # The bed's name becomes a DNS domain on the bed (scripts/testbed): no underscores.
    assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", config["ansible"]["env"]["GTSFM_TESTBED_NAME"])
    assert config["scenario"]["test_sequence"][0] == config["scenario"]["test_sequence"][-1] == "destroy"


def test_no_two_scenarios_share_a_bed():
    names = [_merged(s)["ansible"]["env"]["GTSFM_TESTBED_NAME"] for s in SCENARIOS]
    assert len(set(names)) == len(names), names


def test_scenario_files_only_say_what_differs_from_the_base():
    base = _load(BASE / "config.yml")
    for scenario in SCENARIOS:
        own = _load(scenario / "molecule.yml")
        for key in ("prerun", "driver", "verifier"):
            assert key not in own, (scenario.name, key)
        assert "cfg" not in own.get("ansible", {}), scenario.name
        assert "provisioner" not in own, scenario.name  # the legacy spelling of the ansible: section
        assert own.get("platforms", []) != base["platforms"], scenario.name


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda p: p.name)
def test_every_playbook_a_scenario_runs_exists(scenario):
    config = _merged(scenario)
    sequence = set(config["scenario"]["test_sequence"]) | {"converge"}
    playbooks = config["ansible"].get("playbooks", {})
    for step in ("create", "destroy", "converge", "verify"):
        assert step in sequence
        path = scenario / playbooks.get(step, step + ".yml")
        assert path.is_file(), (scenario.name, step, path)
    # A scenario without a prepare playbook skips prepare: only one that names none may lack the file.
    if "prepare" in playbooks:
        assert (scenario / playbooks["prepare"]).is_file(), scenario.name


def _relative_references(playbook: Path):
    for play in _load(playbook) if isinstance(_load(playbook), list) else []:
        target = play.get("ansible.builtin.import_playbook")
        if target and RELATIVE.match(target):
            yield target
        for entry in play.get("vars_files", []):
            if RELATIVE.match(entry):
                yield entry
        for task in play.get("tasks", []):
            cmd = (task.get("ansible.builtin.script") or {}).get("cmd", "")
            if RELATIVE.match(cmd):
                yield cmd.split()[0]


def test_every_relative_path_in_the_scenarios_resolves():
    playbooks = sorted(
        p
        for p in BASE.rglob("*.yml")
        if p.name not in ("molecule.yml", "config.yml")
        and "gtsfm_checkout" not in p.parts
        and "vars" not in p.parent.parts
    )
    assert playbooks
    checked = 0
    for playbook in playbooks:
        for ref in _relative_references(playbook):
            assert (playbook.parent / ref).exists(), f"{playbook.relative_to(ROOT)}: {ref} does not resolve"
            checked += 1
    assert checked >= 10
