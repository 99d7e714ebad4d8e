# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

import base64
import hashlib
import hmac

import pytest

from ansible_collections.gtsfm.cluster.plugins.module_utils.known_hosts import (
    hash_name,
    hashed_matches,
    host_pattern,
    normalise_key,
    render_lines,
)

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"
KEY2 = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMsrZ9wasNSaZu8Bfob5PDjBGpuuTRY1ARKnQcEO0aNS"


def test_host_pattern_brackets_other_ports():
    assert host_pattern("node1") == "node1"
    assert host_pattern("node1", 2222) == "[node1]:2222"


def test_hash_name_is_openssh_format():
    salt = b"s" * 20
    digest = hmac.new(salt, b"node1", hashlib.sha1).digest()
    assert hash_name("node1", salt) == f"|1|{base64.b64encode(salt).decode()}|{base64.b64encode(digest).decode()}"
    assert hashed_matches(hash_name("node1"), "node1")
    assert not hashed_matches(hash_name("node1"), "node2")
    assert not hashed_matches("node1", "node1")


def test_normalise_key_drops_comment_and_rejects_junk():
    assert normalise_key(KEY + " root@node1") == KEY
    with pytest.raises(ValueError, match="not an SSH public key"):
        normalise_key("hello world")


def test_plain_lines_one_per_key_with_all_names():
    lines = render_lines([{"names": ["node1", "10.0.0.1", "node1"], "keys": [KEY, KEY2, KEY]}], False)
    assert lines == ["node1,10.0.0.1 " + KEY, "node1,10.0.0.1 " + KEY2]


def test_hashed_lines_are_reused_so_reruns_change_nothing():
    entries = [{"names": ["node1", "node1.lab"], "keys": [KEY]}]
    first = render_lines(entries, True)
    assert len(first) == 2 and all(line.startswith("|1|") for line in first)
    assert render_lines(entries, True, first) == first


def test_changed_key_gets_a_new_line():
    first = render_lines([{"names": ["node1"], "keys": [KEY]}], True)
    second = render_lines([{"names": ["node1"], "keys": [KEY2]}], True, first)
    assert second != first and second[0].endswith(KEY2)
