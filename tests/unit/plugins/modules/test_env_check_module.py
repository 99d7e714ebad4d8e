# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""env_check's main(): every host over a stand-in ssh (it runs the command here), grouped lines, dot on the first."""

from __future__ import annotations

import os

import pytest
from ansible.module_utils import basic
from scratch_venv import scratch_venv  # tests/, put on sys.path by conftest.py

from ansible_collections.gtsfm.cluster.plugins.modules.env_check import main

FAKE_SSH = """#!/bin/sh
while [ "$1" != "--" ]; do shift; done
shift
host=$1
shift
[ "$host" = down ] && { echo "ssh: connect to host down port 22: Connection refused" >&2; exit 255; }
exec sh -c "$1"
"""


@pytest.fixture
def env(tmp_path, monkeypatch):
    """A venv with a package that loads a missing library, and a stand-in ssh first on PATH."""
    root = tmp_path / "env"
    site = scratch_venv(root)
    os.makedirs(os.path.join(site, "needs_absent"))
    with open(os.path.join(site, "needs_absent", "__init__.py"), "w") as f:
        f.write("import ctypes\nctypes.CDLL('libgtsfm-absent.so.7')\n")
    tools = tmp_path / "tools"
    tools.mkdir()
    (tools / "ssh").write_text(FAKE_SSH)
    (tools / "ssh").chmod(0o755)
    monkeypatch.setenv("PATH", f"{tools}:{os.environ['PATH']}")
    return str(root / "bin" / "python")


def test_refuses_naming_hosts_library_and_dot(env, run_module):
    failed, result = run_module(
        main,
        {
            "python": env,
            "workers": ["n1", {"host": "n2"}, "n1", "down"],
            "imports": ["json", "needs_absent"],
            "graphviz_fix": ", or set y=ignore",
        },
    )
    assert failed, result
    assert result["msg"].startswith(
        f"env_check: {env} on 3 of 3 nodes does not hold what the job needs (checked from n1 over SSH as Dask starts "
        "it; nothing was started):\n- n1, n2: import needs_absent fails: libgtsfm-absent.so.7 is missing"
    )
    assert "\n- down: unreachable over SSH" in result["msg"]
    assert "\n- n1: Graphviz dot is not on PATH" in result["msg"] and "or set y=ignore." in result["msg"]
    assert sorted(result["nodes"]) == ["down", "n1", "n2"] and "Traceback" not in result["msg"]


def test_passes_and_warns_about_dot_when_asked(env, run_module, monkeypatch):
    warned = []
    monkeypatch.setattr(basic.AnsibleModule, "warn", lambda self, text: warned.append(text))
    failed, result = run_module(main, {"python": env, "workers": ["n1", "n2"], "imports": ["json"], "graphviz": "warn"})
    assert not failed and not result["changed"] and result["errors"] == [], result
    assert [w for w in warned if w.startswith("env_check: n1: Graphviz dot is not on PATH")]
    failed, result = run_module(main, {"python": env, "workers": ["n1"], "imports": ["json"], "graphviz": "ignore"})
    assert not failed and "dot" not in result["nodes"]["n1"]


@pytest.mark.parametrize(
    "args, text",
    [
        ({"workers": [], "python": "/x/python"}, "env_check: workers is empty"),
        ({"workers": ["a b"], "python": "/x/python"}, "env_check: workers[0] ('a b') is not a host name"),
        (
            {"workers": ["n1"], "python": "~/env/bin/python"},
            "env_check: python '~/env/bin/python' is not an absolute path",
        ),
    ],
)
def test_bad_input_is_refused(args, text, run_module):
    failed, result = run_module(main, args)
    assert failed and result["msg"].startswith(text), result
