"""python_env's action plugin as ansible-playbook runs it (connection local): a probe the stage's read (or an earlier
probe) made with the task's own options is answered on the controller; any other probe, or any other action, runs."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from localhost_play import run_localhost  # tests/, put on sys.path by conftest.py


def play(tmp_path: Path, tasks: str) -> dict:
    """Run the tasks on localhost after the stage's read; every registered result by name."""
    book = tmp_path / "play.yml"
    read = f"""
    - name: Read
      gtsfm.cluster.cluster_node_info:
        host_key_types: []
        python_env: {{prefix: "~/env", requirements: [dask], python: {sys.executable!r}}}
      register: read
"""
    keep = """
    - name: Keep the results
      ansible.builtin.copy:
        content: "{{ dict(names | zip(names | map('extract', vars))) | to_json }}"
        dest: "{{ lookup('env', 'HOME') }}/results.json"
        mode: "0600"
      vars:
        names: [read, same, other, earlier, failed, built]
"""
    book.write_text("- hosts: localhost\n  gather_facts: false\n  tasks:\n" + read + tasks + keep)
    out = run_localhost(book, HOME=str(tmp_path))
    assert out.returncode == 0, out.stdout + out.stderr
    return json.loads((tmp_path / "results.json").read_text())


def test_a_probe_the_read_answers_makes_no_remote_call_and_any_other_runs(tmp_path):
    probe = f"""
      gtsfm.cluster.python_env:
        prefix: "{tmp_path}/env"
        requirements: [dask]
        python: {sys.executable!r}
        min_free_mb: 1
        option_names: {{prefix: conda_env_prefix}}"""
    results = play(
        tmp_path,
        f"""
    - name: Probe with the read's options
{probe}
        observed: "{{{{ read.python_env }}}}"
      register: same
    - name: Probe with other requirements
      gtsfm.cluster.python_env:
        prefix: "~/env"
        requirements: [dask, distributed]
        python: {sys.executable!r}
        observed: "{{{{ read.python_env }}}}"
      register: other
    - name: Probe from the earlier probe's result
      gtsfm.cluster.python_env:
        prefix: "~/env"
        requirements: [dask, distributed]
        python: {sys.executable!r}
        observed: "{{{{ other }}}}"
      register: earlier
    - name: Probe where the read failed
{probe}
        observed: {{error: "python_env: the interpreter is missing"}}
      register: failed
    - name: Build in the background
      gtsfm.cluster.python_env:
        action: build
        prefix: "~/env"
        requirements: []
        python: {sys.executable!r}
        manager: archive
        archive: /nonexistent.tar
        observed: "{{{{ read.python_env }}}}"
      async: 30
      poll: 0
      register: built
""",
    )
    read = results["read"]["python_env"]
    same = results["same"]
    assert same["decided_from"] == "observed" and not same["changed"]
    assert {k: same[k] for k in read} == read and "invocation" not in same
    assert "decided_from" not in results["other"] and results["other"]["read_with"]["requirements"] == [
        "dask",
        "distributed",
    ]
    assert results["earlier"]["decided_from"] == "observed"
    assert results["earlier"]["fingerprint"] == results["other"]["fingerprint"] != read["fingerprint"]
    assert "decided_from" not in results["failed"] and results["failed"]["state"] == "missing"
    # Another action never takes the read, and runs in the background as asked.
    assert results["built"]["ansible_job_id"] and "decided_from" not in results["built"]
