"""gtsfm.cluster.follow as ansible-playbook runs it, on the controller itself (connection local): lines, results."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from localhost_play import run_localhost  # tests/, put on sys.path by conftest.py

ROOT = Path(__file__).resolve().parents[4]
# Writes a progress record the way the modules do, for 3 s, then exits 0.
WRITER = (
    "import sys, time; sys.path.insert(0, {utils!r}); import _progress; "
    "w = _progress.Writer({rec!r}, run_id='r1', what='x', total=300, interval=0.2); "
    "[(w.update(done=i * 10, phase='sending'), time.sleep(0.1)) for i in range(30)]; w.finish(msg='ok')"
)


def play(tmp_path: Path, tasks: str, **extra: str) -> subprocess.CompletedProcess:
    book = tmp_path / "play.yml"
    book.write_text("- hosts: localhost\n  gather_facts: false\n  tasks:\n" + tasks)
    return run_localhost(book, ANSIBLE_ASYNC_DIR=str(tmp_path / "async"), **extra)


def test_follow_prints_progress_lines_and_returns_the_step_result(tmp_path):
    rec = tmp_path / "rec.json"
    code = WRITER.format(utils=str(ROOT / "plugins" / "module_utils"), rec=str(rec))
    out = play(
        tmp_path,
        f"""
    - name: Start
      ansible.builtin.command:
        argv: [{sys.executable!r}, -c, {code!r}]
      async: 60
      poll: 0
      register: started
    - name: Follow
      gtsfm.cluster.follow:
        label: the copy
        job: "{{{{ started }}}}"
        status: {str(rec)!r}
        run_id: r1
        poll: 0.2
        report_every: 0.5
      register: followed
    - name: Show
      ansible.builtin.debug:
        msg: "polls={{{{ followed.polls }}}} rc={{{{ followed.result.rc }}}} changed={{{{ followed.changed }}}}"
""",
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "localhost: the copy sending, " in out.stdout and " / 300 B, " in out.stdout, out.stdout
    assert out.stdout.count("localhost: the copy done, 290 / 300 B, after") == 1, out.stdout
    assert "rc=0 changed=True" in out.stdout and "FAILED" not in out.stdout
    assert not list((tmp_path / "async").iterdir())  # the async result file is removed once read


def test_a_failed_step_fails_the_task_with_its_message(tmp_path):
    out = play(
        tmp_path,
        """
    - name: Start
      ansible.builtin.command:
        argv: [sh, -c, 'echo disk full >&2; exit 3']
      async: 60
      poll: 0
      register: started
    - name: Follow
      gtsfm.cluster.follow:
        label: the build
        job: "{{ started }}"
""",
    )
    assert out.returncode == 2, out.stdout
    # The step's own message after its label (2.21's command module words it "The command exited with a ...").
    assert re.search(r"the build: (The command exited with a )?non-zero return code", out.stdout), out.stdout
    assert "FAILED - RETRYING" not in out.stdout


def test_bad_input_names_the_field_and_a_skipped_start_is_skipped(tmp_path):
    out = play(
        tmp_path,
        """
    - name: Skipped start
      ansible.builtin.command: "true"
      when: false
      async: 60
      poll: 0
      register: started
    - name: Follow nothing
      gtsfm.cluster.follow:
        label: nothing
        job: "{{ started }}"
    - name: Follow a non-job
      gtsfm.cluster.follow:
        label: bad
        job: {rc: 0}
""",
    )
    assert "skipping: [localhost]" in out.stdout, out.stdout
    # Words, not lines: 2.16-2.18's YAML result format folds a long message.
    assert "follow.job must be the registered result of a task started with async and poll: 0" in " ".join(
        out.stdout.split()
    ), out.stdout
