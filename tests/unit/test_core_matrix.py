# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""scripts/core_matrix.py, and the claims it proves: requires_ansible, the roles' floors and the README agree with
tests/cores.txt, the list of ansible-core lines `make test-cores` runs."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))
import core_matrix  # noqa: E402  pylint: disable=wrong-import-position


def version(text: str) -> tuple[int, ...]:
    return tuple(int(x) for x in text.split("."))


def test_the_claimed_floor_is_the_lowest_line_the_matrix_proves():
    # Issue 12: runtime.yml claimed >=2.16.0 while the plugin needed 2.19 and CI ran 2.19 only. Issue 25: every
    # line from the floor up is in tests/cores.txt, which make test-cores (in CI) runs.
    lines = core_matrix.read_lines()
    names = [e.line for e in lines]
    assert names == sorted(names, key=version)
    floor = yaml.safe_load((ROOT / "meta" / "runtime.yml").read_text())["requires_ansible"]
    assert floor == f">={names[0]}.0", (floor, names)
    # No line skipped between the floor and the newest: each minor claimed is proven.
    minors = [version(n)[1] for n in names]
    assert minors == list(range(minors[0], minors[-1] + 1)), names
    for role_dir in sorted((ROOT / "roles").iterdir()):
        meta = yaml.safe_load((role_dir / "meta" / "main.yml").read_text())
        assert meta["galaxy_info"]["min_ansible_version"] == names[0], role_dir.name
    assert yaml.safe_load((ROOT / "galaxy.yml").read_text())["version"]


def test_the_default_tool_chain_runs_one_of_the_matrix_lines_with_its_pin():
    pins = {e.pin for e in core_matrix.read_lines()}
    default = next(
        line.strip()
        for line in (ROOT / "tests" / "requirements.txt").read_text().splitlines()
        if line.startswith("ansible-core==")
    )
    assert default in pins, (default, sorted(pins))


def test_the_docs_table_lists_every_line_with_its_pin_and_python():
    section = (ROOT / "docs" / "cores.md").read_text()
    rows = {m.group(1): m.group(0) for m in re.finditer(r"^\| (\d+\.\d+) \|.*$", section, re.MULTILINE)}
    lines = core_matrix.read_lines()
    assert sorted(rows) == sorted(e.line for e in lines)
    for entry in lines:
        assert entry.pin.split("==")[1] in rows[entry.line], entry.line
        assert f"Python {entry.python}" in rows[entry.line], entry.line


@pytest.mark.parametrize(
    "text",
    [
        "2.16 3.11\n",
        "2.16 3.11 ansible-core==2.18.1\n",
        "2.16 3.11 ansible-core>=2.16\n",
    ],
)
def test_a_malformed_cores_line_is_named_with_the_expected_shape(tmp_path: Path, text: str):
    path = tmp_path / "cores.txt"
    path.write_text("# comment\n" + text)
    with pytest.raises(SystemExit) as excinfo:
        core_matrix.read_lines(path)
    line = text.rstrip("\n")
    assert str(excinfo.value) == (
        f"core_matrix: {path}:2: expected '<line> <python> ansible-core==<line>.<patch>', e.g. '2.16 3.11 "
        f"ansible-core==2.16.19', got {line!r}"
    )


def test_a_missing_python_stops_the_matrix_naming_it_and_how_to_get_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    monkeypatch.setattr(core_matrix, "find_python", lambda minor: None if minor == "3.12" else ("3.11.7", "/py"))
    lines = [
        core_matrix.Line("2.19", "3.11", "ansible-core==2.19.14"),
        core_matrix.Line("2.20", "3.12", "ansible-core==2.20.10"),
    ]
    with pytest.raises(SystemExit) as excinfo:
        core_matrix.check_pythons(lines)
    assert excinfo.value.code == 2
    assert capsys.readouterr().err == (
        "core_matrix: ansible-core 2.20 needs a controller Python 3.12, and this machine has none (looked for "
        "python3.12 on PATH, in $PYENV_ROOT/versions/3.12.* and in /usr/local/bin and /usr/bin). Get one with "
        "'pyenv install 3.12' or your distribution's python3.12 package, or leave the line out: make test-cores "
        "CORES=<lines> (the lines are in tests/cores.txt).\n"
    )


def test_find_python_skips_interpreters_of_another_version(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    # A pyenv shim answers for another version (or fails) when the one asked for is not selected.
    shim = tmp_path / "python3.99"
    shim.write_text("#!/bin/sh\necho 3.11.7 /usr/bin/python3.11\n")
    shim.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setenv("PYENV_ROOT", str(tmp_path / "no-pyenv"))
    assert core_matrix.find_python("3.99") is None


def test_find_python_takes_pyenvs_newest_patch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    for patch in ("3.99.2", "3.99.10"):
        exe = tmp_path / "pyenv" / "versions" / patch / "bin" / "python3.99"
        exe.parent.mkdir(parents=True)
        exe.write_text(f"#!/bin/sh\necho {patch} {exe}\n")
        exe.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    monkeypatch.setenv("PYENV_ROOT", str(tmp_path / "pyenv"))
    assert core_matrix.find_python("3.99") == ("3.99.10", str(tmp_path / "pyenv/versions/3.99.10/bin/python3.99"))


RECAP = """\
PLAY RECAP *********************************************************************
localhost                  : ok=1    changed=0    unreachable=0    failed=0    skipped=0    rescued=0    ignored=0
node1                      : ok=40   changed=12   unreachable=0    failed=0    skipped=34   rescued=0    ignored=0
node2                      : ok=28   changed=0    unreachable=0    failed=1    skipped=19   rescued=0    ignored=0
"""


def test_recap_counts_per_host(tmp_path: Path):
    log = tmp_path / "smoke.log"
    log.write_text("TASK [x] ***\nok: [node1]\n\n" + RECAP)
    counts = core_matrix.recap(log)
    assert counts["node1"] == {"ok": 40, "changed": 12, "unreachable": 0, "failed": 0}
    assert counts["node2"]["failed"] == 1
    assert set(counts) == {"localhost", "node1", "node2"}


def test_judge_a_first_run_wants_success_and_changes_on_every_node():
    counts = {
        "node1": {"ok": 9, "changed": 3, "unreachable": 0, "failed": 0},
        "node2": {"ok": 9, "changed": 0, "unreachable": 0, "failed": 0},
        "node3": {"ok": 1, "changed": 1, "unreachable": 1, "failed": 0},
    }
    assert core_matrix.judge("smoke", 4, counts, ["node1", "node2", "node3", "node4"]) == [
        "exit status 4",
        "node4: no recap",
        "node3: unreachable=1",
        "node2: changed=0 on a fresh bed",
    ]
    good = {h: {"ok": 9, "changed": 2, "unreachable": 0, "failed": 0} for h in ("node1", "node2")}
    assert core_matrix.judge("smoke", 0, good, ["node1", "node2"]) == []


def test_judge_a_second_run_wants_changed_zero_everywhere():
    counts = {
        "localhost": {"ok": 1, "changed": 0, "unreachable": 0, "failed": 0},
        "node1": {"ok": 9, "changed": 1, "unreachable": 0, "failed": 0},
        "node2": {"ok": 9, "changed": 0, "unreachable": 0, "failed": 0},
    }
    assert core_matrix.judge("idempotent", 0, counts, ["node1", "node2"]) == ["node1: changed=1"]
    counts["node1"]["changed"] = 0
    assert core_matrix.judge("idempotent", 0, counts, ["node1", "node2"]) == []


def test_table_has_a_row_per_core_and_a_column_per_check(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(core_matrix, "CACHE", tmp_path)
    entry = core_matrix.Line(
        "2.16",
        "3.11",
        "ansible-core==2.16.19",
        python_version="3.11.7",
        core_version="2.16.19",
        results={"unit": "pass", "smoke": "FAIL"},
        seconds=90,
    )
    assert core_matrix.table([entry], ["unit", "smoke", "idempotent"]).splitlines() == [
        "core     python  unit  smoke  idempotent  deprecations  minutes",
        "-------  ------  ----  -----  ----------  ------------  -------",
        "2.16.19  3.11.7  pass  FAIL   -           0             1.5",
    ]


# The meta actions ansible-core 2.16 (the floor) knows; 2.18 added end_role.
FLOOR_META_ACTIONS = {
    "noop",
    "flush_handlers",
    "refresh_inventory",
    "clear_facts",
    "clear_host_errors",
    "end_play",
    "end_host",
    "end_batch",
    "role_complete",
    "reset_connection",
}


def tasks_in(node):
    """Every task mapping in a parsed task or playbook file, blocks and plays included."""
    if isinstance(node, list):
        for item in node:
            yield from tasks_in(item)
    elif isinstance(node, dict):
        yield node
        for key in ("block", "rescue", "always", "tasks", "pre_tasks", "post_tasks", "handlers"):
            yield from tasks_in(node.get(key))


def test_no_task_uses_a_meta_action_the_floor_lacks():
    # Issue 25: model_weights ended itself with meta end_role, which ansible-core 2.16 refuses at run time.
    files = (
        sorted(ROOT.glob("roles/*/tasks/*.yml"))
        + sorted(ROOT.glob("roles/*/handlers/*.yml"))
        + sorted(ROOT.glob("playbooks/*.yml"))
    )
    used = {}
    for path in files:
        for task in tasks_in(yaml.safe_load(path.read_text())):
            for key in ("meta", "ansible.builtin.meta", "ansible.legacy.meta"):
                if key in task:
                    used.setdefault(str(task[key]), []).append(str(path.relative_to(ROOT)))
    assert {action: where for action, where in used.items() if action not in FLOOR_META_ACTIONS} == {}
