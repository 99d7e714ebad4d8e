"""gtsfm.cluster.weights_plan as ansible-playbook runs it on the controller: what it reads, what it refuses."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

from localhost_play import run_localhost  # tests/, put on sys.path by conftest.py

ROOT = Path(__file__).resolve().parents[4]
NODES = [{"name": "n1", "home": "/home/u", "home_id": None}, {"name": "n2", "home": "/home/u", "home_id": None}]


def shown(out: subprocess.CompletedProcess) -> str:
    """The play's output as words: 2.16-2.18's YAML result format folds long messages and doubles quotes."""
    return " ".join(out.stdout.split()).replace("''", "'")


def plan(tmp_path: Path, **args) -> tuple[subprocess.CompletedProcess, dict]:
    task = {
        "gtsfm.cluster.weights_plan": dict(
            {"checkout_dir": "~/gtsfm", "lock_file": str(tmp_path / "lock.json"), "nodes": NODES, "scheduler": "n1"},
            **args,
        ),
        "register": "plan",
    }
    book = tmp_path / "play.yml"
    book.write_text(
        json.dumps(
            [
                {
                    "hosts": "localhost",
                    "gather_facts": False,
                    "tasks": [
                        task,
                        {
                            "ansible.builtin.copy": {
                                "content": "{{ plan | to_json }}",
                                "dest": str(tmp_path / "plan.json"),
                            }
                        },
                    ],
                }
            ]
        )
    )
    out = run_localhost(book)
    result = json.loads((tmp_path / "plan.json").read_text()) if (tmp_path / "plan.json").exists() else {}
    return out, result


def test_reads_the_lock_and_hashes_what_the_controller_holds(tmp_path):
    held = tmp_path / "held" / "thirdparty" / "a.bin"
    held.parent.mkdir(parents=True)
    held.write_bytes(b"weights")
    files = [
        {"url": "https://example.org/a.bin", "dest": "thirdparty/a.bin"},
        {"url": "https://example.org/b.bin", "dest": "thirdparty/b.bin"},
    ]
    pin = hashlib.sha256(b"b").hexdigest()
    (tmp_path / "lock.json").write_text(json.dumps({"version": 1, "files": {files[1]["url"]: {"sha256": pin}}}))
    out, result = plan(tmp_path, files=files, controller_dir=str(tmp_path / "held"))
    assert out.returncode == 0, out.stdout + out.stderr
    assert result["changed"] is False and len(result["run_id"]) > 0
    assert [e["name"] for e in result["held"]] == ["thirdparty/a.bin"]
    assert result["held"][0]["found_sha256"] == hashlib.sha256(b"weights").hexdigest()
    assert [(e["name"], e["sha256"]) for e in result["download"]] == [("thirdparty/b.bin", pin)]
    assert result["entries"][0]["path"] == "/home/u/gtsfm/thirdparty/a.bin"


def test_bad_settings_stop_before_anything_with_every_problem_named(tmp_path):
    out, _result = plan(tmp_path, sets=["superglue"], fetch_on="ftp", poll_delay=0)
    assert out.returncode != 0
    assert "model_weights_fetch_on 'ftp' must be scheduler or controller." in shown(out)
    assert "model_weights_poll_delay 0 must be a whole number of 1 or more." in shown(out)


def test_an_unreadable_lock_file_is_named(tmp_path):
    (tmp_path / "lock.json").write_text("{not json")
    out, _result = plan(tmp_path, sets=["d2net"])
    assert out.returncode != 0
    assert "lock.json: not valid JSON" in shown(out) and "Traceback" not in out.stdout + out.stderr
