# -*- coding: utf-8 -*-
# Copyright: gtsfm.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests for the gtsfm.cluster.cluster_yaml inventory plugin.

The plugin is loaded through ansible-core's ``inventory_loader`` by its FQCN (so its option definitions and
documentation fragments are real) and run against a real ``InventoryData`` and ``DataLoader``.
"""

from __future__ import annotations

import sys
import typing as t
from pathlib import Path

import pytest
import yaml
from ansible.errors import AnsibleError, AnsibleParserError
from ansible.inventory.data import InventoryData
from ansible.parsing.dataloader import DataLoader
from ansible.plugins.loader import inventory_loader
from ansible.template import Templar

FIXTURES = Path(__file__).resolve().parent / "fixtures"
FQCN = "gtsfm.cluster.cluster_yaml"
ENV_VARS = (
    "GTSFM_CLUSTER_SSH_USER",
    "GTSFM_CLUSTER_SSH_PORT",
    "GTSFM_CLUSTER_SSH_PRIVATE_KEY_FILE",
    "ANSIBLE_INVENTORY_CACHE",
    "ANSIBLE_CACHE_PLUGIN",
    "ANSIBLE_INVENTORY_CACHE_PLUGIN",
    "ANSIBLE_CACHE_PLUGIN_CONNECTION",
    "ANSIBLE_INVENTORY_CACHE_CONNECTION",
)


class RecordingDisplay:
    """Stands in for ansible's Display: records warnings and errors, ignores verbose output."""

    def __init__(self) -> None:
        self.warnings: list[str] = []
        self.errors: list[str] = []

    def warning(self, msg: str, *args: t.Any, **kwargs: t.Any) -> None:
        self.warnings.append(msg)

    def error(self, msg: str, *args: t.Any, **kwargs: t.Any) -> None:
        self.errors.append(msg)

    def __getattr__(self, name: str) -> t.Callable[..., None]:
        return lambda *args, **kwargs: None


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ENV_VARS:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def plugin() -> t.Any:
    instance = inventory_loader.get(FQCN)
    assert instance is not None, f"the collection loader did not find {FQCN}"
    instance.display = RecordingDisplay()
    return instance


def plugin_module(instance: t.Any) -> t.Any:
    return sys.modules[type(instance).__module__]


def parse(instance: t.Any, path: Path, cache: bool = True) -> InventoryData:
    inventory = InventoryData()
    instance.parse(inventory, DataLoader(), str(path), cache=cache)
    return inventory


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def config(
    tmp_path: Path, body: str, cluster: str | None = "workers: [node1, node2, node3]\n", name: str = "inventory.yml"
) -> Path:
    """Write a plugin config (and, unless cluster is None, a cluster.yaml beside it)."""
    if cluster is not None:
        write(tmp_path / "cluster.yaml", cluster)
    return write(tmp_path / name, "plugin: gtsfm.cluster.cluster_yaml\n" + body)


def host_vars(inventory: InventoryData, name: str) -> dict[str, t.Any]:
    return dict(inventory.get_host(name).get_vars())


def group_hosts(inventory: InventoryData, group: str) -> list[str]:
    return [host.name for host in inventory.groups[group].get_hosts()]


# ------------------------------------------------------------------------------------------ verify_file


@pytest.mark.parametrize(
    "name, expected",
    [
        ("inventory.yml", True),  # plugin config naming this plugin
        ("cluster.yaml", True),  # GTSfM's own cluster.yaml
        ("cluster_gpu.yaml", True),
        ("unrelated.yml", False),  # an ordinary YAML inventory ('workers:' only nested)
        ("other_plugin.yml", False),  # another plugin's config
    ],
)
def test_verify_file_fixtures(plugin: t.Any, name: str, expected: bool) -> None:
    assert plugin.verify_file(str(FIXTURES / name)) is expected


@pytest.mark.parametrize("suffix", [".txt", ".json", ".ini", ""])
def test_verify_file_rejects_other_extensions(plugin: t.Any, tmp_path: Path, suffix: str) -> None:
    path = write(tmp_path / ("cluster" + suffix), (FIXTURES / "cluster.yaml").read_text(encoding="utf-8"))
    assert plugin.verify_file(str(path)) is False


@pytest.mark.parametrize(
    "text, expected",
    [
        ("plugin: cluster_yaml\ncluster_config: c.yaml\n", True),
        ('plugin: "gtsfm.cluster.cluster_yaml"  # quoted\n', True),
        ("---\nplugin: 'gtsfm.cluster.cluster_yaml'\n", True),
        ("plugin: ansible.builtin.constructed\nworkers: [a]\n", False),
        ("plugin:\nworkers: [a]\n", False),
        ('"workers":\n  - a\n', True),
        ("workers:\n# a comment\n\n- a\n", True),
        ("workers: [a, b]  # flow\n", True),
        ("# workers:\nall:\n  hosts: {a: {}}\n", False),
        # Issue 12: an ordinary YAML inventory with a group named workers is not ours.
        ("workers:\n  hosts:\n    web1:\n", False),
        ("workers:\n  children:\n    gpu:\n", False),
        ("workers: {}\n", False),
        ("scheduler:\n  port: 8786\nworkers: {}\n", True),
        ("", False),
    ],
)
def test_verify_file_peeks_at_text(plugin: t.Any, tmp_path: Path, text: str, expected: bool) -> None:
    assert plugin.verify_file(str(write(tmp_path / "x.yml", text))) is expected


def test_verify_file_missing_file(plugin: t.Any, tmp_path: Path) -> None:
    assert plugin.verify_file(str(tmp_path / "nope.yml")) is False


# -------------------------------------------------------------------------------- groups and variables


def test_plain_cluster_yaml_given_directly(plugin: t.Any) -> None:
    inventory = parse(plugin, FIXTURES / "cluster.yaml")
    hosts = ["host1.cc.gatech.edu", "host2.cc.gatech.edu", "host3.cc.gatech.edu"]
    assert group_hosts(inventory, "gtsfm_workers") == hosts
    assert group_hosts(inventory, "gtsfm_scheduler") == hosts[:1]
    assert sorted(group_hosts(inventory, "gtsfm_cluster")) == sorted(hosts)
    assert sorted(g.name for g in inventory.groups["gtsfm_cluster"].child_groups) == [
        "gtsfm_scheduler",
        "gtsfm_workers",
    ]

    first = {k: v for k, v in host_vars(inventory, hosts[0]).items() if k.startswith("gtsfm_")}
    assert first == {
        "gtsfm_is_scheduler": True,
        "gtsfm_worker_slots": 1,
        "gtsfm_worker_slot_settings": [{}],
        "gtsfm_cluster_index": 0,
    }
    third = host_vars(inventory, hosts[2])
    assert third["gtsfm_is_scheduler"] is False
    assert third["gtsfm_cluster_index"] == 2
    for absent in ("gtsfm_gpus", "gtsfm_system_memory", "ansible_user", "ansible_port", "ansible_ssh_private_key_file"):
        assert absent not in third

    cluster_vars = inventory.groups["gtsfm_cluster"].get_vars()
    assert cluster_vars == {
        "gtsfm_cluster_config": str(FIXTURES / "cluster.yaml"),
        "gtsfm_cluster_workers": hosts,
        "gtsfm_cluster_hosts": hosts,
    }
    assert plugin.display.warnings == [] and plugin.display.errors == []


def test_mapping_shape_repeated_localhost(plugin: t.Any) -> None:
    inventory = parse(plugin, FIXTURES / "cluster_gpu.yaml")
    assert group_hosts(inventory, "gtsfm_workers") == ["localhost"]
    assert group_hosts(inventory, "gtsfm_scheduler") == ["localhost"]
    variables = host_vars(inventory, "localhost")
    assert variables["gtsfm_is_scheduler"] is True
    assert variables["gtsfm_worker_slots"] == 2
    assert variables["gtsfm_worker_slot_settings"] == [
        {"gpus": 1, "system_memory": "10GB"},
        {"gpus": 1, "system_memory": "10GB"},
    ]
    assert variables["gtsfm_cluster_index"] == 0
    assert variables["gtsfm_gpus"] == 1
    assert variables["gtsfm_system_memory"] == "10GB"
    assert inventory.groups["gtsfm_cluster"].get_vars()["gtsfm_cluster_workers"] == [
        {"host": "localhost", "gpus": 1, "system_memory": "10GB"},
        {"host": "localhost", "gpus": 1, "system_memory": "10GB"},
    ]
    assert inventory.groups["gtsfm_cluster"].get_vars()["gtsfm_cluster_hosts"] == ["localhost"]


def test_mixed_shape_keeps_strings_and_mappings(plugin: t.Any, tmp_path: Path) -> None:
    path = write(tmp_path / "cluster.yaml", "workers:\n  - node1\n  - host: node2\n    system_memory: 8GB\n  - node1\n")
    inventory = parse(plugin, path)
    assert inventory.groups["gtsfm_cluster"].get_vars()["gtsfm_cluster_workers"] == [
        "node1",
        {"host": "node2", "system_memory": "8GB"},
        "node1",
    ]
    assert host_vars(inventory, "node1")["gtsfm_worker_slots"] == 2
    assert host_vars(inventory, "node1")["gtsfm_worker_slot_settings"] == [{}, {}]
    assert host_vars(inventory, "node2")["gtsfm_cluster_index"] == 1
    assert host_vars(inventory, "node2")["gtsfm_system_memory"] == "8GB"
    assert "gtsfm_gpus" not in host_vars(inventory, "node2")


def test_plugin_config_fixture_sets_connection_options(plugin: t.Any) -> None:
    inventory = parse(plugin, FIXTURES / "inventory.yml")
    variables = host_vars(inventory, "host2.cc.gatech.edu")
    assert variables["ansible_user"] == "gtsfm"
    assert variables["ansible_port"] == 2222
    # relative to the config file's directory, not the current directory
    assert variables["ansible_ssh_private_key_file"] == str(FIXTURES / "keys" / "id_ed25519")
    assert variables["ansible_python_interpreter"] == "/usr/bin/python3"
    assert inventory.groups["gtsfm_cluster"].get_vars()["gtsfm_cluster_config"] == str(FIXTURES / "cluster.yaml")


def test_examples_are_one_plugin_config_that_works(plugin: t.Any, tmp_path: Path) -> None:
    # One document: ansible-core 2.16's yamllint sanity test refuses more (yaml.safe_load does too).
    example = yaml.safe_load(plugin_module(plugin).EXAMPLES)
    example["cache_connection"] = str(tmp_path / "cache")
    write(tmp_path / "cluster.yaml", "workers:\n  - node1\n  - node1\n  - node2\n")
    inventory = parse(plugin, write(tmp_path / "inv.yml", yaml.safe_dump(example)))
    assert host_vars(inventory, "node2")["ansible_port"] == 22
    assert group_hosts(inventory, "gtsfm_multi_slot") == ["node1"]
    assert group_hosts(inventory, "gpus_none") == ["node1", "node2"]
    assert group_hosts(inventory, "role_worker") == ["node2"]
    # GTSfM's GPU shape: one machine, listed once per GPU.
    write(tmp_path / "cluster.yaml", "workers:\n  - host: gpu1\n    gpus: 1\n  - host: gpu1\n    gpus: 1\n")
    inventory = parse(plugin, write(tmp_path / "inv.yml", yaml.safe_dump(example)))
    assert group_hosts(inventory, "gpus_1") == ["gpu1"] and group_hosts(inventory, "role_scheduler") == ["gpu1"]
    assert (tmp_path / "cache").is_dir()


def test_short_plugin_name_is_accepted(plugin: t.Any, tmp_path: Path) -> None:
    write(tmp_path / "cluster.yaml", "workers: [a]\n")
    path = write(tmp_path / "inv.yml", "plugin: cluster_yaml\ncluster_config: cluster.yaml\n")
    assert plugin.verify_file(str(path))
    assert group_hosts(parse(plugin, path), "gtsfm_scheduler") == ["a"]


def test_cluster_config_relative_to_config_dir_not_cwd(
    plugin: t.Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path / "conf" / "sub" / "cluster.yaml", "workers: [from-config-dir]\n")
    write(tmp_path / "sub" / "cluster.yaml", "workers: [from-cwd]\n")
    path = write(
        tmp_path / "conf" / "inv.yml", "plugin: gtsfm.cluster.cluster_yaml\ncluster_config: sub/cluster.yaml\n"
    )
    monkeypatch.chdir(tmp_path)
    inventory = parse(plugin, path)
    assert group_hosts(inventory, "gtsfm_workers") == ["from-config-dir"]
    assert inventory.groups["gtsfm_cluster"].get_vars()["gtsfm_cluster_config"] == str(
        tmp_path / "conf" / "sub" / "cluster.yaml"
    )


def test_cluster_config_tilde_is_expanded(plugin: t.Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    write(tmp_path / "home" / "gtsfm" / "cluster.yaml", "workers: [tilde-host]\n")
    path = config(tmp_path, "cluster_config: ~/gtsfm/cluster.yaml\n", cluster=None)
    assert group_hosts(parse(plugin, path), "gtsfm_workers") == ["tilde-host"]


def test_options_absent_set_no_connection_vars(plugin: t.Any, tmp_path: Path) -> None:
    inventory = parse(plugin, config(tmp_path, "cluster_config: cluster.yaml\n"))
    variables = host_vars(inventory, "node1")
    for name in ("ansible_user", "ansible_port", "ansible_ssh_private_key_file", "ansible_python_interpreter"):
        assert name not in variables


def test_options_from_environment_in_raw_mode(plugin: t.Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GTSFM_CLUSTER_SSH_USER", "envuser")
    monkeypatch.setenv("GTSFM_CLUSTER_SSH_PORT", "2200")
    monkeypatch.setenv("GTSFM_CLUSTER_SSH_PRIVATE_KEY_FILE", "keys/id_rsa")
    monkeypatch.chdir(tmp_path)
    path = write(tmp_path / "configs" / "cluster.yaml", "workers: [node1]\n")
    variables = host_vars(parse(plugin, path), "node1")
    assert variables["ansible_user"] == "envuser"
    assert variables["ansible_port"] == 2200
    # from the environment: relative to the current directory
    assert variables["ansible_ssh_private_key_file"] == str(tmp_path / "keys" / "id_rsa")


def test_config_file_options_win_over_environment(
    plugin: t.Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GTSFM_CLUSTER_SSH_USER", "envuser")
    inventory = parse(plugin, config(tmp_path, "cluster_config: cluster.yaml\nssh_user: fileuser\n"))
    assert host_vars(inventory, "node1")["ansible_user"] == "fileuser"


def test_hostvars_option_on_every_host_and_specific_options_win(plugin: t.Any, tmp_path: Path) -> None:
    body = (
        "cluster_config: cluster.yaml\nssh_user: real\nhostvars:\n  ansible_user: ignored\n"
        "  ansible_ssh_common_args: -o StrictHostKeyChecking=accept-new\n  gtsfm_env: /opt/gtsfm\n"
    )
    inventory = parse(plugin, config(tmp_path, body))
    for name in ("node1", "node2", "node3"):
        variables = host_vars(inventory, name)
        assert variables["ansible_user"] == "real"
        assert variables["ansible_ssh_common_args"] == "-o StrictHostKeyChecking=accept-new"
        assert variables["gtsfm_env"] == "/opt/gtsfm"


def test_hostvars_cannot_override_computed_vars(plugin: t.Any, tmp_path: Path) -> None:
    inventory = parse(plugin, config(tmp_path, "cluster_config: cluster.yaml\nhostvars:\n  gtsfm_worker_slots: 9\n"))
    assert host_vars(inventory, "node1")["gtsfm_worker_slots"] == 1
    assert plugin.display.warnings == [
        f"{tmp_path / 'inventory.yml'}: hostvars sets 'gtsfm_worker_slots', which this plugin computes from "
        "cluster.yaml; the computed value wins."
    ]


# ------------------------------------------------------------------------------------------ constructed


# The DataLoader.load_from_file signatures of the cores the collection claims (meta/runtime.yml).
def load_from_file_2_16(file_name: str, cache: bool = True, unsafe: bool = False, json_only: bool = False) -> None:
    """ansible-core 2.16."""


def load_from_file_2_17(file_name: str, cache: str = "all", unsafe: bool = False, json_only: bool = False) -> None:
    """ansible-core 2.17 and 2.18."""


def load_from_file_2_19(
    file_name: str, cache: str = "all", unsafe: bool = False, json_only: bool = False, trusted_as_template: bool = False
) -> None:
    """ansible-core 2.19 to 2.21."""


@pytest.mark.parametrize(
    ("load_from_file", "expected"),
    [
        (load_from_file_2_16, {"cache": False}),
        (load_from_file_2_17, {"cache": "none"}),
        (load_from_file_2_19, {"cache": "none", "trusted_as_template": True}),
    ],
)
def test_plugin_config_is_read_uncached_with_the_arguments_this_core_takes(
    plugin: t.Any, load_from_file: t.Callable[..., None], expected: dict[str, t.Any]
) -> None:
    assert plugin_module(plugin)._load_options(load_from_file) == expected  # pylint: disable=protected-access


def test_plugin_config_is_read_through_a_loader_without_trusted_as_template(plugin: t.Any, tmp_path: Path) -> None:
    calls: list[t.Any] = []

    class Loader216(DataLoader):
        """A DataLoader with ansible-core 2.16's load_from_file signature."""

        def load_from_file(
            self,
            file_name: str,
            cache: bool = True,
            unsafe: bool = False,  # type: ignore[override]
            json_only: bool = False,
        ) -> t.Any:
            calls.append(cache)
            return yaml.safe_load(Path(file_name).read_text(encoding="utf-8"))

    inventory = InventoryData()
    plugin.parse(inventory, Loader216(), str(config(tmp_path, "cluster_config: cluster.yaml\n")))
    assert calls == [False]
    assert group_hosts(inventory, "gtsfm_workers") == ["node1", "node2", "node3"]


def composed(value: int) -> int | str:
    """What compose makes of an int: ansible-core 2.19+ evaluates expressions to typed values, earlier cores render
    them as text with non-native Jinja."""
    return value if hasattr(Templar, "evaluate_expression") else str(value)


def test_compose_groups_and_keyed_groups(plugin: t.Any, tmp_path: Path) -> None:
    cluster = "workers:\n  - host: gpu1\n    system_memory: 64GB\n  - host: gpu1\n    system_memory: 64GB\n  - cpu1\n"
    body = """\
cluster_config: cluster.yaml
compose:
  gtsfm_num_workers: gtsfm_worker_slots * 2
  cluster_size: gtsfm_cluster_hosts | length
groups:
  multi_slot: gtsfm_worker_slots > 1
keyed_groups:
  - key: gtsfm_system_memory | default('none') | string
    prefix: memory
  - key: "'scheduler' if gtsfm_is_scheduler else 'worker'"
    prefix: role
strict: true
"""
    inventory = parse(plugin, config(tmp_path, body, cluster=cluster))
    assert host_vars(inventory, "gpu1")["gtsfm_num_workers"] == composed(4)
    assert host_vars(inventory, "cpu1")["gtsfm_num_workers"] == composed(2)
    assert host_vars(inventory, "cpu1")["cluster_size"] == composed(2)  # group vars of gtsfm_cluster are visible
    assert group_hosts(inventory, "multi_slot") == ["gpu1"]
    assert group_hosts(inventory, "memory_64GB") == ["gpu1"]
    assert group_hosts(inventory, "memory_none") == ["cpu1"]
    assert group_hosts(inventory, "role_scheduler") == ["gpu1"]
    assert group_hosts(inventory, "role_worker") == ["cpu1"]


def test_compose_error_is_fatal_only_when_strict(plugin: t.Any, tmp_path: Path) -> None:
    body = "cluster_config: cluster.yaml\ncompose:\n  broken: undefined_variable + 1\nstrict: %s\n"
    inventory = parse(plugin, config(tmp_path, body % "false"))
    assert "broken" not in host_vars(inventory, "node1")
    with pytest.raises(AnsibleError, match="Could not set broken for host node1"):
        parse(inventory_loader.get(FQCN), config(tmp_path, body % "true"))


# ----------------------------------------------------------------------------------------------- cache


def cache_config(tmp_path: Path) -> Path:
    return config(
        tmp_path,
        "cluster_config: cluster.yaml\ncache: true\ncache_plugin: ansible.builtin.jsonfile\n"
        f"cache_connection: {tmp_path / 'cache'}\n",
    )


def test_cache_is_written_used_and_follows_the_content(tmp_path: Path) -> None:
    path = cache_config(tmp_path)
    first = inventory_loader.get(FQCN)
    first.display = RecordingDisplay()
    parse(first, path, cache=True)
    first.update_cache_if_changed()  # what ansible-core's InventoryManager does after parse()
    assert list((tmp_path / "cache").iterdir()), "the jsonfile cache was not written"

    # The same content is served from the cache: a read of cluster.yaml's bytes, no YAML parse.
    second = inventory_loader.get(FQCN)
    second.display = RecordingDisplay()
    second._read_cluster_config = None  # type: ignore[assignment]  # any parse would fail
    assert group_hosts(parse(second, path, cache=True), "gtsfm_workers") == ["node1", "node2", "node3"]

    # Issue 12: a node removed from cluster.yaml left the inventory only when the cache timed out.
    write(tmp_path / "cluster.yaml", "workers: [node1, node2]\n")
    third = inventory_loader.get(FQCN)
    third.display = RecordingDisplay()
    assert group_hosts(parse(third, path, cache=True), "gtsfm_workers") == ["node1", "node2"]
    third.update_cache_if_changed()
    fourth = inventory_loader.get(FQCN)
    fourth.display = RecordingDisplay()
    fourth._read_cluster_config = None  # type: ignore[assignment]
    assert group_hosts(parse(fourth, path, cache=True), "gtsfm_workers") == ["node1", "node2"]


def test_cache_entry_for_another_cluster_config_is_ignored(tmp_path: Path) -> None:
    path = cache_config(tmp_path)
    first = inventory_loader.get(FQCN)
    first.display = RecordingDisplay()
    parse(first, path)
    first.update_cache_if_changed()

    write(tmp_path / "other.yaml", "workers: [other]\n")
    path.write_text(
        path.read_text(encoding="utf-8").replace("cluster_config: cluster.yaml", "cluster_config: other.yaml"),
        encoding="utf-8",
    )
    second = inventory_loader.get(FQCN)
    second.display = RecordingDisplay()
    assert group_hosts(parse(second, path), "gtsfm_workers") == ["other"]


def test_cache_replays_warnings(tmp_path: Path) -> None:
    path = cache_config(tmp_path)
    write(tmp_path / "cluster.yaml", "workers:\n  - host: a\n    colour: blue\n")
    first = inventory_loader.get(FQCN)
    first.display = RecordingDisplay()
    parse(first, path)
    first.update_cache_if_changed()
    second = inventory_loader.get(FQCN)
    second.display = RecordingDisplay()
    parse(second, path)
    assert second.display.warnings == first.display.warnings
    assert len(second.display.warnings) == 1


def test_cache_off_by_default_touches_no_cache(plugin: t.Any, tmp_path: Path) -> None:
    parse(plugin, config(tmp_path, "cluster_config: cluster.yaml\n"))
    # On the instance: ansible-core before 2.19 keeps an empty placeholder _cache on the Cacheable class.
    assert "_cache" not in vars(plugin)


# ---------------------------------------------------------------------------------------------- errors


def parse_error(instance: t.Any, path: Path) -> AnsibleParserError:
    with pytest.raises(AnsibleParserError) as excinfo:
        parse(instance, path)
    return excinfo.value


def test_missing_cluster_config_option(plugin: t.Any, tmp_path: Path) -> None:
    path = config(tmp_path, "ssh_user: gtsfm\n")
    assert parse_error(plugin, path).message == (
        f"{path}: the option 'cluster_config' is not set. Fix: add 'cluster_config: <path to GTSfM's cluster.yaml>' "
        f"(a relative path is resolved against {tmp_path})."
    )


def test_cluster_config_file_does_not_exist(plugin: t.Any, tmp_path: Path) -> None:
    path = config(tmp_path, "cluster_config: missing.yaml\n", cluster=None)
    assert parse_error(plugin, path).message == (
        f"{path}: cluster_config '{tmp_path / 'missing.yaml'}' does not exist. Fix: set cluster_config to the path of "
        f"GTSfM's cluster.yaml (relative paths are resolved against the directory of {path})."
    )


def test_cluster_config_is_a_directory(plugin: t.Any, tmp_path: Path) -> None:
    (tmp_path / "configs").mkdir()
    path = config(tmp_path, "cluster_config: configs\n", cluster=None)
    assert parse_error(plugin, path).message == (
        f"{path}: cluster_config '{tmp_path / 'configs'}' is a directory. Fix: point cluster_config at the "
        "cluster.yaml file itself (for example gtsfm/configs/cluster.yaml)."
    )


def test_cluster_config_not_a_string(plugin: t.Any, tmp_path: Path) -> None:
    path = config(tmp_path, "cluster_config: [a.yaml, b.yaml]\n", cluster=None)
    assert parse_error(plugin, path).message == (
        f"{path}: 'cluster_config' must be a path, got ['a.yaml', 'b.yaml']. Fix: set cluster_config to the path of "
        "GTSfM's cluster.yaml."
    )


def test_wrong_plugin_name_when_parsed_directly(plugin: t.Any, tmp_path: Path) -> None:
    path = write(tmp_path / "inv.yml", "plugin: gtsfm.cluster.other\ncluster_config: c.yaml\n")
    assert parse_error(plugin, path).message == (
        f"{path}: 'plugin' is 'gtsfm.cluster.other', not this plugin. Fix: set 'plugin: gtsfm.cluster.cluster_yaml'."
    )


@pytest.mark.parametrize("port", [0, 65536, -22])
def test_ssh_port_out_of_range(plugin: t.Any, tmp_path: Path, port: int) -> None:
    path = config(tmp_path, f"cluster_config: cluster.yaml\nssh_port: {port}\n")
    assert parse_error(plugin, path).message == (
        f"{path}: ssh_port must be between 1 and 65535, got {port}. Fix: set ssh_port to the SSH port of the nodes, "
        "or remove it."
    )


def test_ssh_port_out_of_range_from_the_config_file_on_a_core_whose_origin_ignores_it(
    plugin: t.Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # ansible-core 2.16's get_option_and_origin answers from the environment, ansible.cfg and the default only.
    monkeypatch.setattr(plugin, "get_option_and_origin", lambda option, hostvars=None: (None, "default"))
    path = config(tmp_path, "cluster_config: cluster.yaml\nssh_port: 0\n")
    assert parse_error(plugin, path).message == (
        f"{path}: ssh_port must be between 1 and 65535, got 0. Fix: set ssh_port to the SSH port of the nodes, "
        "or remove it."
    )


def test_ssh_port_out_of_range_from_environment_names_the_variable(
    plugin: t.Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GTSFM_CLUSTER_SSH_PORT", "99999")
    path = write(tmp_path / "cluster.yaml", "workers: [a]\n")
    assert parse_error(plugin, path).message == (
        f"{path}: ssh_port (from env: GTSFM_CLUSTER_SSH_PORT) must be between 1 and 65535, got 99999. Fix: set "
        "ssh_port to the SSH port of the nodes, or remove it."
    )


def test_crlf_plugin_config_is_recognised(plugin: t.Any, tmp_path: Path) -> None:
    write(tmp_path / "cluster.yaml", "workers: [a]\n")
    path = tmp_path / "inv.yml"
    path.write_bytes(b"plugin: gtsfm.cluster.cluster_yaml\r\ncluster_config: cluster.yaml\r\n")
    assert plugin.verify_file(str(path))
    assert group_hosts(parse(plugin, path), "gtsfm_workers") == ["a"]


def test_ssh_port_not_a_number(plugin: t.Any, tmp_path: Path) -> None:
    path = config(tmp_path, "cluster_config: cluster.yaml\nssh_port: twentytwo\n")
    with pytest.raises(AnsibleError, match="ssh_port"):
        parse(plugin, path)


def test_hostvars_bad_variable_name(plugin: t.Any, tmp_path: Path) -> None:
    path = config(tmp_path, 'cluster_config: cluster.yaml\nhostvars:\n  "bad name": 1\n')
    assert parse_error(plugin, path).message == (
        f"{path}: hostvars key 'bad name' is not a valid variable name. Fix: use letters, digits and '_' only, not "
        "starting with a digit."
    )


def test_unknown_option_in_config_warns(plugin: t.Any, tmp_path: Path) -> None:
    path = config(tmp_path, "cluster_config: cluster.yaml\nssh_usr: gtsfm\n")
    parse(plugin, path)
    assert plugin.display.warnings == [f"{path}: unknown option 'ssh_usr' is ignored (did you mean 'ssh_user'?)."]


def test_validation_error_in_config_mode_names_cluster_yaml_entry_and_fix(plugin: t.Any, tmp_path: Path) -> None:
    path = config(
        tmp_path,
        "cluster_config: cluster.yaml\n",
        cluster="workers:\n  - node1\n  - node2\n  - host: node3\n    gpus: -1\n",
    )
    error = parse_error(plugin, path)
    assert error.message == (
        f"{tmp_path / 'cluster.yaml'}: workers[2] ('node3'): 'gpus' must be a non-negative integer, got -1. "
        "Fix: set gpus to 0 or more, or remove it."
    )
    assert error.__cause__ is None  # no chained cause repeating the message
    assert plugin.display.errors == []  # config mode: ansible-core reports it


def test_yaml_syntax_error_names_line(plugin: t.Any, tmp_path: Path) -> None:
    path = write(tmp_path / "cluster.yaml", "workers:\n  - node1\n  - host: node2\n   gpus: 1\n")
    error = parse_error(plugin, path)
    assert error.message == (
        f"{path}: YAML syntax error at line 4, column 4: expected <block end>, but found '<block mapping start>'. "
        "Fix the YAML syntax (GTSfM's cluster.yaml is a mapping with a 'workers' list)."
    )
    # every YAML plugin fails on it too, so ansible-core shows it: no extra error display
    assert plugin.display.errors == []


@pytest.mark.parametrize("yaml_enabled", [True, False])
def test_raw_mode_validation_error_is_also_displayed_when_yaml_plugin_would_hide_it(
    plugin: t.Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, yaml_enabled: bool
) -> None:
    monkeypatch.setattr(plugin_module(plugin), "_yaml_plugin_enabled", lambda: yaml_enabled)
    path = write(tmp_path / "cluster.yaml", "workers:\n  - gtsfm@node1\n")
    expected = (
        f"{path}: workers[0] ('gtsfm@node1'): 'gtsfm@node1' carries an SSH user ('gtsfm'); GTSfM connects with the "
        "user running it. Fix: write only 'node1' here and put the SSH user in the inventory option ssh_user, "
        "not in cluster.yaml."
    )
    assert parse_error(plugin, path).message == expected
    assert plugin.display.errors == ([expected] if yaml_enabled else [])


def test_raw_mode_workers_mapping_explains_third_shape(plugin: t.Any, tmp_path: Path) -> None:
    path = write(tmp_path / "remote.yaml", "scheduler:\n  port: 8786\nworkers: {}\ndatabase:\n  port: 5432\n")
    assert plugin.verify_file(str(path))
    message = parse_error(plugin, path).message
    assert message.startswith(f"{path}: 'workers' must be a list of hosts, got a mapping.")
    assert "DASK_WORKERS" in message


def test_unknown_keys_warn_through_display(plugin: t.Any, tmp_path: Path) -> None:
    path = write(tmp_path / "cluster.yaml", "workers:\n  - host: a\n    memory: 8GB\nscheduler:\n  port: 1\n")
    parse(plugin, path)
    assert plugin.display.warnings == [
        f"{path}: top-level key 'scheduler' (from GTSfM's local_scheduler_postgres_remote_cluster.yaml shape) is "
        "ignored; only 'workers' is used.",
        f"{path}: workers[0] ('a'): unknown key 'memory' is ignored (did you mean 'system_memory'?); GTSfM reads "
        "only host, gpus, system_memory in a worker entry.",
    ]


def test_vault_encrypted_cluster_yaml(plugin: t.Any, tmp_path: Path) -> None:
    path = write(tmp_path / "cluster.yaml", "workers:\n")
    path.write_text("$ANSIBLE_VAULT;1.1;AES256\n6162\n", encoding="utf-8")
    inv = config(tmp_path, "cluster_config: cluster.yaml\n", cluster=None)
    assert parse_error(plugin, inv).message == (
        f"{path}: is vault-encrypted, which this plugin does not read. Fix: keep cluster.yaml unencrypted (GTSfM reads "
        "it as plain YAML too)."
    )


def test_not_utf8(plugin: t.Any, tmp_path: Path) -> None:
    (tmp_path / "cluster.yaml").write_bytes(b"workers:\n  - n\xe9ud\n")
    inv = config(tmp_path, "cluster_config: cluster.yaml\n", cluster=None)
    assert parse_error(plugin, inv).message == (
        f"{tmp_path / 'cluster.yaml'}: is not UTF-8 text (invalid continuation byte). Fix: save cluster.yaml as UTF-8."
    )


def test_unexpected_exception_becomes_a_sentence(
    plugin: t.Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def boom(text: str, source: str) -> t.NoReturn:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(plugin_module(plugin), "load_cluster_config", boom)
    path = write(tmp_path / "cluster.yaml", "workers: [a]\n")
    assert parse_error(plugin, path).message == (
        f"{path}: could not build the inventory from GTSfM cluster config: RuntimeError: disk on fire"
    )


# ---------------------------------------------------------------------------------------- issues 12 and 13


def test_a_yaml_inventory_with_a_workers_group_is_left_to_the_yaml_plugin_silently(
    plugin: t.Any, tmp_path: Path
) -> None:
    path = write(
        tmp_path / "hosts.yml",
        "all:\n  children:\n    workers:\n      hosts:\n        web1:\nworkers:\n  hosts:\n    web2:\n",
    )
    plugin.display = RecordingDisplay()
    assert plugin.verify_file(str(path)) is False
    assert not plugin.display.errors and not plugin.display.warnings


def test_workers_after_a_long_header_is_still_claimed(plugin: t.Any, tmp_path: Path) -> None:
    # Issue 13 case 10: verify_file looked at the first 64 KiB only.
    header = "".join(f"# comment line {i} {'x' * 80}\n" for i in range(1200))
    database = "database:\n" + "".join(f"  key{i}: value\n" for i in range(3000))
    path = write(tmp_path / "cluster.yaml", header + database + "workers:\n  - node1\n  - node2\n")
    assert path.stat().st_size > 65536
    assert plugin.verify_file(str(path)) is True
    assert group_hosts(parse(plugin, path), "gtsfm_workers") == ["node1", "node2"]
