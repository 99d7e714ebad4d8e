"""The conda_env plan: one path everywhere, who receives the checkout, who builds, copies and publishes."""
from __future__ import annotations

from ansible_collections.gtsfm.cluster.plugins.plugin_utils._env_plan import (
    check_final, check_paths, check_settings, checkout_plan, env_plan)

FP = "f" * 64
GIB = 1 << 30


def node(name, writer=True, mates=None, home="/home/u"):
    return {"name": name, "home": home, "home_writer": writer, "home_mates": mates or [name]}


def probe(done=False, fp=FP, free=10 * GIB, prefix="/home/u/gtsfm-env", home="/home/u", spec=None):
    return {"done": done, "fingerprint": fp, "free": free, "prefix": prefix, "home": home, "spec": spec or {"m": "uv"},
            "real": prefix + "." + fp[:12] if fp else None, "state": "current" if done else "missing",
            "found_fingerprint": fp if done else None}


OWN = [node("n1"), node("n2"), node("n3")]
SHARED = [node("n1", mates=["n1", "n2"]), node("n2", writer=False, mates=["n1", "n2"]), node("n3")]


def test_one_path_everywhere_passes_and_a_differing_home_is_named():
    names = ["n1", "n2"]
    same = {"n1": probe(), "n2": probe()}
    assert check_paths(names, same, "~/gtsfm-env", "~/gtsfm", True) == ""
    apart = {"n1": probe(), "n2": probe(prefix="/users/u/gtsfm-env", home="/users/u")}
    msg = check_paths(names, apart, "~/gtsfm-env", "~/gtsfm", True)
    assert msg.startswith("conda_env: conda_env_prefix (~/gtsfm-env) and conda_env_checkout_dest (~/gtsfm) would not "
                          "be at one identical path on every node")
    assert "n1 -> /home/u/gtsfm-env -> /home/u/gtsfm; n2 -> /users/u/gtsfm-env -> /users/u/gtsfm" in msg
    assert "Fix: set conda_env_prefix and conda_env_checkout_dest" in msg
    apart_checkout_only = {"n1": probe(), "n2": probe(home="/users/u")}
    assert "conda_env_checkout_dest (~/gtsfm) would not" in check_paths(names, apart_checkout_only, "/e", "~/gtsfm",
                                                                        True)
    assert check_paths(names, apart_checkout_only, "/e", "~/gtsfm", False) == ""


def test_checkout_goes_to_one_node_per_other_home_or_to_every_other_node():
    assert checkout_plan(SHARED, "n1", "/home/u/gtsfm") == {"broadcast": ["n3"], "pull": ["n3"]}
    assert checkout_plan(SHARED, "n1", "/scratch/gtsfm") == {"broadcast": ["n2", "n3"], "pull": ["n2", "n3"]}
    assert checkout_plan(OWN, "n1", "/home/u/gtsfm") == {"broadcast": ["n2", "n3"], "pull": ["n2", "n3"]}


def test_build_once_broadcast_builds_on_the_scheduler_and_sends_to_one_node_per_other_home():
    probes = {"n1": probe(), "n2": probe(), "n3": probe()}
    plan = env_plan(SHARED, probes, "n1", "build_once", "broadcast", 4096, False)
    assert plan == {"mismatch": "", "short": [], "builders": ["n1"], "pull": [], "broadcast": ["n3"],
                    "publish": ["n2", "n3"], "source": "/home/u/gtsfm-env." + FP[:12], "changed": True}


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
    probes = {"n1": probe(free=GIB), "n2": probe(free=GIB, done=True), "n3": probe(free=8 * GIB)}
    assert env_plan(OWN, probes, "n1", "build_once", "pull", 4096, False)["short"] == ["n1"]


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
        "reported as other/broken/missing is rebuilt or copied again.")


GOOD = {"manager": "uv", "strategy": "build_once", "replicate": "broadcast", "graphviz": "warn",
        "prefix": "~/gtsfm-env", "checkout": True, "checkout_dest": "~/gtsfm",
        "checkout_exclude": ["__pycache__/", "/results/", "*.pyc"], "archive_src": "", "requirements": [],
        "file": "environment_linux.yml", "python": "/usr/bin/python3"}


def test_good_settings_pass():
    assert check_settings(GOOD) == []


def test_each_bad_setting_is_named():
    bad = dict(GOOD, manager="pip", strategy="x", replicate="y", graphviz="z", prefix="~", python="python3",
               checkout_dest="gtsfm", checkout_exclude=["a/**/b", "../x", "ok/"])
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
