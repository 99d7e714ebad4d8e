# -*- coding: utf-8 -*-
# Copyright: gtsfm.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: cluster_yaml
short_description: Build an inventory from GTSfM's cluster.yaml
version_added: 0.1.0
description:
  - Reads the C(cluster.yaml) that GTSfM's runner takes with C(--cluster_config) and turns its C(workers) list into
    an inventory, so the machines you already listed for GTSfM are the machines Ansible prepares.
  - "Two shapes of C(workers) are understood: a list of host names (GTSfM's C(gtsfm/configs/cluster.yaml)) and a list
    of mappings with C(host) and optionally C(gpus) and C(system_memory) (GTSfM's C(gtsfm/configs/cluster_gpu.yaml)).
    Both may be mixed."
  - The first worker's host is the Dask scheduler (and the machine that does GTSfM's I/O). A host may be listed more
    than once; every occurrence is one worker slot on that host.
  - "Way in 1, a plugin configuration file: a file ending in C(.yml) or C(.yaml) with
    O(plugin=gtsfm.cluster.cluster_yaml) and O(cluster_config) pointing at the cluster.yaml, given to C(-i).
    All options can be set in that file."
  - "Way in 2, GTSfM's own cluster.yaml given straight to C(-i), when this plugin is listed in
    C([inventory] enable_plugins) of C(ansible.cfg). Options then come from their defaults, environment variables
    and the C([gtsfm_cluster_yaml]) section of C(ansible.cfg) only."
  - The file is validated top-down. The first problem stops parsing with one message that names the file, the
    entry (index and value) and the fix. Keys GTSfM does not read are skipped with a warning.
  - "Groups created: C(gtsfm_cluster) (every host; parent of the next two), C(gtsfm_scheduler) (the first
    worker's host) and C(gtsfm_workers) (every distinct host, the scheduler included, because GTSfM's runner also
    starts workers on the scheduler's machine). Hosts are added in cluster.yaml order of first appearance."
  - "Host variables: C(gtsfm_is_scheduler) (bool), C(gtsfm_worker_slots) (int, how many times the host is listed),
    C(gtsfm_worker_slot_settings) (list with one mapping per occurrence holding that entry's C(gpus) and
    C(system_memory), empty for plain host names), C(gtsfm_cluster_index) (int, position of the first occurrence in
    C(workers)), and C(gtsfm_gpus) and C(gtsfm_system_memory) (from the first occurrence, only where given)."
  - "Group variables of C(gtsfm_cluster): C(gtsfm_cluster_config) (absolute path of the cluster.yaml read),
    C(gtsfm_cluster_workers) (the C(workers) list as written, host name strings stay strings and mappings stay
    mappings, keys GTSfM does not read dropped) and C(gtsfm_cluster_hosts) (the distinct host names, in order)."
  - Connection variables (C(ansible_user), C(ansible_port), C(ansible_ssh_private_key_file)) and O(hostvars) are set
    only when their option is given, so C(~/.ssh/config) and C(ansible.cfg) keep working otherwise.
extends_documentation_fragment:
  - constructed
  - inventory_cache
options:
  plugin:
    description:
      - Marks a YAML file as a configuration file for this plugin.
      - Required in plugin configuration files; not used when GTSfM's cluster.yaml is given directly to C(-i).
    type: str
    required: true
    choices: ['gtsfm.cluster.cluster_yaml', 'cluster_yaml']
    version_added: 0.1.0
  cluster_config:
    description:
      - Path of GTSfM's cluster.yaml (the file passed to GTSfM's C(--cluster_config)).
      - A relative path is resolved against the directory of the plugin configuration file, not the current
        directory; C(~) and environment variables are expanded.
      - Required in plugin configuration files. Ignored when the cluster.yaml itself is the inventory source.
    type: path
    version_added: 0.1.0
  ssh_user:
    description:
      - SSH user for every host, set as C(ansible_user).
      - GTSfM's runner connects with the user that runs it; user names do not belong in cluster.yaml.
      - Not set when omitted, so C(~/.ssh/config) or C(remote_user) apply.
    type: str
    env:
      - name: GTSFM_CLUSTER_SSH_USER
    ini:
      - section: gtsfm_cluster_yaml
        key: ssh_user
    version_added: 0.1.0
  ssh_port:
    description:
      - SSH port for every host, set as C(ansible_port).
      - Not set when omitted.
    type: int
    env:
      - name: GTSFM_CLUSTER_SSH_PORT
    ini:
      - section: gtsfm_cluster_yaml
        key: ssh_port
    version_added: 0.1.0
  ssh_private_key_file:
    description:
      - SSH private key for every host, set as C(ansible_ssh_private_key_file).
      - In a plugin configuration file a relative path is resolved against that file's directory; from the
        environment it is resolved against the current directory, from C(ansible.cfg) against that file's directory.
      - Not set when omitted.
    type: path
    env:
      - name: GTSFM_CLUSTER_SSH_PRIVATE_KEY_FILE
    ini:
      - section: gtsfm_cluster_yaml
        key: ssh_private_key_file
    version_added: 0.1.0
  hostvars:
    description:
      - Extra host variables set on every host, for example C(ansible_python_interpreter) or
        C(ansible_ssh_common_args).
      - Set first, so O(ssh_user), O(ssh_port), O(ssh_private_key_file) and the C(gtsfm_*) variables computed
        from cluster.yaml win over the same names given here (a warning says so for C(gtsfm_*) names).
    type: dict
    default: {}
    version_added: 0.1.0
  strict:
    version_added: 0.1.0
  compose:
    version_added: 0.1.0
  groups:
    version_added: 0.1.0
  keyed_groups:
    version_added: 0.1.0
  use_extra_vars:
    version_added: 0.1.0
  leading_separator:
    version_added: 0.1.0
  cache:
    version_added: 0.1.0
  cache_plugin:
    version_added: 0.1.0
  cache_timeout:
    version_added: 0.1.0
  cache_connection:
    version_added: 0.1.0
  cache_prefix:
    version_added: 0.1.0
notes:
  - "C(verify_file) only peeks at the text: it accepts a C(.yml)/C(.yaml) file with a top-level C(plugin:) line
    naming this plugin, or one with a top-level C(workers:) key and no top-level C(plugin:) key."
  - "When a cluster.yaml given directly to C(-i) is rejected, ansible-core goes on to try the other enabled
    plugins; the built-in C(yaml) plugin accepts any mapping, so the error is also displayed directly, before
    ansible-core reports the other plugins. Use a plugin configuration file (way 1) for the plainest errors."
  - "GTSfM's runner takes its single-machine GPU path (LocalCUDACluster) when any worker has a C(gpus) key, or a
    plain host name contains the text C(gpus). This plugin refuses a file where that path cannot run what it lists:
    C(gpus) among workers on more than one host, or a plain host name containing C(gpus). One machine listed with
    C(gpus) (GTSfM's C(cluster_gpu.yaml)) is accepted; M(gtsfm.cluster.gtsfm_job) applies the same rule."
  - "A C(localhost) entry (as in GTSfM's cluster_gpu.yaml) becomes an explicit inventory host, which Ansible
    reaches over SSH like any other. To work on the controller directly, add
    C(ansible_connection: \"'local' if inventory_hostname in ['localhost', '127.0.0.1', '::1'] else 'ssh'\") under
    O(compose)."
  - "The C(local_scheduler_postgres_remote_cluster.yaml) shape (C(workers: {}) filled from the C(DASK_WORKERS)
    environment variable) is not a static host list and is rejected with an explanation."
seealso:
  - name: GTSfM
    description: GTSfM's runner and its cluster.yaml files (gtsfm/configs/).
    link: https://github.com/borglab/gtsfm
  - name: Inventory plugins
    description: How inventory plugins are enabled and configured.
    link: https://docs.ansible.com/ansible/latest/plugins/inventory.html
"""

EXAMPLES = r"""
# One YAML document (ansible-core 2.16's sanity test reads EXAMPLES as one): a plugin configuration file using
# every kind of option, then, in comments, GTSfM's own cluster.yaml given straight to -i.

# --- Way 1: a plugin configuration file, e.g. inventory/gtsfm_cluster.yml ---
# ansible-inventory -i inventory/gtsfm_cluster.yml --graph
plugin: gtsfm.cluster.cluster_yaml
cluster_config: cluster.yaml            # relative to this file's directory (or ~/gtsfm/gtsfm/configs/...)
ssh_user: gtsfm                         # -> ansible_user on every host
ssh_port: 22                            # -> ansible_port
ssh_private_key_file: ~/.ssh/id_ed25519 # -> ansible_ssh_private_key_file
hostvars:                               # set on every host
  ansible_python_interpreter: /usr/bin/python3
# Constructed features (optional):
compose:
  # Give every host as many Dask workers as it has slots in cluster.yaml.
  gtsfm_num_workers: gtsfm_worker_slots
keyed_groups:
  # gpus_1, gpus_0, ... from the first entry's 'gpus' (hosts without it land in gpus_none).
  - key: gtsfm_gpus | default('none') | string
    prefix: gpus
  # role_scheduler / role_worker
  - key: "'scheduler' if gtsfm_is_scheduler else 'worker'"
    prefix: role
groups:
  # Hosts that appear more than once in cluster.yaml.
  gtsfm_multi_slot: gtsfm_worker_slots > 1
strict: true
# The inventory cache (optional; any cache plugin works):
cache: true
cache_plugin: ansible.builtin.jsonfile
cache_connection: ~/.cache/gtsfm_cluster_inventory
cache_timeout: 600

# --- Way 2: GTSfM's own cluster.yaml straight to -i ---
# ansible.cfg:
#   [inventory]
#   enable_plugins = gtsfm.cluster.cluster_yaml, host_list, script, auto, yaml, ini, toml
#   [gtsfm_cluster_yaml]
#   ssh_user = gtsfm
# Then:
#   GTSFM_CLUSTER_SSH_PORT=2222 ansible-inventory -i ~/gtsfm/gtsfm/configs/cluster.yaml --graph
# with ~/gtsfm/gtsfm/configs/cluster.yaml being, for example:
#   workers:
#     - host1.cc.gatech.edu   # the scheduler: gtsfm_scheduler, gtsfm_is_scheduler=true
#     - host2.cc.gatech.edu
#     - host3.cc.gatech.edu
"""

import copy
import difflib
import hashlib
import inspect
import os
import re
import typing as t
from pathlib import Path

from ansible import constants as C
from ansible.errors import AnsibleError, AnsibleParserError
from ansible.inventory.helpers import get_group_vars
from ansible.plugins.inventory import BaseInventoryPlugin, Cacheable, Constructable
from ansible.utils.vars import combine_vars

from ansible_collections.gtsfm.cluster.plugins.plugin_utils._cluster_config import (
    ClusterConfigError,
    ClusterConfigSyntaxError,
    ClusterSpec,
    load_cluster_config,
)

GROUP_CLUSTER = "gtsfm_cluster"
GROUP_SCHEDULER = "gtsfm_scheduler"
GROUP_WORKERS = "gtsfm_workers"

PLUGIN_NAMES = ("gtsfm.cluster.cluster_yaml", "cluster_yaml")
YAML_EXTENSIONS = (".yml", ".yaml")
PEEK_BYTES = 65536
COMPUTED_HOSTVARS = (
    "gtsfm_is_scheduler",
    "gtsfm_worker_slots",
    "gtsfm_worker_slot_settings",
    "gtsfm_cluster_index",
    "gtsfm_gpus",
    "gtsfm_system_memory",
)

_PLUGIN_LINE = re.compile(
    r"""^["']?plugin["']?[ \t]*:[ \t]*["']?(?P<name>[^"'#\s]*)["']?[ \t]*(?:#.*)?$""", re.MULTILINE
)
_TOP_KEY = re.compile(r"""^["']?(?P<key>[A-Za-z_][A-Za-z0-9_]*)["']?[ \t]*:(?P<rest>(?:[ \t].*)?)$""")


def _peek(path: str) -> str | None:
    """Return the start of the file as text, or None if it cannot be read."""
    try:
        with open(path, "rb") as handle:
            return handle.read(PEEK_BYTES).decode("utf-8", errors="replace").replace("\r\n", "\n")
    except OSError:
        return None


def _plugin_line_name(text: str) -> str | None:
    """Name on the file's top-level ``plugin:`` line, '' for a ``plugin:`` line without a plain name, None if none."""
    match = _PLUGIN_LINE.search(text)
    if match is not None:
        return match.group("name")
    if re.search(r"""^["']?plugin["']?[ \t]*:""", text, re.MULTILINE):
        return ""
    return None


def _is_gtsfm_config(path: str) -> bool:
    """Whether the file is positively one of GTSfM's cluster configs.

    Either a top-level ``workers:`` key whose value is a YAML sequence (``cluster.yaml``, ``cluster_gpu.yaml``), or
    the ``workers: {}`` of ``local_scheduler_postgres_remote_cluster.yaml`` beside a top-level ``scheduler:`` or
    ``database:`` key (claimed so that its own error can explain that shape). An ordinary YAML inventory never
    holds a sequence under a group name (``workers:`` there maps to ``hosts:``/``children:``/``vars:``), so it is
    never claimed. The whole file is scanned line by line: a long comment header or a large ``database:`` mapping
    may come first.
    """
    top_keys: set[str] = set()
    workers = ""
    pending = False
    try:
        with open(path, "rb") as handle:
            for raw in handle:
                line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
                stripped = line.strip()
                if pending:
                    if not stripped or stripped.startswith("#"):
                        continue
                    pending = False
                    if stripped == "-" or stripped.startswith("- "):
                        return True
                key = _TOP_KEY.match(line)
                if key is None:
                    continue
                top_keys.add(key.group("key"))
                if key.group("key") != "workers":
                    continue
                rest = key.group("rest").split(" #")[0].strip()
                if rest.startswith("["):
                    return True
                if rest == "" or rest.startswith("#"):
                    pending = True
                workers = rest
    except OSError:
        return False
    return workers == "{}" and bool(top_keys & {"scheduler", "database"})


def _content_digest(path: str) -> str | None:
    """SHA-256 of the file's bytes, or None when it cannot be read (the read that follows reports why)."""
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
    except OSError:
        return None
    return digest.hexdigest()


def _yaml_plugin_enabled() -> bool:
    """Whether ansible-core's own 'yaml' inventory plugin is enabled (it accepts any YAML mapping)."""
    enabled = getattr(C, "INVENTORY_ENABLED", None) or ()
    return any(str(name) in ("yaml", "ansible.builtin.yaml", "ansible.legacy.yaml") for name in enabled)


def _load_options(load_from_file: t.Callable[..., t.Any]) -> dict[str, t.Any]:
    """Keyword arguments that make ``DataLoader.load_from_file`` read a plugin config afresh, as ansible-core does.

    Read off the signature, not the version: ansible-core 2.16 takes ``cache=False``, 2.17 and later take
    ``cache='none'``, and 2.19 added ``trusted_as_template``, without which it refuses the ``compose``, ``groups``
    and ``keyed_groups`` expressions as untrusted.
    """
    params = inspect.signature(load_from_file).parameters
    cache = params.get("cache")
    options: dict[str, t.Any] = {}
    if cache is not None:
        options["cache"] = False if isinstance(cache.default, bool) else "none"
    if "trusted_as_template" in params:
        options["trusted_as_template"] = True
    return options


def _resolve_against(raw: str, base_dir: Path) -> str:
    """Expand ``~`` and variables; make a relative path absolute against ``base_dir``."""
    expanded = Path(os.path.expandvars(os.path.expanduser(raw)))
    if not expanded.is_absolute():
        expanded = base_dir / expanded
    return os.path.normpath(str(expanded))


class InventoryModule(BaseInventoryPlugin, Constructable, Cacheable):
    """Inventory from GTSfM's cluster.yaml, given through a plugin config file or directly."""

    NAME = "gtsfm.cluster.cluster_yaml"

    def __init__(self) -> None:
        super().__init__()
        self._key_file_override: str | None = None
        self._source_name = ""
        self._direct_options: dict[str, t.Any] = {}

    # ------------------------------------------------------------------ verify
    def verify_file(self, path: str) -> bool:
        """Say whether ``path`` is ours: a plugin config naming this plugin, or a raw GTSfM cluster.yaml."""
        if not super().verify_file(path):
            return False
        if not str(path).endswith(YAML_EXTENSIONS):
            self.display.vvv(f"{path}: skipped by {self.NAME}, the file name does not end in .yml or .yaml")
            return False
        text = _peek(path)
        if text is None:
            return False
        plugin_name = _plugin_line_name(text)
        if plugin_name is not None:
            return plugin_name in self._valid_names()
        return _is_gtsfm_config(path)

    def _valid_names(self) -> tuple[str, ...]:
        redirected = tuple(getattr(self, "_redirected_names", None) or ())
        return PLUGIN_NAMES + redirected

    # ------------------------------------------------------------------- parse
    def parse(self, inventory: t.Any, loader: t.Any, path: str, cache: bool = True) -> None:
        """Read options and the cluster.yaml, validate it, and populate groups and variables."""
        super().parse(inventory, loader, path)
        try:
            self._parse(str(path), cache)
        except ClusterConfigError as exc:
            # from None: the message already says everything; a chained cause would repeat it in the output.
            raise AnsibleParserError(str(exc)) from None
        except AnsibleError:
            raise
        except Exception as exc:  # pylint: disable=broad-exception-caught
            raise AnsibleParserError(
                f"{path}: could not build the inventory from GTSfM cluster config: {type(exc).__name__}: {exc}"
            ) from exc

    def _parse(self, path: str, cache: bool) -> None:
        self._key_file_override = None
        self._source_name = path
        self._direct_options = {}
        text = _peek(path) or ""
        if _plugin_line_name(text) is not None:
            cluster_path = self._read_plugin_config(path)
            raw_mode = False
        else:
            self.set_options(direct={"plugin": self.NAME}, var_options=self._vars)
            cluster_path = os.path.abspath(path)
            raw_mode = True
        if self.get_option("cache"):
            self.load_cache_plugin()

        try:
            spec, warnings = self._get_cluster_spec(path, cluster_path, cache)
        except ClusterConfigError as exc:
            if raw_mode and not isinstance(exc, ClusterConfigSyntaxError) and _yaml_plugin_enabled():
                # ansible-core tries the next enabled plugin after a failure and shows the failures only if no
                # plugin succeeds; the built-in 'yaml' plugin accepts any mapping (it only warns "Skipping
                # 'workers'") and would hide this error behind an empty inventory, so say it here.
                self.display.error(str(exc))
            raise
        for warning in warnings:
            self.display.warning(warning)
        self._populate(spec, cluster_path)

    def _read_plugin_config(self, path: str) -> str:
        """Load a plugin config file, set options, and return the absolute path of the cluster.yaml it names."""
        try:
            config = self.loader.load_from_file(path, **_load_options(self.loader.load_from_file))
        except AnsibleError:
            raise
        except Exception as exc:  # pylint: disable=broad-exception-caught
            raise AnsibleParserError(f"{path}: could not read the inventory configuration: {exc}") from None
        if not isinstance(config, dict):
            raise AnsibleParserError(
                f"{path}: an inventory configuration must be a mapping with plugin: {self.NAME} and cluster_config: "
                "<path>."
            )
        if config.get("plugin") not in self._valid_names():
            raise AnsibleParserError(
                f"{path}: 'plugin' is {config.get('plugin')!r}, not this plugin. Fix: set 'plugin: {self.NAME}'."
            )

        known = list(self.option_definitions)
        for key in config:
            if key not in known:
                matches = difflib.get_close_matches(str(key), known, n=1)
                hint = f" (did you mean '{matches[0]}'?)" if matches else ""
                self.display.warning(f"{path}: unknown option {key!r} is ignored{hint}.")

        base_dir = Path(os.path.abspath(path)).parent
        raw = config.get("cluster_config")
        if raw is None or str(raw).strip() == "":
            raise AnsibleParserError(
                f"{path}: the option 'cluster_config' is not set. Fix: add 'cluster_config: <path to GTSfM's "
                f"cluster.yaml>' (a relative path is resolved against {base_dir})."
            )
        if not isinstance(raw, str):
            raise AnsibleParserError(
                f"{path}: 'cluster_config' must be a path, got {raw!r}. Fix: set cluster_config to the path of GTSfM's "
                "cluster.yaml."
            )

        self._direct_options = config
        self.set_options(direct=config, var_options=self._vars)

        raw_key = config.get("ssh_private_key_file")
        if isinstance(raw_key, str) and raw_key:
            self._key_file_override = _resolve_against(str(raw_key), base_dir)
        return _resolve_against(str(raw), base_dir)

    def _get_cluster_spec(self, path: str, cluster_path: str, cache: bool) -> tuple[ClusterSpec, list[str]]:
        """Return (spec, warnings) from the inventory cache or by reading cluster_path; update the cache as needed.

        A cache entry counts only for the same cluster.yaml with the same content (its SHA-256), so an edit,
        such as a node removed, is seen on the next run whatever the cache timeout.
        """
        cache_key = self.get_cache_key(path)
        user_cache_setting = bool(self.get_option("cache"))
        attempt_to_read_cache = user_cache_setting and cache
        cache_needs_update = user_cache_setting and not cache
        digest = _content_digest(cluster_path) if user_cache_setting else None

        if attempt_to_read_cache:
            try:
                cached = self._cache[cache_key]
            except KeyError:
                cache_needs_update = True
            else:
                if (
                    isinstance(cached, dict)
                    and cached.get("cluster_config") == cluster_path
                    and digest is not None
                    and cached.get("sha256") == digest
                    and isinstance(cached.get("spec"), dict)
                    and isinstance(cached.get("warnings"), list)
                ):
                    return cached["spec"], list(cached["warnings"])
                cache_needs_update = True

        spec, warnings = self._read_cluster_config(path, cluster_path)
        if cache_needs_update:
            self._cache[cache_key] = {
                "cluster_config": cluster_path,
                "sha256": digest,
                "spec": spec,
                "warnings": warnings,
            }
        return spec, warnings

    def _read_cluster_config(self, path: str, cluster_path: str) -> tuple[ClusterSpec, list[str]]:
        file_path = Path(cluster_path)
        referrer = "" if os.path.abspath(path) == cluster_path else f"{path}: "
        if not file_path.exists():
            raise AnsibleParserError(
                f"{referrer}cluster_config '{cluster_path}' does not exist. Fix: set cluster_config to the path of "
                f"GTSfM's cluster.yaml (relative paths are resolved against the directory of {path})."
            )
        if file_path.is_dir():
            raise AnsibleParserError(
                f"{referrer}cluster_config '{cluster_path}' is a directory. Fix: point cluster_config at the "
                "cluster.yaml file itself (for example gtsfm/configs/cluster.yaml)."
            )
        try:
            text = file_path.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise AnsibleParserError(
                f"{cluster_path}: is not UTF-8 text ({exc.reason}). Fix: save cluster.yaml as UTF-8."
            ) from None
        except OSError as exc:
            raise AnsibleParserError(
                f"{referrer}could not read cluster_config '{cluster_path}': {exc.strerror or exc}. Fix: make the file "
                "readable by the user running Ansible."
            ) from None
        if text.lstrip().startswith("$ANSIBLE_VAULT"):
            raise AnsibleParserError(
                f"{cluster_path}: is vault-encrypted, which this plugin does not read. Fix: keep cluster.yaml "
                "unencrypted (GTSfM reads it as plain YAML too)."
            )
        return load_cluster_config(text, cluster_path)

    # ---------------------------------------------------------------- populate
    def _connection_vars(self) -> dict[str, t.Any]:
        variables: dict[str, t.Any] = {}
        user = self.get_option("ssh_user")
        if user is not None and str(user) != "":
            variables["ansible_user"] = user
        port = self.get_option("ssh_port")
        if port is not None:
            if not 1 <= port <= 65535:
                # ansible-core 2.16's get_option_and_origin reads only the environment, ansible.cfg and the
                # default, never an option set from the plugin config file, so ask it only about those.
                origin = "Direct" if "ssh_port" in self._direct_options else self.get_option_and_origin("ssh_port")[1]
                where = "" if origin == "Direct" else f" (from {origin})"
                raise AnsibleParserError(
                    f"{self._source_name}: ssh_port{where} must be between 1 and 65535, got {port!r}. Fix: set "
                    "ssh_port to the SSH port of the nodes, or remove it."
                )
            variables["ansible_port"] = port
        key_file = self._key_file_override or self.get_option("ssh_private_key_file")
        if key_file:
            variables["ansible_ssh_private_key_file"] = key_file
        return variables

    def _extra_hostvars(self) -> dict[str, t.Any]:
        extra = self.get_option("hostvars") or {}
        if not isinstance(extra, dict):
            raise AnsibleParserError(
                f"{self._source_name}: hostvars must be a mapping of variable names to values. Fix: write 'hostvars:' "
                "followed by 'name: value' lines."
            )
        for name in extra:
            if not isinstance(name, str) or not name.isidentifier():
                raise AnsibleParserError(
                    f"{self._source_name}: hostvars key {name!r} is not a valid variable name. Fix: use letters, "
                    "digits and '_' only, not starting with a digit."
                )
            if name in COMPUTED_HOSTVARS:
                self.display.warning(
                    f"{self._source_name}: hostvars sets {name!r}, which this plugin computes from cluster.yaml; the "
                    "computed value wins."
                )
        return extra

    def _populate(self, spec: ClusterSpec, cluster_path: str) -> None:
        inventory = self.inventory
        extra = self._extra_hostvars()
        connection = self._connection_vars()

        for group in (GROUP_CLUSTER, GROUP_SCHEDULER, GROUP_WORKERS):
            inventory.add_group(group)
        inventory.add_child(GROUP_CLUSTER, GROUP_SCHEDULER)
        inventory.add_child(GROUP_CLUSTER, GROUP_WORKERS)

        inventory.set_variable(GROUP_CLUSTER, "gtsfm_cluster_config", cluster_path)
        inventory.set_variable(GROUP_CLUSTER, "gtsfm_cluster_workers", copy.deepcopy(spec["worker_entries"]))
        inventory.set_variable(GROUP_CLUSTER, "gtsfm_cluster_hosts", [host["name"] for host in spec["hosts"]])

        scheduler = spec["scheduler"]
        names: list[str] = []
        for host in spec["hosts"]:
            name = inventory.add_host(host["name"], group=GROUP_WORKERS)
            names.append(name)
            if host["name"] == scheduler:
                inventory.add_host(name, group=GROUP_SCHEDULER)
            for key, value in extra.items():
                inventory.set_variable(name, key, copy.deepcopy(value))
            for key, value in connection.items():
                inventory.set_variable(name, key, value)
            inventory.set_variable(name, "gtsfm_is_scheduler", host["name"] == scheduler)
            inventory.set_variable(name, "gtsfm_worker_slots", host["slots"])
            inventory.set_variable(name, "gtsfm_worker_slot_settings", copy.deepcopy(host["slot_settings"]))
            inventory.set_variable(name, "gtsfm_cluster_index", host["index"])
            if "gpus" in host:
                inventory.set_variable(name, "gtsfm_gpus", host["gpus"])
            if "system_memory" in host:
                inventory.set_variable(name, "gtsfm_system_memory", host["system_memory"])

        strict = self.get_option("strict")
        for name in names:
            host_obj = inventory.get_host(name)
            variables = combine_vars(get_group_vars(host_obj.get_groups()), host_obj.get_vars())
            self._set_composite_vars(self.get_option("compose"), variables, name, strict=strict)
            self._add_host_to_composed_groups(self.get_option("groups"), variables, name, strict=strict)
            self._add_host_to_keyed_groups(self.get_option("keyed_groups"), variables, name, strict=strict)
