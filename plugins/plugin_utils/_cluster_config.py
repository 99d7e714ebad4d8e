# -*- coding: utf-8 -*-
# Copyright: gtsfm.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Validate and normalise GTSfM's ``cluster.yaml`` (controller side, private to this collection: the inventory
plugin's reading of the file).

GTSfM's runner (``gtsfm/runner.py``) reads only the ``workers`` key of the file
given to ``--cluster_config``.  Two shapes are in use::

    workers:                      # gtsfm/configs/cluster.yaml
      - host1.example.org
      - host2.example.org

    workers:                      # gtsfm/configs/cluster_gpu.yaml
      - host: localhost
        gpus: 1
        system_memory: "10GB"

The first worker is the scheduler (and does the I/O).  A host may appear more
than once; every occurrence is one worker slot.

This module is plain Python: it takes text or already parsed data and returns
plain data (``dict``/``list``/``str``/``int`` only, so the result can be cached
as JSON) plus a list of warning strings.  Every problem raises
:class:`ClusterConfigError` with one message that names the file, the entry
and the fix.
"""

from __future__ import annotations

__metaclass__ = type  # pylint: disable=invalid-name

import difflib
import ipaddress
import re
import reprlib
import typing as t

from ansible_collections.gtsfm.cluster.plugins.module_utils._gtsfm_workers import gpu_path_problem

try:
    import yaml
except ImportError:  # pragma: no cover - PyYAML ships with ansible-core
    yaml = None  # type: ignore[assignment]
    HAS_YAML = False
else:
    HAS_YAML = True


WORKER_KEYS = ("host", "gpus", "system_memory")
"""Keys GTSfM understands in a worker mapping."""

IGNORED_TOP_LEVEL_KEYS = ("scheduler", "database")
"""Top-level keys of GTSfM's ``local_scheduler_postgres_remote_cluster.yaml`` that this collection ignores."""

SHAPE_HINT = "GTSfM's cluster.yaml is a mapping with a 'workers' list"

_HOST_LABEL = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")
_ALLOWED_HOST_CHARS = re.compile(r"^[A-Za-z0-9.-]+$")
_DOTTED_NUMBERS = re.compile(r"^[0-9.]+$")
_NUMERIC_LABELS = re.compile(r"^(?:0[xX][0-9A-Fa-f]*|[0-9]+)(?:\.(?:0[xX][0-9A-Fa-f]*|[0-9]+))*\.?$")
_MAX_HOST_LENGTH = 253
_MAX_LABEL_LENGTH = 63


class WorkerSpec(t.TypedDict, total=False):
    """One worker slot, in cluster.yaml order."""

    host: str
    gpus: int
    system_memory: str | int


class HostSpec(t.TypedDict, total=False):
    """One distinct host, in order of first appearance."""

    name: str
    index: int
    slots: int
    slot_settings: list[dict[str, t.Any]]
    gpus: int
    system_memory: str | int


class ClusterSpec(t.TypedDict):
    """The normalised cluster: what the inventory plugin caches and populates from."""

    source: str
    scheduler: str
    workers: list[WorkerSpec]
    worker_entries: list[t.Any]
    hosts: list[HostSpec]


class ClusterConfigError(Exception):
    """A cluster.yaml that GTSfM (or this collection) cannot use; the message says where and how to fix it."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class ClusterConfigSyntaxError(ClusterConfigError):
    """The file is not valid YAML (so no YAML-reading tool would accept it either)."""


def _describe(value: t.Any) -> str:
    """Name a YAML value's type the way a cluster.yaml author would."""
    if value is None:
        return "null (nothing)"
    if isinstance(value, bool):
        return f"a boolean ({'true' if value else 'false'})"
    if isinstance(value, int):
        return f"a number ({value})"
    if isinstance(value, float):
        return f"a number ({value!r})"
    if isinstance(value, str):
        return f"a string ({value!r})"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return f"a {type(value).__name__} ({value!r})"


_REPR = reprlib.Repr()
_REPR.maxlevel = 2
_REPR.maxdict = _REPR.maxlist = _REPR.maxtuple = _REPR.maxset = 4
_REPR.maxstring = _REPR.maxother = 60


def _short(value: t.Any) -> str:
    """A short repr of an entry for messages; bounded work whatever the entry holds (YAML aliases included)."""
    text = repr(value[:200]) if isinstance(value, str) else _REPR.repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return text


def _suggest(key: str, known: t.Sequence[str]) -> str:
    matches = difflib.get_close_matches(key, known, n=1)
    return f" (did you mean '{matches[0]}'?)" if matches else ""


def host_name_problem(name: str) -> str | None:
    """Say what is wrong with ``name`` as an SSH host, or return None if it is usable.

    Valid: RFC 1123 host names (letters, digits, hyphens; labels of 1 to 63
    characters that neither start nor end with a hyphen; at most 253
    characters), ``localhost``, IPv4 and IPv6 address literals (IPv6 without
    brackets, an optional ``%zone`` is allowed).  The returned text is
    "<what is wrong>. Fix: <what to do>".
    """
    if name == "":
        return "the host name is empty. Fix: write the machine's host name or IP address, or delete the entry"
    if name != name.strip():
        return (
            "the host name has leading or trailing whitespace. "
            "Fix: remove the spaces around the name (or the quotes that keep them)"
        )
    if any(ch.isspace() for ch in name):
        return (
            "the host name contains whitespace. "
            'Fix: write one host per list entry ("- host1" and "- host2" on separate lines)'
        )
    if "@" in name:
        user, _sep, rest = name.rpartition("@")
        return (
            f"'{name}' carries an SSH user ('{user}'); GTSfM connects with the user running it. Fix: write only "
            f"'{rest}' here and put the SSH user in the inventory option ssh_user, not in cluster.yaml"
        )
    if "/" in name:
        return (
            f"'{name}' looks like a URL or a network range, not a host. "
            "Fix: write one machine's host name or IP address per entry"
        )
    if any(ch in name for ch in "{}*?") or (not name.startswith("[") and any(ch in name for ch in "[]")):
        return (
            f"'{name}' contains a pattern character; cluster.yaml lists hosts literally (no ranges, globs or "
            "templates). Fix: list every host on its own entry"
        )
    if name.startswith("[") and "]" in name:
        inner, _sep, port = name[1:].partition("]")
        if port.startswith(":"):
            return (
                f"'{name}' carries an SSH port; GTSfM passes host names to SSH as they are. Fix: write only '{inner}' "
                "here and put the port in the inventory option ssh_port (or ~/.ssh/config)"
            )
        return f"'{name}' puts an IPv6 address in brackets. Fix: write the address without brackets ('{inner}')"
    if ":" in name:
        try:
            ipaddress.IPv6Address(name)
        except ValueError:
            head, _sep, tail = name.rpartition(":")
            if name.count(":") == 1 and tail.isdigit():
                return (
                    f"'{name}' carries an SSH port; GTSfM passes host names to SSH as they are. Fix: write only "
                    f"'{head}' here and put the port in the inventory option ssh_port (or ~/.ssh/config)"
                )
            return f"'{name}' is not a valid IPv6 address. Fix: correct the address (written without brackets or port)"
        return None
    if _NUMERIC_LABELS.match(name) and not _DOTTED_NUMBERS.match(name):
        return (
            f"'{name}' is made of numbers only (hex or decimal), which resolvers may read as an IPv4 address "
            "(inet_aton takes '0x7f.1' for 127.0.0.1). Fix: write the address as four decimal numbers "
            "(e.g. 10.0.0.5) or use the machine's host name"
        )
    if _DOTTED_NUMBERS.match(name):
        try:
            ipaddress.IPv4Address(name)
        except ValueError:
            return (
                f"'{name}' looks like an IPv4 address but is not one (four numbers 0-255 separated by dots). "
                "Fix: correct the address"
            )
        return None
    if name.startswith(".") or name.endswith("."):
        return f"'{name}' starts or ends with a dot. Fix: write the host name without leading or trailing dots"
    if ".." in name:
        return f"'{name}' has an empty label (two dots in a row). Fix: remove the extra dot"
    if not _ALLOWED_HOST_CHARS.match(name):
        bad = sorted(set(ch for ch in name if not re.match(r"[A-Za-z0-9.-]", ch)))
        hint = ""
        if "_" in bad:
            hint = " ('_' is not allowed in host names by RFC 1123)"
        return (
            f"'{name}' contains {', '.join(repr(ch) for ch in bad)}{hint}; host names may only use letters, digits, "
            "'-' and '.'. Fix: use the machine's DNS name or IP address"
        )
    if len(name) > _MAX_HOST_LENGTH:
        return (
            f"'{name[:40]}...' is {len(name)} characters long; host names are at most {_MAX_HOST_LENGTH}. Fix: use "
            "a shorter name or the IP address"
        )
    for label in name.split("."):
        if len(label) > _MAX_LABEL_LENGTH:
            return (
                f"'{name}' has a label of {len(label)} characters ('{label[:20]}...'); each dot-separated part is at "
                f"most {_MAX_LABEL_LENGTH}. Fix: use a shorter name or the IP address"
            )
        if not _HOST_LABEL.match(label):
            return (
                f"'{name}' has a part ('{label}') that starts or ends with '-'. "
                "Fix: correct the host name (parts must start and end with a letter or digit)"
            )
    return None


def _entry_label(source: str, index: int, entry: t.Any) -> str:
    if isinstance(entry, dict) and isinstance(entry.get("host"), str):
        shown = entry["host"]
    else:
        shown = entry
    return f"{source}: workers[{index}] ({_short(shown)})"


def _check_host(source: str, index: int, entry: t.Any, host: t.Any) -> str:
    if not isinstance(host, str):
        if isinstance(entry, dict):
            raise ClusterConfigError(
                f"{source}: workers[{index}]: 'host' must be a host name string, got {_describe(host)}. "
                "Fix: write the machine's host name or IP address (quote it if YAML reads it as something else)."
            )
        raise ClusterConfigError(
            f"{source}: workers[{index}]: an entry must be a host name or a mapping with a 'host' key, got "
            f"{_describe(host)}. "
            "Fix: write '- hostname' or '- host: hostname' (quote names YAML would read as numbers)."
        )
    problem = host_name_problem(host)
    if problem is not None:
        raise ClusterConfigError(f"{source}: workers[{index}] ({_short(host)}): {problem}.")
    return host


def _check_gpus(source: str, index: int, entry: t.Any, value: t.Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        got = repr(value) if isinstance(value, int) and not isinstance(value, bool) else _describe(value)
        raise ClusterConfigError(
            f"{_entry_label(source, index, entry)}: 'gpus' must be a non-negative integer, got {got}. Fix: set gpus to "
            "0 or more, or remove it."
        )
    return value


def _check_system_memory(source: str, index: int, entry: t.Any, value: t.Any) -> str | int:
    valid = (isinstance(value, str) and value.strip() != "") or (
        isinstance(value, int) and not isinstance(value, bool) and value >= 0
    )
    if not valid:
        raise ClusterConfigError(
            f"{_entry_label(source, index, entry)}: 'system_memory' must be a size string such as \"10GB\" or a number "
            f"of bytes, got {_describe(value)}. "
            'Fix: set system_memory to a value like "10GB", or remove it.'
        )
    return value


# sshd's default MaxStartups (10:30:100): beyond 10 connections still logging in at once, it drops new ones at random.
SSHD_MAX_STARTUPS = 10


def _startup_crowds(source: str, hosts: list[HostSpec], scheduler: str) -> list[str]:
    """A warning per host that GTSfM's runner would hit with more SSH logins at once than sshd admits by default.

    Dask's SSHCluster opens one connection per entry of the list, all at once (the scheduler's host one more, for
    the scheduler): a host listed 12 times takes 12 logins in the same instant.
    """
    out = []
    for host in hosts:
        logins = host["slots"] + (1 if host["name"] == scheduler else 0)
        if logins > SSHD_MAX_STARTUPS:
            out.append(
                f"{source}: '{host['name']}' is listed {host['slots']} times, so GTSfM's runner opens {logins} SSH "
                "logins to it at once, and sshd's default MaxStartups (10:30:100) drops some of those beyond "
                f"{SSHD_MAX_STARTUPS} (dask issue 5499): the cluster may start with workers missing. Fix: list it at "
                f"most {SSHD_MAX_STARTUPS - (1 if host['name'] == scheduler else 0)} times and give each worker more "
                "threads, or raise MaxStartups in that host's sshd_config."
            )
    return out


def _normalise_entry(source: str, index: int, entry: t.Any, warnings: list[str]) -> tuple[WorkerSpec, t.Any]:
    """Return (normalised worker, entry as written minus unknown keys)."""
    if isinstance(entry, str):
        host = _check_host(source, index, entry, entry)
        return {"host": host}, host
    if not isinstance(entry, dict):
        _check_host(source, index, entry, entry)  # raises with the "neither string nor mapping" message
    if "host" not in entry:
        keys = ", ".join(_short(k) for k in list(entry)[:8]) or "no keys"
        raise ClusterConfigError(
            f"{source}: workers[{index}] ({_short(entry)}): a worker mapping needs a 'host' key (it has {keys}). "
            "Fix: add 'host: <host name>' to this entry, or write the entry as a plain host name."
        )
    host = _check_host(source, index, entry, entry["host"])
    worker: WorkerSpec = {"host": host}
    written: dict[str, t.Any] = {"host": host}
    if "gpus" in entry:
        worker["gpus"] = written["gpus"] = _check_gpus(source, index, entry, entry["gpus"])
    if "system_memory" in entry:
        worker["system_memory"] = written["system_memory"] = _check_system_memory(
            source, index, entry, entry["system_memory"]
        )
    for key in entry:
        if key not in WORKER_KEYS:
            warnings.append(
                f"{_entry_label(source, index, entry)}: unknown key {key!r} is "
                f"ignored{_suggest(key, WORKER_KEYS) if isinstance(key, str) else ''}; GTSfM reads only "
                f"{', '.join(WORKER_KEYS)} in a worker entry."
            )
    return worker, written


def normalise_cluster_config(data: t.Any, source: str) -> tuple[ClusterSpec, list[str]]:
    """Validate parsed cluster.yaml ``data`` top-down and return (spec, warnings).

    ``source`` names the file in messages.  Raises :class:`ClusterConfigError`
    on the first problem, with a message naming the file, the entry and the fix.
    """
    warnings: list[str] = []
    if data is None:
        raise ClusterConfigError(
            f"{source}: the file is empty. Fix: add a 'workers' list ({SHAPE_HINT}), e.g. 'workers: [host1, host2]'."
        )
    if not isinstance(data, dict):
        raise ClusterConfigError(
            f"{source}: the top level must be a mapping with a 'workers' key, got {_describe(data)}. "
            "Fix: start the file with 'workers:' followed by one '- host' line per worker."
        )
    if "workers" not in data:
        keys = ", ".join(_short(k) for k in list(data)[:8]) or "none"
        raise ClusterConfigError(
            f"{source}: there is no 'workers' key (top-level keys: {keys}). "
            "Fix: add a 'workers' list with one entry per worker, the scheduler first."
        )
    workers = data["workers"]
    if isinstance(workers, dict):
        raise ClusterConfigError(
            f"{source}: 'workers' must be a list of hosts, got a mapping. The 'workers: {{}}' form of GTSfM's "
            "local_scheduler_postgres_remote_cluster.yaml is filled at run time from the DASK_WORKERS "
            "environment variable and is not a static host list. "
            "Fix: list the machines under 'workers:', one '- host' line each, the scheduler first."
        )
    if workers is None or (isinstance(workers, list) and not workers):
        raise ClusterConfigError(
            f"{source}: 'workers' is empty. Fix: list at least one host under 'workers:' "
            "(the first one is the scheduler)."
        )
    if not isinstance(workers, list):
        raise ClusterConfigError(
            f"{source}: 'workers' must be a list of hosts, got {_describe(workers)}. "
            "Fix: write one '- host' line per worker under 'workers:'."
        )

    for key in data:
        if key == "workers":
            continue
        if key in IGNORED_TOP_LEVEL_KEYS:
            warnings.append(
                f"{source}: top-level key '{key}' (from GTSfM's local_scheduler_postgres_remote_cluster.yaml shape) "
                "is ignored; only 'workers' is used."
            )
        else:
            warnings.append(
                f"{source}: unknown top-level key {key!r} is "
                f"ignored{_suggest(key, ('workers',)) if isinstance(key, str) else ''}; GTSfM reads only 'workers'."
            )

    normalised: list[WorkerSpec] = []
    written_entries: list[t.Any] = []
    hosts: dict[str, HostSpec] = {}
    first_index: dict[str, int] = {}
    for index, entry in enumerate(workers):
        worker, written = _normalise_entry(source, index, entry, warnings)
        # Host names are case-insensitive (DNS): 'Node1' and 'node1' are one machine, so one inventory host
        # whose slots add up, under the first spelling.
        key = worker["host"].lower()
        if key in hosts and hosts[key]["name"] != worker["host"]:
            warnings.append(
                f"{source}: workers[{index}] ({worker['host']!r}) names the same host as workers[{first_index[key]}] "
                f"({hosts[key]['name']!r}): host names are case-insensitive, "
                f"so both are slots of '{hosts[key]['name']}'. Fix: spell the host the same way in every entry."
            )
            worker["host"] = hosts[key]["name"]
        first_index.setdefault(key, index)
        normalised.append(worker)
        written_entries.append(written)
        settings = {key: value for key, value in worker.items() if key != "host"}
        name = worker["host"]
        if key not in hosts:
            host_spec: HostSpec = {"name": name, "index": index, "slots": 0, "slot_settings": []}
            if "gpus" in worker:
                host_spec["gpus"] = worker["gpus"]
            if "system_memory" in worker:
                host_spec["system_memory"] = worker["system_memory"]
            hosts[key] = host_spec
        hosts[key]["slots"] += 1
        hosts[key]["slot_settings"].append(settings)

    problem = gpu_path_problem(written_entries)
    if problem:
        raise ClusterConfigError(f"{source}: {problem}")
    warnings.extend(_startup_crowds(source, list(hosts.values()), normalised[0]["host"]))

    spec: ClusterSpec = {
        "source": source,
        "scheduler": normalised[0]["host"],
        "workers": normalised,
        "worker_entries": written_entries,
        "hosts": list(hosts.values()),
    }
    return spec, warnings


if HAS_YAML:

    class _UniqueKeySafeLoader(yaml.SafeLoader):  # pylint: disable=too-many-ancestors
        """SafeLoader that refuses duplicate mapping keys (PyYAML silently keeps the last one)."""

        def construct_mapping(self, node: t.Any, deep: bool = False) -> dict[t.Any, t.Any]:
            seen: dict[t.Any, t.Any] = {}
            for key_node, _value_node in node.value:
                key = self.construct_object(key_node, deep=deep)
                try:
                    duplicate = key in seen
                except TypeError:
                    duplicate = False
                if duplicate:
                    raise yaml.constructor.ConstructorError(
                        "while constructing a mapping",
                        node.start_mark,
                        f"found duplicate key {key!r} (first at line {seen[key].line + 1})",
                        key_node.start_mark,
                    )
                try:
                    seen[key] = key_node.start_mark
                except TypeError:
                    pass
            return super().construct_mapping(node, deep=deep)
else:  # pragma: no cover
    _UniqueKeySafeLoader = None  # type: ignore[assignment,misc]


MAX_EXPANDED_NODES = 1_000_000
"""YAML aliases may repeat a node; beyond this many values once expanded, a file is refused as an alias bomb."""


def _check_expansion(root: t.Any, source: str) -> None:
    """Refuse a document whose aliases expand to more values than any cluster config needs.

    Counts each node's expanded size once (aliases share node objects), so the check is linear in the file even
    for a "billion laughs" file, whose expansion is what would hang or eat memory later.
    """
    sizes: dict[int, int] = {}
    order: list[t.Any] = []
    stack = [root]
    seen: set[int] = set()
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        order.append(node)
        if isinstance(node, yaml.SequenceNode):
            stack.extend(node.value)
        elif isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                stack.extend((key_node, value_node))
    for node in reversed(order):
        if isinstance(node, yaml.SequenceNode):
            children = node.value
        elif isinstance(node, yaml.MappingNode):
            children = [child for pair in node.value for child in pair]
        else:
            children = []
        # Children are sized before their parents, except in a cycle, which counts as the limit.
        total = 1 + sum(sizes.get(id(child), MAX_EXPANDED_NODES) for child in children)
        sizes[id(node)] = min(total, MAX_EXPANDED_NODES + 1)
    if sizes[id(root)] > MAX_EXPANDED_NODES:
        raise ClusterConfigError(
            f"{source}: its YAML aliases (*name) expand to more than {MAX_EXPANDED_NODES} values, far more than a "
            "cluster config holds (a 'billion laughs' file). Fix: write the workers out without nested aliases."
        )


def parse_cluster_yaml(text: str, source: str) -> t.Any:
    """Parse ``text`` with a safe YAML loader; turn syntax errors into :class:`ClusterConfigError` with the line."""
    if not HAS_YAML:  # pragma: no cover
        raise ClusterConfigSyntaxError(
            f"{source}: cannot read YAML: the Python module PyYAML is not installed. "
            "Fix: install PyYAML (it ships with ansible-core)."
        )
    try:
        loader = _UniqueKeySafeLoader(text)
        try:
            node = loader.get_single_node()
            if node is None:
                return None
            _check_expansion(node, source)
            return loader.construct_document(node)
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "invalid YAML"
        where = ""
        if mark is not None:
            where = f" at line {mark.line + 1}, column {mark.column + 1}"
        raise ClusterConfigSyntaxError(
            f"{source}: YAML syntax error{where}: {problem}. Fix the YAML syntax ({SHAPE_HINT})."
        ) from exc
    except yaml.YAMLError as exc:
        raise ClusterConfigSyntaxError(
            f"{source}: YAML syntax error: {exc}. Fix the YAML syntax ({SHAPE_HINT})."
        ) from exc


def load_cluster_config(text: str, source: str) -> tuple[ClusterSpec, list[str]]:
    """Parse and normalise the text of a cluster.yaml; return (spec, warnings) or raise :class:`ClusterConfigError`."""
    return normalise_cluster_config(parse_cluster_yaml(text, source), source)
