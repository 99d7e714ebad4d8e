"""conda_env + bashrc_init on real nodes, air-gapped: the uv manager from a wheelhouse the controller serves.

The controller's wheelhouse (scripts/testbed builds it from PyPI) is served on the bed network by a small HTTP
server this test starts, which counts what it answers. Acceptance of issue 15, on N=3 and N=3 with a shared home:
- each wheel (uv's included) is fetched exactly once on the first run, whatever N; a second run reports
  changed=0 and fetches nothing;
- a non-interactive `ssh HOST 'command -v python; python -c "import dask, distributed, asyncssh"'` from the
  scheduler finds the same env python on every node, with identical package lists;
- a Dask SSHCluster started on the scheduler without remote_python runs tasks on every node;
- users' ~/.bashrc lines survive and interactive shells still source them.
Run under the bed lock: flock /tmp/gtsfm-bed.lock .venv/bin/python -m pytest tests/multihost/test_conda_env.py
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import subprocess
import sys
from pathlib import Path

import ansible_runner
import pytest
import yaml

from conftest import Bed, Run, remote_calls, run_testbed

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
from wheelhouse_server import serve  # noqa: E402  (scripts/ is not a package)

ROOT = Path(__file__).resolve().parents[2]
# ansible-playbook from the interpreter running the tests, whether or not its venv is on PATH.
ENV = {
    "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"),
    "PATH": str(Path(sys.executable).parent) + os.pathsep + os.environ["PATH"],
}
JOB = """
import json, socket, sys
from dask.distributed import Client, SSHCluster

def where(_):
    import dask, sys, socket
    return socket.gethostname().split(".")[0], sys.executable, dask.__version__

hosts = sys.argv[1:]
with SSHCluster(hosts, worker_options={"nthreads": 1, "n_workers": 1},
                scheduler_options={"dashboard_address": None}) as cluster:
    with Client(cluster) as client:
        client.wait_for_workers(len(hosts) - 1, timeout=120)
        workers = list(client.scheduler_info()["workers"])
        ran = [client.submit(where, w, workers=[w], pure=False).result(timeout=60) for w in workers]
print("RESULT " + json.dumps({"me": sys.executable, "ran": sorted(ran)}), flush=True)
"""
PACKAGES = (
    'python -c "import importlib.metadata as m; print(sorted((d.name.lower(), d.version) for d in m.distributions()))"'
)
CONDA_BLOCK = (
    "# >>> conda initialize >>>\n# !! Contents within this block are managed by 'conda init' !!\n"
    "__conda_setup=\"$('/nowhere/bin/conda' 'shell.bash' 'hook' 2> /dev/null)\"\n"
    'if [ $? -eq 0 ]; then\n    eval "$__conda_setup"\nfi\nunset __conda_setup\n'
    "# <<< conda initialize <<<\n"
)
# Shapes of ~/.bashrc (issue 15's acceptance), each ending in a line an interactive shell must still run.
SHAPES = {
    "debian": None,  # the node's own stock file, copied from /etc/skel
    "ps1_conda": "# mine\n[ -z \"$PS1\" ] && return\nalias marker='echo ps1_conda'\n" + CONDA_BLOCK,
    "bracket": "# arch style\n[[ $- != *i* ]] && return\nalias marker='echo bracket'\n",
    "no_guard": "export MINE=1\nalias marker='echo no_guard'\n",
    "no_newline": "[[ $- != *i* ]] && return\nalias marker='echo no_newline'",
    "symlink": "case $- in\n    *i*) ;;\n      *) return;;\nesac\nalias marker='echo symlink'\n",
    "missing": None,
}


@contextlib.contextmanager
def bed(name: str, nodes: int, shared_home: bool):
    run_testbed("down", "--name", name)
    path = Path(run_testbed("up", "--nodes", str(nodes), "--name", name, *(["--shared-home"] if shared_home else [])))
    try:
        yield Bed(name=name, path=path, nodes=[f"node{i}" for i in range(1, nodes + 1)])
    finally:
        run_testbed("down", "--name", name)


def run_site(inventory: Path, private: Path, extravars: dict, check: bool = False) -> Run:
    """site.yml through ansible-runner, as conftest's site fixture does (this one serves module-scoped fixtures)."""
    private.mkdir(parents=True)
    events: list[dict] = []
    result = ansible_runner.run(
        private_data_dir=str(private),
        playbook=str(ROOT / "site.yml"),
        inventory=str(inventory),
        extravars=extravars,
        quiet=True,
        event_handler=lambda e: events.append(e) or True,
        cmdline="--check" if check else None,
        envvars=ENV,
    )
    return Run(status=result.status, rc=result.rc, events=events)


def failures(run: Run) -> list:
    return [(d.get("host"), d.get("task"), d.get("res", {}).get("msg")) for d in run.results("runner_on_failed")]


def gateway(b: Bed) -> str:
    """The controller's address on the bed network (the podman bridge's gateway)."""
    subnet = ipaddress.ip_network(json.loads((b.path / "state.json").read_text())["subnet"])
    return str(subnet.network_address + 1)


@pytest.fixture(scope="module", params=[False, True], ids=["own-homes", "shared-home"])
def world(request, tmp_path_factory):
    """A 3-node bed after two site.yml runs against a served wheelhouse, with what the server counted."""
    shared = request.param
    with bed("envroles-mh" + ("s" if shared else ""), 3, shared) as b:
        bed_vars = yaml.safe_load((b.path / "vars.yml").read_text())
        wheelhouse = Path(bed_vars["conda_env_wheelhouse_src"])
        # Users' files before the roles run: several shapes (one per node; one file on a shared home).
        prepare = {"node1": None, "node2": SHAPES["ps1_conda"], "node3": SHAPES["no_newline"]}
        for host, text in prepare.items():
            if text is not None and not shared:
                b.ssh(host, f"printf %s {sh(text)} > ~/.bashrc")
        if shared:
            b.ssh("node1", "mkdir -p ~/dotfiles && mv ~/.bashrc ~/dotfiles/bashrc && ln -s dotfiles/bashrc ~/.bashrc")
        before = {h: b.ssh(h, "cat ~/.bashrc").stdout for h in b.nodes}
        with serve(wheelhouse, gateway(b)) as (url, counts):
            extravars = dict(
                bed_vars,
                conda_env_wheelhouse_src="",
                conda_env_uv_src="",
                conda_env_find_links=[url],
                conda_env_no_index=True,
            )
            private = tmp_path_factory.mktemp("runner")
            check = run_site(b.path / "inventory.yml", private / "check", extravars, check=True)
            checked = {
                "run": check,
                "fetched": counts.snapshot(),
                "left": {h: b.ssh(h, "ls -a ~").stdout.split() for h in b.nodes},
            }
            runs = []
            for i in range(2):
                runs.append((run_site(b.path / "inventory.yml", private / str(i), extravars), counts.snapshot()))
            yield {
                "bed": b,
                "runs": runs,
                "wheelhouse": wheelhouse,
                "before": before,
                "shared": shared,
                "check": checked,
            }


def sh(text: str) -> str:
    return "'" + text.replace("'", "'\\''") + "'"


def test_each_wheel_fetched_once_then_nothing(world):
    (first, after_first), (second, after_second) = world["runs"]
    assert first.status == "successful", failures(first)
    fetched = {p: n for p, n in after_first.items() if p.endswith(".whl")}
    assert fetched and set(fetched.values()) == {1}, fetched
    names = {p.rsplit("/", 1)[-1].split("-")[0].lower() for p in fetched}
    assert {"dask", "distributed", "asyncssh", "uv"} <= names
    assert second.status == "successful" and second.changed() == 0
    assert after_second == after_first, "the second run asked the wheelhouse server again"
    # The whole no-op site.yml asks each other node at most 3 times: the stage's read, conda_env's one read of the
    # environment and bashrc_init's block (the scheduler also copies and checks the checkout).
    calls = remote_calls(world["bed"], second)
    assert max(n for h, n in calls.items() if h != "node1") <= 3, calls


def test_check_mode_first_fetches_and_writes_nothing(world):
    checked = world["check"]
    assert checked["run"].status == "successful", failures(checked["run"])
    assert not [p for p in checked["fetched"] if p.endswith(".whl")]
    for host, names in checked["left"].items():
        assert not [n for n in names if n.startswith(("gtsfm", ".bashrc.gtsfm"))], (host, names)


def test_same_env_python_and_packages_on_every_node(world):
    b = world["bed"]
    seen = {}
    for host in b.nodes:
        # `dask --version` runs a console script: its #! names the env's real path, so the env must not have moved.
        remote = sh(
            'command -v python; python -c "import dask, distributed, asyncssh" && dask --version >&2 && ' + PACKAGES
        )
        out = b.ssh("node1", f"ssh {host} {remote}").stdout
        python, packages = out.strip().splitlines()
        seen[host] = (python, packages)
    assert {pair[0] for pair in seen.values()} == {"/home/gtsfm/gtsfm-env/bin/python"}
    assert len({pair[1] for pair in seen.values()}) == 1 and "'dask'" in seen["node1"][1]


def test_dask_sshcluster_without_remote_python_runs_everywhere(world):
    b = world["bed"]
    b.ssh("node1", f"printf %s {sh(JOB)} > /tmp/envroles_job.py")
    res = b.ssh("node1", "python /tmp/envroles_job.py node1 " + " ".join(b.nodes), check=False)
    line = next((x for x in res.stdout.splitlines() if x.startswith("RESULT ")), None)
    assert line, res.stdout[-2000:] + res.stderr[-3000:]
    result = json.loads(line[len("RESULT ") :])
    assert result["me"] == "/home/gtsfm/gtsfm-env/bin/python"
    assert sorted(ran[0] for ran in result["ran"]) == sorted(b.nodes)
    assert {ran[1] for ran in result["ran"]} == {"/home/gtsfm/gtsfm-env/bin/python"}


def test_users_lines_survive_and_interactive_shells_work(world):
    b = world["bed"]
    for host in b.nodes[: 1 if world["shared"] else 3]:
        after = b.ssh(host, "cat ~/.bashrc").stdout
        before = world["before"][host]
        kept = [line for line in before.splitlines() if line not in after.splitlines()]
        assert not kept, (host, kept)
        assert after.index("# END gtsfm.cluster.bashrc_init") < after.index("return")
        # An interactive shell (on a terminal) still runs the lines after the guard, and has the env.
        res = subprocess.run(
            [
                "ssh",
                "-tt",
                "-F",
                str(b.path / "ssh_config"),
                host,
                "bash -i -c 'command -v python; alias ls marker 2>/dev/null; echo PS1=${PS1:+set}'",
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert "/home/gtsfm/gtsfm-env/bin/python" in res.stdout and "PS1=set" in res.stdout, res.stdout
        assert "alias ls=" in res.stdout or "alias marker=" in before
        if "alias marker" in before:
            assert "alias marker=" in res.stdout, res.stdout
    if world["shared"]:
        assert b.ssh("node2", "readlink ~/.bashrc").stdout.strip() == "dotfiles/bashrc"


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_bashrc_shapes_on_a_real_shell(world, shape, tmp_path):
    """Each shape in a home of its own on node1: the module keeps every line; bash -i and an SSH command shell work."""
    if world["shared"]:
        pytest.skip("the shapes need one run only")
    b = world["bed"]
    home = f"/tmp/shapes/{shape}"
    text = SHAPES[shape]
    setup = f"rm -rf {home} && mkdir -p {home}/dotfiles && cd {home} && "
    if shape == "debian":
        setup += "cp /etc/skel/.bashrc .bashrc"
    elif shape == "symlink":
        setup += f"printf %s {sh(text)} > dotfiles/bashrc && ln -s dotfiles/bashrc .bashrc"
    elif shape != "missing":
        setup += f"printf %s {sh(text)} > .bashrc"
    else:
        setup += "true"
    b.ssh("node1", setup)
    before = b.ssh("node1", f"cat {home}/.bashrc 2>/dev/null || true").stdout
    playbook = tmp_path / "shape.yml"
    playbook.write_text(
        yaml.safe_dump(
            [
                {
                    "name": "Place the block",
                    "hosts": "node1",
                    "gather_facts": False,
                    "tasks": [
                        {
                            "name": "Place it",
                            "gtsfm.cluster.bashrc_block": {
                                "path": f"{home}/.bashrc",
                                "block": 'export VIRTUAL_ENV="$HOME"/gtsfm-env PATH=/home/gtsfm/gtsfm-env/bin:"$PATH"',
                            },
                        }
                    ],
                }
            ]
        )
    )
    for expect_changed in (True, False):
        res = subprocess.run(
            ["ansible-playbook", "-i", str(b.path / "inventory.yml"), str(playbook)],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            env=ENV,
        )
        assert res.returncode == 0, res.stdout[-3000:]
        assert ("changed=1" in res.stdout) == expect_changed, res.stdout[-1500:]
    after = b.ssh("node1", f"cat {home}/.bashrc").stdout
    start, end = after.index("# BEGIN gtsfm"), after.index("# END gtsfm")
    rest = after[:start] + after[after.index("\n", end) + 1 :]
    if shape == "ps1_conda":
        assert rest.replace(CONDA_BLOCK, "") == before.replace(CONDA_BLOCK, "")
        assert after.index("# <<< conda initialize") < after.index("[ -z")
    else:
        assert rest == before
    if shape == "symlink":
        assert b.ssh("node1", f"readlink {home}/.bashrc").stdout.strip() == "dotfiles/bashrc"
    # What sshd runs for `ssh node cmd` (bash -c, SSH_CLIENT set, shell level 1) reads this file and finds the env.
    res = b.ssh("node1", f"HOME={home} SHLVL=0 bash -c 'command -v python'")
    assert res.stdout.strip() == "/home/gtsfm/gtsfm-env/bin/python"
    res = subprocess.run(
        [
            "ssh",
            "-tt",
            "-F",
            str(b.path / "ssh_config"),
            "node1",
            f"HOME={home} bash -i -c 'command -v python; alias marker 2>/dev/null; echo done'",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert "/home/gtsfm/gtsfm-env/bin/python" in res.stdout and "done" in res.stdout
    if "alias marker" in before:
        assert "alias marker=" in res.stdout, res.stdout


def test_a_prefix_that_would_differ_between_nodes_stops_before_any_work(tmp_path):
    """node2's home is /users/gtsfm, node1's /home/gtsfm: a `~` prefix would differ, so nothing may happen."""
    with bed("envroles-homes", 2, False) as b:
        bed_vars = yaml.safe_load((b.path / "vars.yml").read_text())
        # First: more space asked for than any node has. The play stops before any build or copy, naming them.
        run = run_site(
            b.path / "inventory.yml",
            tmp_path / "runner-space",
            dict(bed_vars, conda_env_min_free_mb=1 << 40, conda_env_graphviz="ignore"),
        )
        messages = " ".join(str(failure[2]) for failure in failures(run))
        assert run.status == "failed" and "not enough free space" in messages and "node1, node2" in messages
        for host in b.nodes:
            assert not b.ssh(host, "ls -d ~/gtsfm-env* 2>/dev/null || true").stdout.strip()
            b.ssh(host, "rm -rf ~/gtsfm")  # the checkout came before the space check; start the next case clean
        subprocess.run(
            [
                "podman",
                "exec",
                "-u",
                "0",
                f"gtsfm-{b.name}-node2",
                "sh",
                "-c",
                "mkdir -p /users && usermod -m -d /users/gtsfm gtsfm",
            ],
            check=True,
            capture_output=True,
        )
        # A multiplexed SSH connection keeps the home it logged in with: start afresh, as a new login would.
        for socket in (b.path / "cp").glob("*"):
            socket.unlink()
        run = run_site(b.path / "inventory.yml", tmp_path / "runner", dict(bed_vars, conda_env_graphviz="ignore"))
        assert run.status == "failed"
        messages = " ".join(str(failure[2]) for failure in failures(run))
        assert "would not be at one identical path on every node" in messages, messages
        assert "node1 -> /home/gtsfm/gtsfm-env" in messages and "node2 -> /users/gtsfm/gtsfm-env" in messages
        assert "Fix: set conda_env_prefix" in messages
        for host in b.nodes:
            left = b.ssh(host, "ls -a ~").stdout.split()
            assert not [name for name in left if name.startswith("gtsfm")], (host, left)


def test_conda_manager_with_a_stand_in_micromamba(tmp_path):
    """The conda route's own tasks and code, with tests/multihost/files/micromamba standing in (no channel here):
    micromamba installed from a controller file, the env built from the checkout's environment_linux.yml with the
    mirror replacing the channels, broadcast, activated by micromamba's hook where it is and by PATH elsewhere."""
    with bed("envroles-conda", 2, False) as b:
        bed_vars = yaml.safe_load((b.path / "vars.yml").read_text())
        extravars = dict(
            bed_vars,
            conda_env_manager="conda",
            conda_env_conda_path="~/micromamba/bin/micromamba",
            conda_env_conda_installer_src=str(ROOT / "tests" / "multihost" / "files" / "micromamba"),
            conda_env_channels=["https://conda-mirror.example.org/conda-forge"],
            conda_env_graphviz="fail",
        )
        first = run_site(b.path / "inventory.yml", tmp_path / "first", extravars)
        assert first.status == "successful", failures(first)
        second = run_site(b.path / "inventory.yml", tmp_path / "second", extravars)
        assert second.status == "successful" and second.changed() == 0
        for host in b.nodes:
            remote = sh(
                'command -v python; echo "$CONDA_PREFIX"; command -v dot; cat ~/gtsfm-env/conda-meta/create-args'
            )
            out = b.ssh("node1", f"ssh {host} {remote}").stdout.splitlines()
            assert out[:3] == [
                "/home/gtsfm/gtsfm-env/bin/python",
                "/home/gtsfm/gtsfm-env",
                "/home/gtsfm/gtsfm-env/bin/dot",
            ], (host, out)
            assert "--file /home/gtsfm/gtsfm/environment_linux.yml" in out[3]
            assert "-c https://conda-mirror.example.org/conda-forge --override-channels" in out[3]


# What runs and the model_weights role leave inside the scheduler's checkout (all in conda_env_checkout_exclude's
# default): bytecode, GTSfM's feature cache and results, a weight file at one of GTSfM's weight paths with its record.
RUN_OUTPUTS = {
    "gtsfm/__pycache__/__init__.cpython-311.pyc": "bytecode",
    "cache/features/0.npz": "features",
    "results/ba_output/poses.txt": "poses",
    "dask_reports/report.html": "report",
    "thirdparty/vggt/weights/model.pt": "weights",
    "thirdparty/vggt/weights/.model.pt.gtsfm-broadcast.json": "{}",
}


def checkout_copy(run: Run) -> list[dict]:
    """The results of the checkout's copy to the other nodes in a run (the broadcast's status poll, or rsync)."""
    names = (
        "Follow until every node holds a verified copy, for the checkout",
        "Ensure every other node holds the scheduler's checkout at the same path (pulled over the mesh)",
    )
    return [d for d in run.results("runner_on_ok") if d.get("task") in names]


@pytest.mark.parametrize("replicate", ["broadcast", "pull"])
def test_checkout_copy_leaves_run_outputs_and_weights_alone_and_sends_real_changes(replicate, tmp_path):
    """Issue 15's leftover: files written into the scheduler's checkout change nothing on the next run (changed=0,
    nothing sent), each node keeps its own files at those paths untouched, and a changed tracked file reaches
    every node."""
    with bed("checkout-excl-" + replicate[:5], 3, False) as b:
        bed_vars = yaml.safe_load((b.path / "vars.yml").read_text())
        source = tmp_path / "checkout"
        subprocess.run(["cp", "-a", bed_vars["conda_env_checkout_src"], str(source)], check=True)
        extravars = dict(bed_vars, conda_env_checkout_src=str(source), conda_env_replicate=replicate)
        first = run_site(b.path / "inventory.yml", tmp_path / "first", extravars)
        assert first.status == "successful", failures(first)
        for rel, text in RUN_OUTPUTS.items():
            b.ssh("node1", f"mkdir -p ~/gtsfm/{os.path.dirname(rel)} && printf %s {sh(text)} > ~/gtsfm/{rel}")
        # node2 holds its own files at excluded paths (its weights, its results): they must stay as they are.
        own = ["thirdparty/vggt/weights/model.pt", "results/mine.txt", "gtsfm/__pycache__/mine.pyc"]
        for rel in own:
            b.ssh("node2", f"mkdir -p ~/gtsfm/{os.path.dirname(rel)} && echo node2 > ~/gtsfm/{rel}")
        inodes = "stat -c '%i %Y %s' " + " ".join(f"~/gtsfm/{rel}" for rel in own)
        node2_before = b.ssh("node2", inodes).stdout

        second = run_site(b.path / "inventory.yml", tmp_path / "second", extravars)
        assert second.status == "successful", failures(second)
        copies = checkout_copy(second)
        if replicate == "broadcast":
            assert second.changed() == 0, [d["task"] for d in second.results("runner_on_ok") if d["res"]["changed"]]
            # The stage's read shows the broadcast's record on every node matching the scheduler's (files at
            # excluded paths are outside it): the broadcast is not even started, nothing is sent.
            assert copies == [], [(d["task"], d["host"]) for d in copies]
        else:
            assert copies, "the checkout's copy did not run"
            # rsync sends no excluded file, but makes the folders that hold them (empty) where they are missing,
            # once: it has no notion of a folder made only for excluded files.
            made = [line for d in copies for line in d["res"]["stdout"].split("\n") if line.strip()]
            assert made and all(line.startswith("cd+++++++++ thirdparty/") for line in made), made
        # Nothing of the scheduler's went anywhere: the other nodes hold only what they had at those paths.
        listing = (
            "cd ~/gtsfm && find cache results dask_reports thirdparty gtsfm/__pycache__ -type f 2>/dev/null | sort"
        )
        assert b.ssh("node3", listing, check=False).stdout == ""
        assert b.ssh("node2", listing, check=False).stdout.split() == sorted(own)

        # A real change to the checkout's source reaches every node; the nodes' own excluded files stay.
        (source / "gtsfm" / "__init__.py").write_text("VERSION = 'changed'\n")
        third = run_site(b.path / "inventory.yml", tmp_path / "third", extravars)
        assert third.status == "successful", failures(third)
        assert third.changed() > 0
        for host in b.nodes:
            assert b.ssh(host, "cat ~/gtsfm/gtsfm/__init__.py").stdout == "VERSION = 'changed'\n", host
        assert b.ssh("node2", inodes).stdout == node2_before
        assert (
            b.ssh("node1", "cat ~/gtsfm/thirdparty/vggt/weights/model.pt ~/gtsfm/results/ba_output/poses.txt").stdout
            == "weightsposes"
        )
        fourth = run_site(b.path / "inventory.yml", tmp_path / "fourth", extravars)
        assert fourth.status == "successful" and fourth.changed() == 0, failures(fourth)
