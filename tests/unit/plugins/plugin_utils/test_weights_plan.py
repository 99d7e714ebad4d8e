"""The model_weights plan: settings, the cluster, held files, the downloads' outcome, who receives what, node checks."""

from __future__ import annotations

import json

from ansible_collections.gtsfm.cluster.plugins.plugin_utils._weights import manifest
from ansible_collections.gtsfm.cluster.plugins.plugin_utils._weights_plan import (
    check_copies,
    check_nodes,
    check_settings,
    outcome,
    sends,
    split_held,
)

A = "a" * 64
B = "b" * 64
C = "c" * 64
FILES = [
    {"url": "https://example.org/a.bin", "dest": "thirdparty/a.bin"},
    {"url": "https://example.org/b.bin", "dest": "thirdparty/b.bin", "sha256": B},
    {"url": "https://example.org/c.bin", "dest": "/data/c.bin"},
]
GOOD = {
    "fetch_on": "scheduler",
    "mirror": "",
    "lock_file": "/inv/lock.json",
    "checkout_dir": "~/gtsfm",
    "retries": 5,
    "fetch_timeout": 10,
    "poll_delay": 1,
}


def entries(**more):
    return manifest(FILES, "~/gtsfm", "/home/u", controller_dir="/ctl", **more)


def node(name, home="/home/u", writer=True, mates=None):
    return {"name": name, "home": home, "home_writer": writer, "home_mates": mates or [name]}


def test_good_settings_have_no_problems():
    assert check_settings(GOOD) == []


def test_each_bad_setting_is_named_with_what_it_must_be():
    bad = dict(
        GOOD,
        fetch_on="nowhere",
        mirror="ftp://x",
        lock_file="",
        checkout_dir="gtsfm",
        retries=-1,
        fetch_timeout=0,
        poll_delay=True,
    )
    problems = check_settings(bad)
    assert problems == [
        "model_weights: model_weights_fetch_on 'nowhere' must be scheduler or controller.",
        "model_weights: model_weights_mirror 'ftp://x' must be empty or an http(s):// base URL.",
        "model_weights: model_weights_lock_file must be a path on the controller.",
        "model_weights: model_weights_checkout_dir 'gtsfm' must be absolute or start with ~/.",
        "model_weights: model_weights_retries -1 must be a whole number of 0 or more.",
        "model_weights: model_weights_fetch_timeout 0 must be a whole number of 1 or more.",
        "model_weights: model_weights_poll_delay True must be a whole number of 1 or more.",
    ]


def test_the_scheduler_must_be_a_member():
    problems = check_nodes([node("n1"), node("n2")], "elsewhere", "/g")
    assert problems == [
        "model_weights: the scheduler 'elsewhere' (the first host of group gtsfm_scheduler) is not a "
        "member of the cluster (n1, n2). Fix: make the scheduler one of the cluster's hosts."
    ]


def test_a_checkout_under_home_needs_one_home_path():
    nodes = [node("n1"), node("n2", home="/users/u")]
    assert (
        "'~/gtsfm' is under ~, but the nodes' home directories differ (/home/u, /users/u)"
        in check_nodes(nodes, "n1", "~/gtsfm")[0]
    )
    assert check_nodes(nodes, "n1", "/scratch/gtsfm") == []
    assert check_nodes([node("n1"), node("n2")], "n1", "~/gtsfm") == []


def test_held_files_are_used_and_the_rest_downloaded():
    es = entries()
    have, download, problems = split_held(
        es,
        {"/ctl/thirdparty/b.bin": {"sha256": B, "size": 7}, "/ctl/thirdparty/a.bin": {"sha256": A, "size": 3}},
        "/inv/lock.json",
    )
    assert problems == []
    assert [e["name"] for e in have] == ["thirdparty/a.bin", "thirdparty/b.bin"]
    assert have[1]["found_sha256"] == B and have[1]["found_size"] == 7
    assert [e["name"] for e in download] == ["data/c.bin"]


def test_a_held_file_with_a_wrong_sum_is_refused_naming_its_pin_or_given_sum():
    pinned = json.dumps({"version": 1, "files": {FILES[0]["url"]: {"sha256": A}}})
    es = entries(lock_text=pinned, lock_path="/inv/lock.json")
    _have, _download, problems = split_held(
        es,
        {"/ctl/thirdparty/a.bin": {"sha256": C, "size": 1}, "/ctl/thirdparty/b.bin": {"sha256": C, "size": 1}},
        "/inv/lock.json",
    )
    assert problems[0] == (
        "model_weights: /ctl/thirdparty/a.bin (on the controller, for thirdparty/a.bin from "
        f"https://example.org/a.bin): sha256 mismatch: expected {A} (pinned in /inv/lock.json), got {C}. Nothing was "
        "copied. Fix: replace the file with the right one, or remove it so that it is downloaded, or re-pin on "
        "purpose with model_weights_repin=true."
    )
    assert f"expected {B} (given), got {C}" in problems[1] and problems[1].endswith("downloaded.")


def plan_of(fetch_on="scheduler", held=None):
    es = entries()
    have, download, _problems = split_held(es, held or {}, "/inv/lock.json")
    return {"entries": es, "held": have, "download": download, "lock_text": "", "fetch_on": fetch_on}


def job(entry, changed=True):
    return {"item": entry, "ansible_job_id": "j", "changed": changed}


def test_outcome_of_downloads_pins_the_verified_and_names_each_failure():
    plan = plan_of(held={"/ctl/thirdparty/b.bin": {"sha256": B, "size": 7}})
    a, c = plan["download"]
    jobs = {"results": [job(a), job(c)]}
    followed = {
        "results": [
            {"item": job(a), "result": {"sha256": A, "size": 3}},
            {"item": job(c), "result": {"msg": "origin said 404"}},
        ]
    }
    out = outcome(plan, jobs, followed, False, "node1", "/inv/lock.json")
    assert out["verified"] == [
        {"origin": a["origin"], "name": a["name"], "sha256": A, "size": 3},
        {"origin": FILES[1]["url"], "name": "thirdparty/b.bin", "sha256": B, "size": 7},
    ]
    assert out["failures"][0] == "node1: origin said 404"
    assert "pinned in /inv/lock.json, trust on first use" in out["failures"][1]
    assert json.loads(out["lock"])["files"] == {a["origin"]: {"sha256": A, "size": 3, "dest": "thirdparty/a.bin"}}
    assert [e["name"] for e in out["to_copy"]] == ["thirdparty/b.bin"]
    assert out["pending"] == []
    assert out["expected"] == {a["path"]: A, plan["entries"][1]["path"]: B, c["path"]: None}


def test_a_followed_job_without_a_result_timed_out():
    plan = plan_of()
    jobs = {"results": [job(e) for e in plan["download"]]}
    followed = {"results": [{"item": j} for j in jobs["results"]]}
    out = outcome(plan, jobs, followed, False, "node1", "/inv/lock.json")
    assert out["failures"][:3] == ["node1: a download did not finish in time"] * 3


def test_downloads_on_the_controller_go_to_the_scheduler_and_check_mode_holds_them_back():
    plan = plan_of(fetch_on="controller")
    jobs = {"results": [job(e) for e in plan["download"]]}
    followed = {"results": [{"item": j, "result": {"sha256": A, "size": 1}} for j in jobs["results"]]}
    out = outcome(plan, jobs, followed, False, "localhost", "L")
    assert [e["name"] for e in out["to_copy"]] == [e["name"] for e in plan["download"]]
    checked = outcome(plan, jobs, {"results": []}, True, "localhost", "L")
    assert checked["to_copy"] == [] and checked["failures"] == []
    assert checked["pending"] == [e["name"] for e in plan["download"]]


def test_check_mode_on_the_scheduler_holds_back_only_what_would_change():
    plan = plan_of()
    a, b, c = plan["download"]
    jobs = {"results": [dict(job(a, changed=False), sha256=A, size=1), job(b), job(c)]}
    out = outcome(plan, jobs, {"skipped": True}, True, "node1", "L")
    assert out["pending"] == [b["name"], c["name"]]
    assert out["verified"] == [{"origin": a["origin"], "name": a["name"], "sha256": A, "size": 1}]


def test_a_file_in_the_home_goes_to_one_node_per_other_home_and_others_to_every_node():
    nodes = [
        node("n1", mates=["n1", "n2"]),
        node("n2", writer=False, mates=["n1", "n2"]),
        node("n3"),
        node("n4", writer=False, mates=["n3", "n4"]),
    ]
    es = entries()
    out = sends(es, nodes, "n1")
    assert [(e["name"], e["targets"]) for e in out] == [
        ("thirdparty/a.bin", ["n3"]),
        ("thirdparty/b.bin", ["n3"]),
        ("data/c.bin", ["n2", "n3", "n4"]),
    ]
    assert [e["name"] for e in sends(es, nodes, "n1", ["data/c.bin"])] == ["thirdparty/a.bin", "thirdparty/b.bin"]


def test_one_shared_home_sends_nothing_in_it():
    nodes = [node("n1", mates=["n1", "n2"]), node("n2", writer=False, mates=["n1", "n2"])]
    assert [e["name"] for e in sends(entries(), nodes, "n1")] == ["data/c.bin"]
    assert sends(entries(), [node("n1")], "n1") == []


def test_a_node_copy_is_checked_against_its_sum():
    lines = [A + "  /g/a.bin", C + " */g/b.bin", "sha256sum: /g/c.bin: No such file or directory"]
    bad = check_copies({"/g/a.bin": A, "/g/b.bin": B, "/g/c.bin": None, "/g/d bin": None}, lines)
    assert bad == [f"/g/b.bin: sha256 {C}, expected {B}", "/g/c.bin is missing", "/g/d bin is missing"]
    assert check_copies({"/g/a.bin": None}, [A + "  /g/a.bin"]) == []


def test_a_skipped_plan_has_an_empty_outcome():
    skipped = {"changed": False, "skipped": True, "false_condition": "_model_weights_wanted | bool"}
    out = outcome(skipped, {"skipped": True}, {"skipped": True}, False, "node1", "L")
    assert out == {"verified": [], "failures": [], "lock": "", "to_copy": [], "pending": [], "expected": {}}
