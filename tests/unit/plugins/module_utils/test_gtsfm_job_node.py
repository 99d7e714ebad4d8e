# -*- coding: utf-8 -*-
# Copyright: gtsfm.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests of gtsfm_job's node half: the one rule for a tagged process, and the probe and cleanup built on it."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ansible_collections.gtsfm.cluster.plugins.module_utils import _gtsfm_job_node as node
from ansible_collections.gtsfm.cluster.plugins.module_utils import _progress as progress


def dask(config) -> bytes:
    """DASK_INTERNAL_INHERIT_CONFIG as dask.config.serialize writes it: urlsafe base64 of JSON."""
    return base64.urlsafe_b64encode(json.dumps(config).encode())


def environ(*items: bytes) -> bytes:
    return b"\0".join(items) + b"\0"


@pytest.mark.parametrize(
    "env, expect",
    [
        (environ(b"GTSFM_JOB_RUN_ID=R1", b"PATH=/bin"), (["R1"], [])),
        (environ(b"GTSFM_JOB_RUN_ID=R1", b"GTSFM_JOB_ORIGIN=gtsfm_job {}"), (["R1"], ["gtsfm_job {}"])),
        (
            environ(b"DASK_INTERNAL_INHERIT_CONFIG=" + dask({"gtsfm-job-run-id": "R2", "gtsfm_job_origin": "o"})),
            (["R2"], ["o"]),
        ),
        # Dask's config reads DASK_* values with ast.literal_eval: a run id of digits comes back a number.
        (environ(b"DASK_INTERNAL_INHERIT_CONFIG=" + dask({"gtsfm_job_run_id": 123})), (["123"], [])),
        # Unpadded base64 (Dask strips nothing, but a copy through a shell may).
        (environ(b"DASK_INTERNAL_INHERIT_CONFIG=" + dask({"gtsfm_job_run_id": "R3"}).rstrip(b"=")), (["R3"], [])),
        (
            environ(b"GTSFM_JOB_RUN_ID=R1", b"DASK_INTERNAL_INHERIT_CONFIG=" + dask({"gtsfm_job_run_id": "R2"})),
            (["R1", "R2"], []),
        ),
        (environ(b"GTSFM_JOB_RUN_ID=R\xff1"), (["R\ufffd1"], [])),
    ],
)
def test_a_run_id_in_the_environment_or_in_dasks_config_tags_the_process(env, expect):
    assert node.tags_of(env) == expect


@pytest.mark.parametrize(
    "env",
    [
        b"",
        environ(b"PATH=/bin", b"HOME=/home/u"),
        environ(b"GTSFM_JOB_RUN_ID="),  # empty
        environ(b"GTSFM_JOB_RUN_ID=   "),
        environ(b"GTSFM_JOB_RUN_ID"),  # no '='
        environ(b"GTSFM_JOB_ORIGIN=gtsfm_job {}"),  # an origin alone names no run
        environ(b"DASK_INTERNAL_INHERIT_CONFIG=not base64 !!!"),
        environ(b"DASK_INTERNAL_INHERIT_CONFIG=" + base64.urlsafe_b64encode(b"\xff\xfe not utf-8")),
        environ(b"DASK_INTERNAL_INHERIT_CONFIG=" + base64.urlsafe_b64encode(b"{not json")),
        environ(b"DASK_INTERNAL_INHERIT_CONFIG=" + dask(["gtsfm_job_run_id", "R1"])),  # JSON, not a mapping
        environ(b"DASK_INTERNAL_INHERIT_CONFIG=" + dask({"gtsfm_job_run_id": None})),
        environ(b"DASK_INTERNAL_INHERIT_CONFIG=" + dask({"gtsfm_job_run_id": ["R1"]})),
        environ(b"DASK_INTERNAL_INHERIT_CONFIG=" + dask({"gtsfm_job_run_id": {"R1": 1}})),
        environ(b"DASK_INTERNAL_INHERIT_CONFIG=" + dask({"gtsfm_job_run_id": True})),
        environ(b"DASK_INTERNAL_INHERIT_CONFIG=" + dask({"gtsfm_job_run_id": ""})),
        environ(b"DASK_INTERNAL_INHERIT_CONFIG="),
        environ(b"XGTSFM_JOB_RUN_ID=R1", b"GTSFM_JOB_RUN_ID_X=R1"),
    ],
)
def test_malformed_or_missing_tags_are_no_tag_and_no_error(env):
    assert node.tags_of(env) is None


def fake_proc(root: Path, processes: dict[int, dict]) -> Path:
    """A /proc of processes {pid: {environ, cmdline, stat}} (a missing key: that file cannot be read)."""
    (root / "stat").write_bytes(b"cpu 1 2 3\nbtime 1700000000\nprocesses 9\n")
    (root / "self").mkdir()
    for pid, files in processes.items():
        (root / str(pid)).mkdir()
        for name, data in files.items():
            (root / str(pid) / name).write_bytes(data)
    return root


def stat_line(pid: int, start: int, comm: str = "python") -> bytes:
    return f"{pid} ({comm}) S 1 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 {start} 100 10\n".encode()


def test_probe_and_cleanup_agree_on_every_process_they_count(tmp_path, monkeypatch):
    tick = os.sysconf("SC_CLK_TCK")
    proc = fake_proc(
        tmp_path,
        {
            101: {
                "environ": environ(b"GTSFM_JOB_RUN_ID=R1"),
                "cmdline": b"python\0-m\0distributed.cli.dask_spec\0",
                "stat": stat_line(101, 500 * tick, "py (x) y"),
            },
            102: {
                "environ": environ(
                    b"DASK_INTERNAL_INHERIT_CONFIG=" + dask({"gtsfm_job_run_id": "R1", "gtsfm_job_origin": "o1"})
                ),
                "stat": stat_line(102, 400 * tick),
            },  # no cmdline: still counted
            103: {"environ": environ(b"GTSFM_JOB_RUN_ID=R2"), "cmdline": b"python\0"},  # no stat: still counted
            104: {"environ": environ(b"GTSFM_JOB_RUN_ID=", b"DASK_INTERNAL_INHERIT_CONFIG=garbage")},  # not tagged
            105: {"cmdline": b"python\0"},  # environ unreadable (another user's): not counted
            106: {"environ": environ(b"PATH=/bin")},
        },
    )
    found = node.tagged_processes(str(proc))
    assert sorted(found) == [101, 102, 103]
    assert found[101]["since"] == 1700000000 + 500 and found[101]["cmd"] == "python -m distributed.cli.dask_spec"
    assert found[102]["cmd"] == "" and found[103]["since"] is None
    count, runs = node.runs_here(str(proc))
    assert count == 3
    assert [(r["run_id"], r["count"], r["pids"], r["origins"], r["since"]) for r in runs] == [
        ("R1", 2, [101, 102], ["o1"], 1700000000 + 400),
        ("R2", 1, [103], [], None),
    ]
    killed = []
    monkeypatch.setattr(node.os, "kill", lambda pid, sig: killed.append((pid, sig)))
    report = node.cleanup(["R1", "R9"], str(proc), grace=0)
    # Every process the probe counts for R1, and no other.
    assert [e["pid"] for e in report["ended"]] == [p for r in runs if r["run_id"] == "R1" for p in r["pids"]]
    assert sorted({pid for pid, dummy in killed}) == [101, 102]


def test_cleanup_without_run_ids_ends_nothing(tmp_path):
    proc = fake_proc(tmp_path, {201: {"environ": environ(b"GTSFM_JOB_RUN_ID=R1")}})
    assert node.cleanup([], str(proc), grace=0) == {"ended": [], "remaining": []}


def test_the_program_text_runs_on_its_own_with_the_one_stat_parser(tmp_path):
    # As a node runs it: python -c TEXT, in a directory with no collection and no _progress.py to import.
    text = node.program_text()
    assert text.startswith("def stat_start(")
    out = subprocess.run(
        [sys.executable, "-I", "-c", text, "probe", "127.0.0.1", "9"],
        capture_output=True,
        text=True,
        check=True,
        cwd=str(tmp_path),
    ).stdout
    report = json.loads(out)
    assert report["python"] == sys.executable and isinstance(report["leftovers"], int) and "tcp" in report
    assert node.stat_start is progress.stat_start


def test_an_unknown_call_prints_the_usage_and_fails(tmp_path):
    ran = subprocess.run(
        [sys.executable, "-I", "-c", node.program_text(), "reboot"],
        capture_output=True,
        text=True,
        check=False,
        cwd=str(tmp_path),
    )
    assert ran.returncode == 2 and "python -c TEXT probe" in ran.stderr and ran.stdout == ""
