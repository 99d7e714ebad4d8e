# -*- coding: utf-8 -*-
# Copyright: gtsfm.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The stage (roles/cluster_facts) takes explicit inputs: site.yml passes them; it reads no other role's variables."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
OTHER_ROLES = sorted(p.name for p in (ROOT / "roles").iterdir() if p.is_dir() and p.name != "cluster_facts")


def _role_var(role: str, name: str):
    return yaml.safe_load((ROOT / "roles" / role / "vars" / "main.yml").read_text())[name]


def _site_play() -> dict:
    plays = yaml.safe_load((ROOT / "playbooks" / "site.yml").read_text())
    return next(p for p in plays if "cluster_facts_files" in (p.get("vars") or {}))


def test_site_yml_passes_the_stage_each_roles_file_with_the_roles_own_marker():
    play = _site_play()
    files = {f.get("marker"): f["path"] for f in play["vars"]["cluster_facts_files"]}
    assert files == {
        _role_var("ssh_mesh", "_ssh_mesh_block"): "{{ ssh_mesh_authorized_keys_path }}",
        _role_var("known_hosts", "_known_hosts_block"): "{{ known_hosts_path }}",
        # bashrc_block decides from the whole text: no block, the text.
        None: "{{ bashrc_init_path }}",
    }
    assert [f.get("text", False) for f in play["vars"]["cluster_facts_files"]] == [False, False, True]
    assert play["vars"]["cluster_facts_keypair"] == "{{ ssh_mesh_key_path }}"
    assert play["vars"]["cluster_facts_port"] == "{{ known_hosts_port }}"
    assert play["vars"]["cluster_facts_host_key_types"] == "{{ known_hosts_key_types }}"
    assert play["vars"]["conda_env_checkout_keep"] == "{{ model_weights_files }}"
    # The stage runs first in that play, so its one read serves every role after it.
    assert play["roles"][0]["role"] == "gtsfm.cluster.cluster_facts"


def test_the_stage_defaults_match_known_hosts_so_a_play_without_site_yml_reads_what_known_hosts_writes():
    stage = yaml.safe_load((ROOT / "roles" / "cluster_facts" / "defaults" / "main.yml").read_text())
    known = yaml.safe_load((ROOT / "roles" / "known_hosts" / "defaults" / "main.yml").read_text())
    assert stage["cluster_facts_port"] == known["known_hosts_port"]
    assert stage["cluster_facts_host_key_types"] == known["known_hosts_key_types"]


def test_the_stage_reads_no_other_roles_variables_and_no_variable_name_registry():
    other = re.compile(rf"\b_{{0,2}}(?:{'|'.join(OTHER_ROLES)})_[a-z0-9_]+")
    for path in sorted((ROOT / "roles" / "cluster_facts").rglob("*.yml")):
        # What runs: the YAML without its comments; of the argument specs, only the defaults (the descriptions say
        # which variable site.yml passes).
        lines = [re.sub(r"(^|\s)#.*", "", line) for line in path.read_text().splitlines()]
        if path.parent.name == "meta":
            lines = [line for line in lines if line.strip().startswith("default:")]
        text = "\n".join(lines)
        assert "varnames" not in text, path
        assert not other.findall(text), (path, other.findall(text))
    assert not (ROOT / "roles" / "cluster_facts" / "vars" / "main.yml").exists()


def test_conda_env_reads_no_model_weights_variable():
    for name in ("defaults/main.yml", "meta/argument_specs.yml"):
        text = (ROOT / "roles" / "conda_env" / name).read_text()
        assert not re.search(r"\{\{[^}]*model_weights_", text), name
