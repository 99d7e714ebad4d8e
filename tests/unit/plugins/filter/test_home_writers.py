# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from ansible.errors import AnsibleFilterError

from ansible_collections.gtsfm.cluster.plugins.filter.home_writers import home_writers
from ansible_collections.gtsfm.cluster.plugins.module_utils.managed_block import KNOWN_HOSTS_BLOCK

ROOT = Path(__file__).resolve().parents[4]


def test_first_host_of_each_home_writes_it():
    ids = {"node1": "a", "node2": "b", "node3": "a", "node4": "b", "node5": "c"}
    assert home_writers(ids) == {
        "node1": "node1",
        "node2": "node2",
        "node3": "node1",
        "node4": "node2",
        "node5": "node5",
    }


def test_a_home_without_an_id_is_a_home_of_its_own():
    assert home_writers({"node1": None, "node2": None, "node3": "x"}) == {
        "node1": "node1",
        "node2": "node2",
        "node3": "node3",
    }


def test_bad_input_is_a_filter_error():
    with pytest.raises(AnsibleFilterError, match="expects a mapping"):
        home_writers(["node1"])


def test_block_names_agree_between_role_and_module():
    names = yaml.safe_load((ROOT / "roles/known_hosts/vars/main.yml").read_text())
    assert names["_known_hosts_block"] == KNOWN_HOSTS_BLOCK
