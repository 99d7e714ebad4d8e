"""The conda_env plan: one path everywhere, who receives the checkout, who builds, copies and publishes."""

from __future__ import annotations

import hashlib
import os

from ansible_collections.gtsfm.cluster.plugins.plugin_utils._env_plan import (
    check_final,
    check_imports,
    check_paths,
    check_settings,
    checkout_changed,
    checkout_plan,
    checkout_sends,
    controller_digest,
    env_plan,
    missing_sources,
    probe_options,
    setup,
    stage_reads,
    tree_held,
)

FP = "f" * 64
GIB = 1 << 30


def node(name, writer=True, mates=None, home="/home/u"):
    return {"name": name, "home": home, "home_writer": writer, "home_mates": mates or [name]}


def probe(done=False, fp=FP, free=10 * GIB, prefix="/home/u/gtsfm-env", home="/home/u", spec=None):
    return {
        "done": done,
        "fingerprint": fp,
        "free": free,
        "prefix": prefix,
        "home": home,
        "spec": spec or {"m": "uv"},
        "real": prefix + "." + fp[:12] if fp else None,
        "state": "current" if done else "missing",
        "found_fingerprint": fp if done else None,
    }


OWN = [node("n1"), node("n2"), node("n3")]
SHARED = [node("n1", mates=["n1", "n2"]), node("n2", writer=False, mates=["n1", "n2"]), node("n3")]


def test_one_path_everywhere_passes_and_a_differing_home_is_named():
    names = ["n1", "n2"]
    same = {"n1": probe(), "n2": probe()}
    assert check_paths(names, same, "~/gtsfm-env", "~/gtsfm", True) == ""
    apart = {"n1": probe(), "n2": probe(prefix="/users/u/gtsfm-env", home="/users/u")}
    msg = check_paths(names, apart, "~/gtsfm-env", "~/gtsfm", True)
    assert msg.startswith(
        "conda_env: conda_env_prefix (~/gtsfm-env) and conda_env_checkout_dest (~/gtsfm) would not "
        "be at one identical path on every node"
    )
    assert "n1 -> /home/u/gtsfm-env -> /home/u/gtsfm; n2 -> /users/u/gtsfm-env -> /users/u/gtsfm" in msg
    assert "Fix: set conda_env_prefix and conda_env_checkout_dest" in msg
    apart_checkout_only = {"n1": probe(), "n2": probe(home="/users/u")}
    assert "conda_env_checkout_dest (~/gtsfm) would not" in check_paths(
        names, apart_checkout_only, "/e", "~/gtsfm", True
    )
    assert check_paths(names, apart_checkout_only, "/e", "~/gtsfm", False) == ""


def targets(nodes, path, replicate):
    plan = checkout_plan(nodes, "n1", path, replicate)
    return plan["broadcast"], plan["pull"]


def test_checkout_goes_to_one_node_per_other_home_or_to_every_other_node():
    assert targets(SHARED, "/home/u/gtsfm", "broadcast") == (["n3"], [])
    assert targets(SHARED, "/home/u/gtsfm", "pull") == ([], ["n3"])
    assert targets(SHARED, "/scratch/gtsfm", "broadcast") == (["n2", "n3"], [])
    assert targets(SHARED, "/scratch/gtsfm", "pull") == ([], ["n2", "n3"])
    assert targets(OWN, "/home/u/gtsfm", "broadcast") == (["n2", "n3"], [])
    assert targets(OWN, "/home/u/gtsfm", "pull") == ([], ["n2", "n3"])


def test_a_pulling_node_rsyncs_from_the_scheduler_keeping_what_the_excludes_name():
    plan = checkout_plan(OWN, "n1", "/home/u/gtsfm", "pull", ["__pycache__/", "/results/", "gtsfm/weights/x.pth"])
    assert plan["rsync"] == [
        "rsync",
        "-a",
        "--omit-dir-times",
        "--delete",
        "--itemize-changes",
        "-e",
        "ssh -o BatchMode=yes",
        "--exclude=__pycache__/",
        "--exclude=/results/",
        "--exclude=/gtsfm/weights/x.pth",
        "n1:/home/u/gtsfm/",
        "/home/u/gtsfm/",
    ]
    assert checkout_plan(OWN, "n1", "/g", "pull", [], check_mode=True)["rsync"][7] == "--dry-run"


def test_build_once_broadcast_builds_on_the_scheduler_and_sends_to_one_node_per_other_home():
    probes = {"n1": probe(), "n2": probe(), "n3": probe()}
    plan = env_plan(SHARED, probes, "n1", "build_once", "broadcast", 4096, False)
    assert plan == {
        "problem": "",
        "mismatch": "",
        "short": [],
        "builders": ["n1"],
        "pull": [],
        "broadcast": ["n3"],
        "publish": ["n2", "n3"],
        "source": "/home/u/gtsfm-env." + FP[:12],
        "changed": True,
    }


def test_nodes_already_done_are_left_out_and_nothing_changes_when_all_are():
    probes = {"n1": probe(done=True), "n2": probe(), "n3": probe(done=True)}
    plan = env_plan(OWN, probes, "n1", "build_once", "pull", 4096, False)
    assert plan["builders"] == [] and plan["pull"] == ["n2"] and plan["changed"]
    done = {n: probe(done=True) for n in ("n1", "n2", "n3")}
    plan = env_plan(OWN, done, "n1", "build_once", "broadcast", 4096, False)
    assert (plan["builders"], plan["broadcast"], plan["publish"], plan["changed"]) == ([], [], [], False)


def test_every_node_builds_once_per_home_when_the_prefix_is_in_it():
    probes = {"n1": probe(), "n2": probe(), "n3": probe()}
    assert env_plan(SHARED, probes, "n1", "every_node", "broadcast", 1, False)["builders"] == ["n1", "n3"]
    outside = {n: probe(prefix="/scratch/env") for n in ("n1", "n2", "n3")}
    plan = env_plan(SHARED, outside, "n1", "every_node", "broadcast", 1, False)
    assert plan["builders"] == ["n1", "n2", "n3"] and plan["broadcast"] == plan["publish"] == plan["pull"] == []


def test_short_nodes_are_those_without_the_env_and_below_the_space():
    probes = {"n1": probe(free=GIB), "n2": probe(free=GIB, done=True), "n3": probe(free=GIB)}
    plan = env_plan(OWN, probes, "n1", "build_once", "pull", 4096, False, "~/gtsfm-env")
    assert plan["short"] == ["n1", "n3"]
    assert plan["problem"] == (
        "conda_env: not enough free space for the environment under ~ (4096 MiB needed) on n1, n3; nothing was "
        "built or copied. Fix: free space there, or set conda_env_prefix to a path with room on every node (or "
        "lower conda_env_min_free_mb)."
    )


def test_a_mismatch_is_the_problem_before_the_space():
    probes = {"n1": probe(free=GIB), "n2": probe(fp="e" * 64), "n3": probe()}
    plan = env_plan(OWN, probes, "n1", "build_once", "pull", 4096, False)
    assert plan["short"] == ["n1"] and plan["problem"] == plan["mismatch"] != ""


def test_differing_fingerprints_are_named_with_each_node_spec():
    probes = {"n1": probe(), "n2": probe(fp="e" * 64, spec={"python": "3.12"}), "n3": probe()}
    msg = env_plan(OWN, probes, "n1", "build_once", "pull", 1, False)["mismatch"]
    assert msg.startswith("conda_env: the nodes do not agree on what the environment is")
    assert 'n2: {"python": "3.12"}' in msg and "conda_env_strategy=every_node" in msg


def test_an_unknown_fingerprint_stops_a_real_run_but_not_check_mode():
    probes = {"n1": probe(fp=None), "n2": probe(), "n3": probe()}
    assert env_plan(OWN, probes, "n1", "build_once", "pull", 1, False)["mismatch"]
    assert env_plan(OWN, probes, "n1", "build_once", "pull", 1, True)["mismatch"] == ""


def test_final_check_wants_one_finished_environment_everywhere():
    done = {n: probe(done=True) for n in ("n1", "n2")}
    assert check_final(["n1", "n2"], done, "~/e") == ""
    done["n2"] = probe()
    assert check_final(["n1", "n2"], done, "~/e") == (
        "conda_env: not every node holds the wanted environment at ~/e: n1: current, n2: missing. Re-run; a node "
        "reported as other/broken/missing is rebuilt or copied again."
    )


SETTINGS = {
    "manager": "uv",
    "strategy": "build_once",
    "replicate": "broadcast",
    "graphviz": "warn",
    "prefix": "~/gtsfm-env",
    "min_free_mb": "4096",
    "checkout": "true",
    "checkout_dest": "~/gtsfm",
    "checkout_src": "",
    "checkout_exclude": [],
    "python": "/usr/bin/python3",
    "requirements": [],
    "index_url": "",
    "extra_index_urls": [],
    "find_links": [],
    "no_index": "false",
    "wheelhouse_src": "",
    "uv_path": "~/.local/share/gtsfm/bin/uv",
    "uv_src": "",
    "uv_index": "https://pypi.org/simple/uv/",
    "uv_version": "",
    "conda_path": "~/miniforge3/bin/conda",
    "conda_installer_url": "https://x/Miniforge3-Linux-x86_64.sh",
    "conda_installer_src": "",
    "file": "environment_linux.yml",
    "channels": [],
    "archive_src": "",
    "import_check": "yes",
    "imports": [],
}


def make(home="/home/u", **settings):
    return setup(dict(SETTINGS, **settings), home, "n1", "/home/s", "/home/ctl", "ab" * 32, False)


def test_the_network_route_sets_the_python_env_options_from_the_settings_on_the_node():
    s = make()
    assert s["options"] == {
        "prefix": "~/gtsfm-env",
        "manager": "uv",
        "python": "/usr/bin/python3",
        "requirements": [],
        "project_dir": "/home/u/gtsfm",
        "env_file": "/home/u/gtsfm/environment_linux.yml",
        "uv": "~/.local/share/gtsfm/bin/uv",
        "uv_index": "https://pypi.org/simple/uv/",
        "uv_version": "",
        "extra_index_urls": [],
        "find_links": [],
        "no_index": False,
        "conda": "/home/u/miniforge3/bin/conda",
        "channels": [],
        "source_host": "n1",
        "min_free_mb": 4096,
        "import_check": True,
        "imports": [],
    }
    assert (s["stage"], s["progress"], s["scheduler_progress"], s["checkout"], s["ship"]) == (
        "/home/u/.cache/gtsfm/conda_env",
        "/home/u/.cache/gtsfm.cluster/progress",
        "/home/s/.cache/gtsfm.cluster/progress",
        "/home/u/gtsfm",
        [],
    )
    assert s["source"] == {
        "route": "git",
        "pack": False,
        "archive": "",
        "dest": "/home/u/.cache/gtsfm/conda_env/checkout-",
    }
    assert make(file="/etc/env.yml", index_url="https://mirror/simple")["options"]["env_file"] == "/etc/env.yml"
    assert make(index_url="https://mirror/simple")["options"]["index_url"] == "https://mirror/simple"


def test_a_wheelhouse_and_uv_from_the_controller_are_shipped_and_used_without_an_index():
    s = make(wheelhouse_src="/ctl/wheels", uv_src="/ctl/uv-0.5-py3-none-any.whl", find_links=["https://f/"])
    stage = "/home/u/.cache/gtsfm/conda_env"
    assert s["ship"] == [
        {"src": "/ctl/uv-0.5-py3-none-any.whl", "dest": stage + "/uv-0.5-py3-none-any.whl", "mode": "0644"},
        {"src": "/ctl/wheels/", "dest": stage + "/wheelhouse/", "mode": "0644", "directory_mode": "0755"},
    ]
    o = s["options"]
    assert (o["uv_wheel"], o["uv_index"], o["find_links"], o["no_index"]) == (
        stage + "/uv-0.5-py3-none-any.whl",
        stage + "/wheelhouse",
        ["https://f/", stage + "/wheelhouse"],
        True,
    )


def test_the_archive_route_ships_the_prebuilt_environment_with_its_sum():
    s = make(manager="archive", archive_src="/ctl/env.tar.gz", wheelhouse_src="/ctl/wheels")
    stage = "/home/u/.cache/gtsfm/conda_env"
    assert s["ship"] == [{"src": "/ctl/env.tar.gz", "dest": stage + "/env.tar.gz", "mode": "0600"}]
    assert (s["options"]["archive"], s["options"]["archive_sha256"]) == (stage + "/env.tar.gz", "ab" * 32)
    assert "archive" not in make()["options"]


def test_conda_is_installed_from_miniforge_or_a_micromamba_binary():
    s = make(manager="conda")
    stage = "/home/u/.cache/gtsfm/conda_env"
    assert s["installer"] == {
        "src": "",
        "url": "https://x/Miniforge3-Linux-x86_64.sh",
        "path": stage + "/Miniforge3-Linux-x86_64.sh",
        "argv": ["bash", stage + "/Miniforge3-Linux-x86_64.sh", "-b", "-p", "/home/u/miniforge3"],
    }
    m = make(manager="conda", conda_installer_src="/ctl/micromamba", conda_path="/opt/mm/bin/micromamba")
    assert m["installer"]["argv"] == ["install", "-D", "-m", "0755", stage + "/micromamba", "/opt/mm/bin/micromamba"]
    assert "environment file" in s["dot_msg"] and "no wheel brings the dot program" in make()["dot_msg"]
    assert s["dot_msg"].startswith(
        "conda_env: n1 (the scheduler, where GTSfM's runner renders its process graph) has "
        "no Graphviz 'dot' on PATH (~/gtsfm-env/bin first)"
    )


def test_a_checkout_from_the_controller_travels_as_one_archive():
    tree = setup(dict(SETTINGS, checkout_src="/ctl/gtsfm"), "/home/u", "n1", "/home/u", "/home/ctl", None, True)
    assert tree["source"]["route"] == "archive" and tree["source"]["pack"]
    assert tree["source"]["archive"].startswith("/home/ctl/.cache/gtsfm.cluster/checkout-")
    name = tree["source"]["archive"].split("/")[-1]
    assert tree["source"]["dest"] == "/home/u/.cache/gtsfm/conda_env/checkout-" + name
    packed = make(checkout_src="/ctl/gtsfm.tar.gz")["source"]
    assert packed == {
        "route": "archive",
        "pack": False,
        "archive": "/ctl/gtsfm.tar.gz",
        "dest": "/home/u/.cache/gtsfm/conda_env/checkout-gtsfm.tar.gz",
    }


def test_a_node_whose_environment_does_not_import_is_named_with_each_problem_on_a_line():
    assert check_imports("n2", {"state": "current", "import_problems": []}, "~/e") == ""
    assert check_imports("n2", {"state": "missing"}, "~/e") == ""
    msg = check_imports("n2", {"import_problems": ["import cv2 fails: libGL.so.1 is missing", "import x fails"]}, "~/e")
    assert msg.startswith(
        "conda_env: n2: ~/e/bin/python does not import what the environment holds (checked on the "
        "node itself, as its non-interactive SSH sessions run it; set conda_env_imports"
    )
    assert msg.endswith("to check less):\n- import cv2 fails: libGL.so.1 is missing\n- import x fails")


GOOD = {
    "manager": "uv",
    "strategy": "build_once",
    "replicate": "broadcast",
    "graphviz": "warn",
    "prefix": "~/gtsfm-env",
    "checkout": True,
    "checkout_dest": "~/gtsfm",
    "checkout_exclude": ["__pycache__/", "/results/", "*.pyc"],
    "archive_src": "",
    "requirements": [],
    "file": "environment_linux.yml",
    "python": "/usr/bin/python3",
}


def test_good_settings_pass():
    assert check_settings(GOOD) == []


def test_each_bad_setting_is_named():
    bad = dict(
        GOOD,
        manager="pip",
        strategy="x",
        replicate="y",
        graphviz="z",
        prefix="~",
        python="python3",
        checkout_dest="gtsfm",
        checkout_exclude=["a/**/b", "../x", "ok/"],
    )
    assert check_settings(bad) == [
        "conda_env: conda_env_manager 'pip' must be one of conda, uv, archive.",
        "conda_env: conda_env_strategy 'x' must be one of build_once, every_node.",
        "conda_env: conda_env_replicate 'y' must be one of pull, broadcast.",
        "conda_env: conda_env_graphviz 'z' must be one of fail, warn, install, ignore.",
        "conda_env: conda_env_prefix '~' must be an absolute or ~/ path of its own (not ~, / or the checkout).",
        "conda_env: conda_env_checkout_dest 'gtsfm' must be an absolute or ~/ path.",
        "conda_env: conda_env_python 'python3' must be an absolute path.",
        "conda_env: conda_env_checkout_exclude holds patterns that cannot be used: a/**/b, ../x. Fix: give a name "
        "(__pycache__/, *.pyc) or a path from the checkout's top (/results/), without '**', '\\', '.', '..' or "
        "empty components.",
    ]


def test_what_each_manager_needs():
    assert check_settings(dict(GOOD, prefix="/")) != []
    assert check_settings(dict(GOOD, prefix="~/gtsfm/")) != []
    assert "needs conda_env_archive_src" in check_settings(dict(GOOD, manager="archive"))[0]
    assert "needs conda_env_requirements or the checkout" in check_settings(dict(GOOD, checkout=False))[0]
    assert "needs an absolute conda_env_file" in check_settings(dict(GOOD, manager="conda", checkout=False))[0]
    assert check_settings(dict(GOOD, manager="conda", checkout=False, file="/env.yml")) == []


def test_missing_controller_files_are_named_once_the_settings_make_sense():
    assert check_settings(GOOD, ["uv_src", "archive_src"]) == [
        "conda_env: not found on the controller: conda_env_uv_src, conda_env_archive_src. Fix: correct the path, or "
        "empty the variable to use the network route."
    ]
    assert len(check_settings(dict(GOOD, manager="pip"), ["uv_src"])) == 1
    assert check_settings(dict(GOOD, checkout="false", requirements=["dask"])) == []


def test_missing_sources_names_the_src_settings_whose_controller_file_is_not_there(tmp_path):
    there = tmp_path / "uv"
    there.write_text("")
    settings = dict(GOOD, uv_src=str(there), archive_src=str(tmp_path / "gone.tar"), wheelhouse_src="", prefix="/x")
    assert missing_sources(settings) == ["archive_src"]
    assert missing_sources(GOOD) == []


def test_checkout_changed_is_true_when_any_checkout_step_changed_on_any_node():
    unchanged = {"__conda_env_checkout_copy": {"changed": False}, "__conda_env_checkout_git": {"skipped": True}}
    assert checkout_changed([]) is False
    assert checkout_changed([{}, unchanged]) is False
    # A step that did not run on this node at all (another role's vars only) counts as unchanged.
    assert checkout_changed([{"other": {"changed": True}}]) is False
    assert checkout_changed([unchanged, {"__conda_env_checkout_sync": {"changed": True}}]) is True
    assert checkout_changed([{"__conda_env_checkout_unarchive": {"changed": "yes"}}]) is True
    assert checkout_changed([{"__conda_env_bcast": {"changed": True}}]) is True


def tree_read(path, held, written=10.0, exclude=("__pycache__/",)):
    return {"trees": {"~/gtsfm": {"path": path, "held": held, "written": written, "exclude": list(exclude)}}}


def test_the_broadcast_leaves_out_the_nodes_whose_read_shows_the_schedulers_checkout():
    reads = {"n1": tree_read("/g", "sha256:a"), "n2": tree_read("/g", "sha256:a"), "n3": tree_read("/g", "sha256:b")}
    plan = checkout_plan(OWN, "n1", "/g", "broadcast", ["__pycache__/"], reads=reads)
    assert plan["broadcast"] == ["n3"]
    # The scheduler's own checkout changed in this run: the read is old, the module decides for every node.
    assert checkout_plan(OWN, "n1", "/g", "broadcast", ["__pycache__/"], reads=reads, changed=True)["broadcast"] == [
        "n2",
        "n3",
    ]
    # A scheduler whose record cannot tell (none yet, another exclude, another path): every node, as without reads.
    for unknown in (tree_read("/g", None), tree_read("/g", "sha256:a", exclude=()), tree_read("/h", "sha256:a")):
        plan = checkout_plan(OWN, "n1", "/g", "broadcast", ["__pycache__/"], reads=dict(reads, n1=unknown))
        assert plan["broadcast"] == ["n2", "n3"]
    assert tree_held(None, "/g") is None and tree_held({}, "/g") is None


def archive_read(checksum, mode="0600", mtime=5.0, held="sha256:a", written=10.0):
    read = tree_read("/home/u/gtsfm", held, written, ["/results/"])
    read["checksums"] = {
        "~/c.tar": {
            "path": "/home/u/c.tar",
            "exists": checksum is not None,
            "checksum": checksum,
            "mode": mode,
            "mtime": mtime,
        }
    }
    return read


def test_the_scheduler_is_sent_and_unpacks_the_checkout_only_when_its_read_shows_a_need(tmp_path):
    archive = tmp_path / "c.tar"
    archive.write_bytes(b"tar")
    ours = hashlib.sha1(b"tar").hexdigest()
    source = {"archive": str(archive), "dest": "/home/u/c.tar"}

    def sends(read):
        return checkout_sends(read, source, "/home/u/gtsfm", ["/results/"])

    assert sends(archive_read(ours)) == {"send": False, "unpack": False}
    assert sends(archive_read("0" * 40)) == {"send": True, "unpack": True}
    assert sends(archive_read(None)) == {"send": True, "unpack": True}
    assert sends(archive_read(ours, mode="0644")) == {"send": True, "unpack": True}
    # The archive came after the broadcast's last record (an unpack that may not have finished), or the checkout
    # changed since that record, or no broadcast recorded it: unpack, without sending again.
    assert sends(archive_read(ours, mtime=11.0)) == {"send": False, "unpack": True}
    assert sends(archive_read(ours, held=None)) == {"send": False, "unpack": True}
    # Without the stage's read (conda_env in a play of its own): both, and the modules decide as before.
    assert sends({}) == sends(None) == {"send": True, "unpack": True}
    missing = {"archive": str(tmp_path / "none.tar"), "dest": "/home/u/c.tar"}
    assert checkout_sends(archive_read(ours), missing, "/home/u/gtsfm", ["/results/"])["send"]


def test_the_stage_reads_what_the_role_probes_and_sends_with_the_nodes_home_as_tilde(tmp_path):
    checkout = tmp_path / "gtsfm"
    checkout.mkdir()
    reads = stage_reads(dict(SETTINGS, checkout_src=str(checkout)), "/home/ctl")
    on_node = setup(dict(SETTINGS, checkout_src=str(checkout)), "/home/u", "n1", "/home/u", "/home/ctl")
    assert reads["python_env"] == {
        k: v
        for k, v in setup(dict(SETTINGS, checkout_src=str(checkout)), "~", "", "~", "/home/ctl")["options"].items()
        if k in ("prefix", "manager", "python", "requirements", "project_dir", "env_file", "import_check", "imports")
    }
    assert probe_options(reads["python_env"], "/home/u") == probe_options(on_node["options"], "/home/u")
    assert reads["checksums"] == ["~/.cache/gtsfm/conda_env/" + os.path.basename(on_node["source"]["dest"])]
    assert reads["trees"] == [{"path": "~/gtsfm", "exclude": list(SETTINGS["checkout_exclude"])}]
    assert stage_reads(dict(SETTINGS, checkout=False), "/home/ctl")["trees"] == []
    assert stage_reads(SETTINGS, "/home/ctl")["checksums"] == []  # from git: no archive


def test_probe_options_fill_defaults_and_take_tilde_as_the_nodes_home():
    canon = probe_options({"prefix": "~/env", "import_check": "yes", "requirements": ["dask"]}, "/home/u")
    assert canon == {
        "prefix": "/home/u/env",
        "manager": "uv",
        "python": "/usr/bin/python3",
        "requirements": ["dask"],
        "project_dir": None,
        "env_file": None,
        "archive": None,
        "archive_sha256": None,
        "import_check": True,
        "imports": [],
    }
    assert probe_options({"prefix": "~/env", "min_free_mb": 1, "uv": "/x"})["prefix"] == "~/env"


def test_controller_files_are_hashed_once_per_state(tmp_path, monkeypatch):
    path = tmp_path / "env.tar"
    path.write_bytes(b"one")
    assert controller_digest(str(path)) == hashlib.sha256(b"one").hexdigest()
    assert controller_digest(str(path), "sha1") == hashlib.sha1(b"one").hexdigest()
    assert controller_digest(str(tmp_path / "none")) is None and controller_digest("") is None
    path.write_bytes(b"two!")
    assert controller_digest(str(path)) == hashlib.sha256(b"two!").hexdigest()
    # The archive manager's sum and whether the checkout source is a directory default to what the controller holds.
    s = setup(
        dict(SETTINGS, manager="archive", archive_src=str(path), checkout_src=str(tmp_path)), "/h", "n1", "/h", "/c"
    )
    assert s["options"]["archive_sha256"] == hashlib.sha256(b"two!").hexdigest() and s["source"]["pack"]
