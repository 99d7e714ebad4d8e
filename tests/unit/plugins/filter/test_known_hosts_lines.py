# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.gtsfm.cluster.plugins.filter.known_hosts_lines import FilterModule, known_hosts_lines

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"
ENTRIES = [{"names": ["node1", "10.0.0.1"], "keys": [KEY]}]


def test_registered_under_its_name():
    assert FilterModule().filters()["known_hosts_lines"] is known_hosts_lines


def test_plain_lines_match_what_the_module_writes():
    assert known_hosts_lines(ENTRIES) == ["node1,10.0.0.1 " + KEY]


def test_hashed_lines_equal_the_previous_block_when_nothing_changes():
    first = known_hosts_lines(ENTRIES, True)
    assert known_hosts_lines(ENTRIES, True, first) == first
    assert known_hosts_lines(ENTRIES, True, None) != first  # new salts without a previous block


def test_bad_key_is_a_filter_error():
    with pytest.raises(AnsibleFilterError, match="not an SSH public key"):
        known_hosts_lines([{"names": ["n"], "keys": ["junk"]}])
