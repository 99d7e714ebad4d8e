# -*- coding: utf-8 -*-
# Copyright: gtsfm.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests for plugins/module_utils/cluster_config.py (GTSfM cluster.yaml validation)."""

from __future__ import annotations

import json

import pytest

from ansible_collections.gtsfm.cluster.plugins.plugin_utils._cluster_config import (
    ClusterConfigError,
    ClusterConfigSyntaxError,
    host_name_problem,
    load_cluster_config,
    normalise_cluster_config,
)

SRC = "/x/cluster.yaml"

PLAIN = """\
workers:
  - host1.cc.gatech.edu
  - host2.cc.gatech.edu
  - host3.cc.gatech.edu
"""

GPU = """\
workers:
  - host: localhost
    gpus: 1
    system_memory: "10GB"
  - host: localhost
    gpus: 1
    system_memory: "10GB"
"""


def error_of(text: str) -> str:
    with pytest.raises(ClusterConfigError) as excinfo:
        load_cluster_config(text, SRC)
    return str(excinfo.value)


# ----------------------------------------------------------------------------------------------- shapes


def test_plain_shape_keeps_order_and_first_host_is_scheduler() -> None:
    spec, warnings = load_cluster_config(PLAIN, SRC)
    assert warnings == []
    assert spec["source"] == SRC
    assert spec["scheduler"] == "host1.cc.gatech.edu"
    assert spec["workers"] == [
        {"host": "host1.cc.gatech.edu"},
        {"host": "host2.cc.gatech.edu"},
        {"host": "host3.cc.gatech.edu"},
    ]
    assert spec["worker_entries"] == ["host1.cc.gatech.edu", "host2.cc.gatech.edu", "host3.cc.gatech.edu"]
    assert spec["hosts"] == [
        {"name": "host1.cc.gatech.edu", "index": 0, "slots": 1, "slot_settings": [{}]},
        {"name": "host2.cc.gatech.edu", "index": 1, "slots": 1, "slot_settings": [{}]},
        {"name": "host3.cc.gatech.edu", "index": 2, "slots": 1, "slot_settings": [{}]},
    ]


def test_mapping_shape_repeated_localhost_is_one_host_with_two_slots() -> None:
    spec, warnings = load_cluster_config(GPU, SRC)
    assert warnings == []
    assert spec["scheduler"] == "localhost"
    assert spec["workers"] == [
        {"host": "localhost", "gpus": 1, "system_memory": "10GB"},
        {"host": "localhost", "gpus": 1, "system_memory": "10GB"},
    ]
    assert spec["worker_entries"] == spec["workers"]
    assert spec["hosts"] == [
        {
            "name": "localhost",
            "index": 0,
            "slots": 2,
            "gpus": 1,
            "system_memory": "10GB",
            "slot_settings": [{"gpus": 1, "system_memory": "10GB"}, {"gpus": 1, "system_memory": "10GB"}],
        }
    ]


def test_mixed_shape_first_occurrence_wins_and_slot_settings_are_per_occurrence() -> None:
    text = """\
workers:
  - node1
  - host: node2
    system_memory: 8000000000
  - node1
  - host: node2
    system_memory: "16GB"
"""
    spec, _warnings = load_cluster_config(text, SRC)
    assert spec["worker_entries"] == [
        "node1",
        {"host": "node2", "system_memory": 8000000000},
        "node1",
        {"host": "node2", "system_memory": "16GB"},
    ]
    assert spec["hosts"] == [
        {"name": "node1", "index": 0, "slots": 2, "slot_settings": [{}, {}]},
        {
            "name": "node2",
            "index": 1,
            "slots": 2,
            "system_memory": 8000000000,
            "slot_settings": [{"system_memory": 8000000000}, {"system_memory": "16GB"}],
        },
    ]


def test_spec_is_plain_json_data() -> None:
    spec, _warnings = load_cluster_config(GPU, SRC)
    assert json.loads(json.dumps(spec)) == spec


def test_normalise_accepts_parsed_data() -> None:
    spec, warnings = normalise_cluster_config({"workers": [{"host": "a", "gpus": 0}, "a"]}, SRC)
    assert [h["name"] for h in spec["hosts"]] == ["a"] and spec["hosts"][0]["gpus"] == 0 and warnings == []


def test_document_start_and_comments_are_fine() -> None:
    spec, _warnings = load_cluster_config("---\n# comment\nworkers: [a, b]  # inline\n", SRC)
    assert spec["scheduler"] == "a"


# ------------------------------------------------------------------------------------------- warnings


def test_unknown_worker_key_warns_with_suggestion_and_is_dropped() -> None:
    text = "workers:\n  - host: n1\n    gpu: 1\n"
    spec, warnings = load_cluster_config(text, SRC)
    assert warnings == [
        "/x/cluster.yaml: workers[0] ('n1'): unknown key 'gpu' is ignored (did you mean 'gpus'?); "
        "GTSfM reads only host, gpus, system_memory in a worker entry."
    ]
    assert spec["worker_entries"] == [{"host": "n1"}]
    assert "gpus" not in spec["hosts"][0]


def test_unknown_top_level_key_warns() -> None:
    _spec, warnings = load_cluster_config("workers: [a]\nworker_count: 3\n", SRC)
    assert warnings == [
        "/x/cluster.yaml: unknown top-level key 'worker_count' is ignored "
        "(did you mean 'workers'?); GTSfM reads only 'workers'."
    ]


@pytest.mark.parametrize("key", ["scheduler", "database"])
def test_third_shape_top_level_keys_warn_that_they_are_ignored(key: str) -> None:
    _spec, warnings = load_cluster_config(f"workers: [a]\n{key}:\n  port: 8786\n", SRC)
    assert warnings == [
        f"/x/cluster.yaml: top-level key '{key}' (from GTSfM's local_scheduler_postgres_remote_cluster.yaml shape) "
        "is ignored; only 'workers' is used."
    ]


def test_host_name_containing_gpus_is_refused_naming_gtsfms_gpu_test() -> None:
    with pytest.raises(ClusterConfigError) as err:
        load_cluster_config("workers:\n  - node1\n  - gpus-01\n", SRC)
    assert str(err.value) == (
        "/x/cluster.yaml: workers[1] ('gpus-01'): GTSfM's runner tests '\"gpus\" in worker', which is true for this "
        "host name, so it would take its single-machine GPU path instead of an SSH cluster. Fix: use a host name or "
        "IP address without 'gpus' in it (an ~/.ssh/config alias works)."
    )


def test_gpus_among_several_hosts_is_refused_naming_the_entry() -> None:
    with pytest.raises(ClusterConfigError) as err:
        normalise_cluster_config({"workers": ["a", {"host": "B", "gpus": 0}, "b"]}, SRC)
    assert str(err.value) == (
        "/x/cluster.yaml: workers[1] ('B') has 'gpus', so GTSfM's runner starts a single-machine LocalCUDACluster "
        "and never uses the other hosts: the 2 distinct hosts listed would not form one cluster. Fix: drop 'gpus' "
        "for a multi-host CPU cluster, or list only one machine for the GPU path."
    )


def test_gpus_on_a_single_host_is_gtsfms_gpu_shape_and_accepted() -> None:
    _spec, warnings = load_cluster_config(GPU, SRC)
    assert warnings == []


# ------------------------------------------------------------------------------------------ structure


def test_yaml_syntax_error_names_file_line_and_column() -> None:
    text = "workers:\n  - node1\n  - host: node2\n   gpus: 1\n"
    with pytest.raises(ClusterConfigSyntaxError) as excinfo:
        load_cluster_config(text, SRC)
    assert str(excinfo.value) == (
        "/x/cluster.yaml: YAML syntax error at line 4, column 4: expected <block end>, but found "
        "'<block mapping start>'. Fix the YAML syntax (GTSfM's cluster.yaml is a mapping with a 'workers' list)."
    )


def test_yaml_mapping_values_error() -> None:
    message = error_of("workers:\n  - a\n  b: c: d\n")
    assert message.startswith("/x/cluster.yaml: YAML syntax error at line 3, column ")
    assert "Fix the YAML syntax (GTSfM's cluster.yaml is a mapping with a 'workers' list)." in message


def test_duplicate_top_level_key_is_an_error_with_both_lines() -> None:
    message = error_of("workers:\n  - a\nworkers:\n  - b\n")
    assert message.startswith("/x/cluster.yaml: YAML syntax error at line 3, column 1: ")
    assert "found duplicate key 'workers' (first at line 1)" in message


def test_empty_file() -> None:
    assert error_of("") == (
        "/x/cluster.yaml: the file is empty. Fix: add a 'workers' list (GTSfM's cluster.yaml is a mapping "
        "with a 'workers' list), e.g. 'workers: [host1, host2]'."
    )


def test_top_level_not_a_mapping() -> None:
    assert error_of("- host1\n- host2\n") == (
        "/x/cluster.yaml: the top level must be a mapping with a 'workers' key, got a list. "
        "Fix: start the file with 'workers:' followed by one '- host' line per worker."
    )


def test_workers_missing() -> None:
    assert error_of("hosts:\n  - a\n") == (
        "/x/cluster.yaml: there is no 'workers' key (top-level keys: 'hosts'). "
        "Fix: add a 'workers' list with one entry per worker, the scheduler first."
    )


@pytest.mark.parametrize("text", ["workers:\n", "workers: []\n"])
def test_workers_empty(text: str) -> None:
    assert error_of(text) == (
        "/x/cluster.yaml: 'workers' is empty. Fix: list at least one host under 'workers:' "
        "(the first one is the scheduler)."
    )


def test_workers_mapping_explains_dask_workers_shape() -> None:
    message = error_of("scheduler:\n  port: 8786\nworkers: {}\ndatabase:\n  host: db\n")
    assert message.startswith("/x/cluster.yaml: 'workers' must be a list of hosts, got a mapping.")
    assert "local_scheduler_postgres_remote_cluster.yaml" in message
    assert "DASK_WORKERS" in message
    assert "not a static host list" in message
    assert "Fix: list the machines under 'workers:'" in message


def test_workers_string() -> None:
    assert error_of("workers: host1\n") == (
        "/x/cluster.yaml: 'workers' must be a list of hosts, got a string ('host1'). "
        "Fix: write one '- host' line per worker under 'workers:'."
    )


# -------------------------------------------------------------------------------------------- entries


@pytest.mark.parametrize(
    "entry, described",
    [
        ("12", "a number (12)"),
        ("", "null (nothing)"),
        ("[a, b]", "a list"),
        ("true", "a boolean (true)"),
    ],
)
def test_entry_neither_string_nor_mapping(entry: str, described: str) -> None:
    message = error_of(f"workers:\n  - a\n  - {entry}\n")
    assert message == (
        f"/x/cluster.yaml: workers[1]: an entry must be a host name or a mapping with a 'host' key, got {described}. "
        "Fix: write '- hostname' or '- host: hostname' (quote names YAML would read as numbers)."
    )


def test_mapping_without_host() -> None:
    assert error_of("workers:\n  - gpus: 1\n    system_memory: 10GB\n") == (
        "/x/cluster.yaml: workers[0] ({'gpus': 1, 'system_memory': '10GB'}): a worker mapping needs a 'host' key "
        "(it has 'gpus', 'system_memory'). Fix: add 'host: <host name>' to this entry, or write the entry as a "
        "plain host name."
    )


def test_mapping_host_not_a_string() -> None:
    assert error_of("workers:\n  - host: 10\n") == (
        "/x/cluster.yaml: workers[0]: 'host' must be a host name string, got a number (10). Fix: write the "
        "machine's host name or IP address (quote it if YAML reads it as something else)."
    )


@pytest.mark.parametrize(
    "value, got",
    [
        ("-1", "-1"),
        ("true", "a boolean (true)"),
        ("1.5", "a number (1.5)"),
        ('"2"', "a string ('2')"),
        ("", "null (nothing)"),
    ],
)
def test_bad_gpus(value: str, got: str) -> None:
    message = error_of(f"workers:\n  - node1\n  - node2\n  - host: node3\n    gpus: {value}\n")
    assert message == (
        f"/x/cluster.yaml: workers[2] ('node3'): 'gpus' must be a non-negative integer, got {got}. "
        "Fix: set gpus to 0 or more, or remove it."
    )


@pytest.mark.parametrize(
    "value, got",
    [
        ("[10GB]", "a list"),
        ("true", "a boolean (true)"),
        ('""', "a string ('')"),
        ("-5", "a number (-5)"),
    ],
)
def test_bad_system_memory(value: str, got: str) -> None:
    message = error_of(f"workers:\n  - host: node1\n    system_memory: {value}\n")
    assert message == (
        "/x/cluster.yaml: workers[0] ('node1'): 'system_memory' must be a size string such as \"10GB\" or a "
        f'number of bytes, got {got}. Fix: set system_memory to a value like "10GB", or remove it.'
    )


def test_system_memory_integer_is_accepted() -> None:
    spec, _warnings = load_cluster_config("workers:\n  - host: node1\n    system_memory: 1000\n", SRC)
    assert spec["hosts"][0]["system_memory"] == 1000


# ----------------------------------------------------------------------------------------- host names


@pytest.mark.parametrize(
    "name",
    [
        "localhost",
        "node1",
        "Node-01.cc.gatech.edu",
        "a",
        "1node",
        "10.0.0.1",
        "127.0.0.1",
        "::1",
        "fe80::1%eth0",
        "2001:db8::42",
        "a" * 63,
        ".".join(["a" * 63] * 3) + "." + "b" * 61,
    ],
)
def test_valid_host_names(name: str) -> None:
    assert host_name_problem(name) is None
    spec, _warnings = load_cluster_config(f'workers:\n  - "{name}"\n', SRC)
    assert spec["scheduler"] == name


@pytest.mark.parametrize(
    "name, expected",
    [
        ("", "the host name is empty. Fix: write the machine's host name or IP address, or delete the entry"),
        (
            " node1",
            "the host name has leading or trailing whitespace. "
            "Fix: remove the spaces around the name (or the quotes that keep them)",
        ),
        (
            "node1 node2",
            "the host name contains whitespace. "
            'Fix: write one host per list entry ("- host1" and "- host2" on separate lines)',
        ),
        (
            "gtsfm@node1",
            "'gtsfm@node1' carries an SSH user ('gtsfm'); GTSfM connects with the user running it. Fix: write only "
            "'node1' here and put the SSH user in the inventory option ssh_user, not in cluster.yaml",
        ),
        (
            "node1:2222",
            "'node1:2222' carries an SSH port; GTSfM passes host names to SSH as they are. Fix: write "
            "only 'node1' here and put the port in the inventory option ssh_port (or ~/.ssh/config)",
        ),
        (
            "[::1]:22",
            "'[::1]:22' carries an SSH port; GTSfM passes host names to SSH as they are. Fix: write "
            "only '::1' here and put the port in the inventory option ssh_port (or ~/.ssh/config)",
        ),
        ("[::1]", "'[::1]' puts an IPv6 address in brackets. Fix: write the address without brackets ('::1')"),
        ("1:2:3", "'1:2:3' is not a valid IPv6 address. Fix: correct the address (written without brackets or port)"),
        (
            "ssh://node1",
            "'ssh://node1' looks like a URL or a network range, not a host. "
            "Fix: write one machine's host name or IP address per entry",
        ),
        (
            "node[1:3]",
            "'node[1:3]' contains a pattern character; cluster.yaml lists hosts literally (no ranges, "
            "globs or templates). Fix: list every host on its own entry",
        ),
        (
            "{{host}}",
            "'{{host}}' contains a pattern character; cluster.yaml lists hosts literally (no ranges, "
            "globs or templates). Fix: list every host on its own entry",
        ),
        (
            "10.0.0.256",
            "'10.0.0.256' looks like an IPv4 address but is not one (four numbers 0-255 separated by "
            "dots). Fix: correct the address",
        ),
        (".node1", "'.node1' starts or ends with a dot. Fix: write the host name without leading or trailing dots"),
        ("node1.", "'node1.' starts or ends with a dot. Fix: write the host name without leading or trailing dots"),
        ("a..b", "'a..b' has an empty label (two dots in a row). Fix: remove the extra dot"),
        (
            "-node",
            "'-node' has a part ('-node') that starts or ends with '-'. "
            "Fix: correct the host name (parts must start and end with a letter or digit)",
        ),
        (
            "node-.lan",
            "'node-.lan' has a part ('node-') that starts or ends with '-'. "
            "Fix: correct the host name (parts must start and end with a letter or digit)",
        ),
        (
            "node_1",
            "'node_1' contains '_' ('_' is not allowed in host names by RFC 1123); host names may only use "
            "letters, digits, '-' and '.'. Fix: use the machine's DNS name or IP address",
        ),
        (
            "a" * 64,
            f"'{'a' * 64}' has a label of 64 characters ('{'a' * 20}...'); each dot-separated part is at most 63. "
            "Fix: use a shorter name or the IP address",
        ),
        (
            ".".join(["a" * 63] * 4) + "b",
            f"'{'a' * 40}...' is 256 characters long; host names are at most 253. "
            "Fix: use a shorter name or the IP address",
        ),
    ],
)
def test_invalid_host_names(name: str, expected: str) -> None:
    assert host_name_problem(name) == expected
    message = error_of(f'workers:\n  - ok-host\n  - "{name}"\n')
    shown = repr(name) if len(repr(name)) <= 60 else repr(name)[:57] + "..."
    assert message.startswith(f"/x/cluster.yaml: workers[1] ({shown}): ")
    assert message.endswith(expected + ".")


def test_invalid_host_in_mapping_entry_names_index_and_value() -> None:
    assert error_of("workers:\n  - host: root@node1\n    gpus: 1\n") == (
        "/x/cluster.yaml: workers[0] ('root@node1'): 'root@node1' carries an SSH user ('root'); GTSfM connects "
        "with the user running it. Fix: write only 'node1' here and put the SSH user in the inventory option "
        "ssh_user, not in cluster.yaml."
    )


def test_error_stops_at_first_problem() -> None:
    message = error_of("workers:\n  - bad_1\n  - host: n\n    gpus: -1\n")
    assert "workers[0]" in message and "gpus" not in message


# ------------------------------------------------------------------------------------------ issue 13


# Each anchor a1..a9 holds nine aliases of the one before it.
_REFS = ['"lol"'] + [", ".join([f"*a{i}"] * 9) for i in range(9)]
BOMB = "".join(f"a{i}: &a{i} [{refs}]\n" for i, refs in enumerate(_REFS))


@pytest.mark.parametrize(
    "tail", ["workers: [node1, {nohost: *a9}]\n", "workers: [node1, *a9]\n", "workers: [node1]\nextra: *a9\n"]
)
def test_an_alias_bomb_is_refused_at_once_with_its_message(tail: str) -> None:
    # Issue 13 case 5: nine chained anchors hung the inventory at 16 GB RSS.
    text = BOMB + tail
    assert len(text) < 700
    with pytest.raises(ClusterConfigError, match=r"YAML aliases \(\*name\) expand to more than 1000000 values"):
        load_cluster_config(text, "/x/cluster.yaml")


def test_a_few_honest_aliases_are_fine() -> None:
    text = "slot: &s {host: node1, system_memory: 10GB}\nworkers: [*s, *s, {host: node2}]\n"
    spec, _warnings = load_cluster_config(text, "/x/cluster.yaml")
    assert [h["name"] for h in spec["hosts"]] == ["node1", "node2"] and spec["hosts"][0]["slots"] == 2


def test_error_messages_show_big_entries_in_bounded_form() -> None:
    entry = {f"nohost{i}": list(range(1000)) for i in range(1000)}
    data = {"workers": ["node1", entry]}
    with pytest.raises(ClusterConfigError) as info:
        normalise_cluster_config(data, "/x/cluster.yaml")
    assert len(str(info.value)) < 600


def test_host_names_differing_only_by_case_are_one_host_with_a_warning() -> None:
    # Issue 13 case 11: Node1 and node1 became two inventory hosts, their slots split.
    spec, warnings = load_cluster_config("workers: [node1, Node1, node2]\n", "/x/cluster.yaml")
    assert [(h["name"], h["slots"]) for h in spec["hosts"]] == [("node1", 2), ("node2", 1)]
    assert any(
        "workers[1] ('Node1') names the same host as workers[0] ('node1')" in w and "Fix:" in w for w in warnings
    ), warnings


@pytest.mark.parametrize("name", ["0x7f.1", "0x7f000001", "0X7F.0.0.1", "0x0a.0x00.0x00.0x01"])
def test_numeric_names_resolvers_read_as_addresses_are_refused(name: str) -> None:
    problem = host_name_problem(name)
    assert problem is not None and "inet_aton" in problem and "Fix:" in problem


def test_a_host_listed_more_often_than_sshd_admits_logins_at_once_is_warned_about() -> None:
    # The scheduler's host takes one login more (the scheduler): 10 listings are 11 logins at once.
    text = "workers:\n" + "  - a\n" * 10 + "  - b\n" * 10 + "  - c\n" * 11
    _spec, warnings = load_cluster_config(text, SRC)
    assert len(warnings) == 2, warnings
    assert warnings[0].startswith("/x/cluster.yaml: 'a' is listed 10 times, so GTSfM's runner opens 11 SSH logins")
    assert "MaxStartups" in warnings[0] and "list it at most 9 times" in warnings[0]
    assert warnings[1].startswith("/x/cluster.yaml: 'c' is listed 11 times") and "at most 10 times" in warnings[1]
