"""The model_weights manifest and lock file: resolution, pins, stable output, clear errors."""

from __future__ import annotations

import json

import pytest

from ansible_collections.gtsfm.cluster.plugins.plugin_utils._weights import WeightsError, lock, manifest

A = "a" * 64
B = "b" * 64
ENTRIES = [
    {"url": "https://example.org/w/superpoint_v1.pth", "dest": "thirdparty/sg/superpoint_v1.pth"},
    {
        "url": "https://example.org/w/model.pt",
        "dest": "~/weights/model.pt",
        "sha256": "SHA256:" + B.upper(),
        "size": 10,
    },
    {"url": "http://example.org/x.bin", "dest": "/data/x.bin"},
]


def test_resolves_paths_urls_and_sums():
    out = manifest(ENTRIES, "~/gtsfm", "/home/alice", controller_dir="/srv/w")
    assert [e["path"] for e in out] == [
        "/home/alice/gtsfm/thirdparty/sg/superpoint_v1.pth",
        "/home/alice/weights/model.pt",
        "/data/x.bin",
    ]
    assert [e["name"] for e in out] == ["thirdparty/sg/superpoint_v1.pth", "home/alice/weights/model.pt", "data/x.bin"]
    assert out[0]["url"] == out[0]["origin"] == ENTRIES[0]["url"]
    assert out[0]["cache"] == "/srv/w/thirdparty/sg/superpoint_v1.pth"
    assert out[1]["sha256"] == B and out[1]["given"] and out[1]["size"] == 10
    assert out[0]["sha256"] is None and not out[0]["pinned"]


def test_mirror_replaces_origins_and_pins_stay_keyed_by_origin():
    text = lock("", "L", manifest(ENTRIES, "/g", "/h"), [{"origin": ENTRIES[0]["url"], "sha256": A, "size": 3}])
    out = manifest(ENTRIES, "/g", "/h", mirror="http://mirror:8080/w/", lock_text=text)
    assert out[0]["url"] == "http://mirror:8080/w/thirdparty/sg/superpoint_v1.pth"
    assert out[2]["url"] == "http://mirror:8080/w/data/x.bin"
    assert out[0]["sha256"] == A and out[0]["pinned"] and not out[0]["given"]
    assert manifest(ENTRIES, "/g", "/h", lock_text=text, repin=True)[0]["sha256"] is None


def test_lock_is_stable_and_only_repin_changes_a_pin():
    entries = manifest(ENTRIES, "/g", "/h")
    first = lock(
        "",
        "L",
        entries,
        [{"origin": ENTRIES[0]["url"], "sha256": A, "size": 3}, {"origin": ENTRIES[1]["url"], "sha256": B, "size": 10}],
    )
    data = json.loads(first)
    assert list(data["files"]) == [ENTRIES[0]["url"]]  # an entry with a given sum is not pinned
    assert data["files"][ENTRIES[0]["url"]] == {"sha256": A, "size": 3, "dest": "thirdparty/sg/superpoint_v1.pth"}
    again = lock(first, "L", entries, [{"origin": ENTRIES[0]["url"], "sha256": B, "size": 3}])
    assert again == first
    assert (
        json.loads(lock(first, "L", entries, [{"origin": ENTRIES[0]["url"], "sha256": B, "size": 3}], repin=True))[
            "files"
        ][ENTRIES[0]["url"]]["sha256"]
        == B
    )
    assert lock("", "L", entries, []) == ""


def test_pins_of_files_not_in_this_run_are_kept():
    entries = manifest(ENTRIES, "/g", "/h")
    first = lock("", "L", entries, [{"origin": ENTRIES[0]["url"], "sha256": A, "size": 3}])
    other = manifest(ENTRIES[2:], "/g", "/h", lock_text=first)
    assert (
        ENTRIES[0]["url"] in json.loads(lock(first, "L", other, [{"origin": ENTRIES[2]["url"], "sha256": B}]))["files"]
    )


@pytest.mark.parametrize(
    "entries, message",
    [
        ([], "expected a non-empty list"),
        (["x"], r"model_weights_files\[0\]: expected a mapping"),
        ([{"url": "ftp://x/y", "dest": "a"}], r"\[0\]: url 'ftp://x/y' is not an http"),
        ([{"url": "http://x/y", "dest": "a/"}], r"\[0\] \(http://x/y\): dest 'a/' must be a file path"),
        ([{"url": "http://x/y", "dest": "../a"}], r"contains '\.\.'"),
        ([{"url": "http://x/y", "dest": "a", "sha": "1"}], r"unknown key\(s\) sha\. Fix: use only url, dest"),
        ([{"url": "http://x/y", "dest": "a", "sha256": "12"}], r"sha256 '12' is not 64 hex digits"),
        ([{"url": "http://x/y", "dest": "a", "size": "big"}], r"size 'big' is not a number of bytes"),
        (
            [{"url": "http://x/y", "dest": "a"}, {"url": "http://x/z", "dest": "/g/a"}],
            r"\[1\] \(http://x/z\): dest /g/a is also the dest of model_weights_files\[0\]",
        ),
    ],
)
def test_bad_entries_are_named(entries, message):
    with pytest.raises(WeightsError, match=message):
        manifest(entries, "/g", "/h")


def test_relative_checkout_is_refused():
    with pytest.raises(WeightsError, match="model_weights_checkout_dir: 'gtsfm' is not an absolute path"):
        manifest(ENTRIES, "gtsfm", "/h")


@pytest.mark.parametrize(
    "text, message",
    [
        ("{", "not valid JSON"),
        ("[]", "not a model_weights lock file"),
        ('{"files": {"u": {"sha256": "x"}}}', r"files\['u'\] has no valid sha256"),
    ],
)
def test_bad_lock_file_is_named_with_the_fix(text, message):
    with pytest.raises(WeightsError, match="/inv/model_weights.lock.json: " + message + ".*Fix: restore it"):
        manifest(ENTRIES, "/g", "/h", lock_text=text, lock_path="/inv/model_weights.lock.json")


def test_catalog_gives_the_sets_entries_and_names_unknown_sets():
    from ansible_collections.gtsfm.cluster.plugins.plugin_utils._weights import CATALOG, catalog

    assert [e["dest"] for e in catalog(["vggt"])] == ["thirdparty/vggt/weights/model.pt"]
    assert len(catalog("all")) == sum(len(v) for v in CATALOG.values()) == 7
    assert {e["set"] for e in catalog("all")} == set(CATALOG)
    manifest(catalog("all"), "~/gtsfm", "/home/a")  # the catalog is a valid manifest
    with pytest.raises(WeightsError, match="unknown set.s. sift. Fix: pick from superglue, patchmatchnet, d2net"):
        catalog(["vggt", "sift"])


def test_checkout_excludes_cover_each_relative_dest_and_its_side_files_literally():
    from ansible_collections.gtsfm.cluster.plugins.module_utils._broadcast_hop import Exclude
    from ansible_collections.gtsfm.cluster.plugins.plugin_utils._weights import checkout_excludes

    out = checkout_excludes(
        [
            {"dest": "thirdparty/vggt/weights/model.pt"},
            {"dest": "~/w/x.pt"},
            {"dest": "/d/y"},
            {"dest": "odd[1]/m*.pt"},
            "junk",
            {"dest": "thirdparty/vggt/weights/model.pt"},
        ]
    )
    assert out == [
        "/thirdparty/vggt/weights/model.pt",
        "/thirdparty/vggt/weights/.model.pt.gtsfm-*",
        "/odd[[]1]/m[*].pt",
        "/odd[[]1]/.m[*].pt.gtsfm-*",
    ]
    exclude = Exclude(out)
    for rel in (
        "thirdparty/vggt/weights/model.pt",
        "thirdparty/vggt/weights/.model.pt.gtsfm-partial",
        "thirdparty/vggt/weights/.model.pt.gtsfm-broadcast.json",
        "odd[1]/m*.pt",
    ):
        assert exclude.excluded(rel, False), rel
    for rel in ("thirdparty/vggt/weights/other.pt", "odd1/mx.pt", "x/thirdparty/vggt/weights/model.pt"):
        assert not exclude.excluded(rel, False), rel


def test_a_token_in_the_url_never_reaches_the_lock_file_or_a_message():
    secret = "https://hf:hunter2@example.org/w/gated.pt?token=s3cr3t#frag"
    entries = manifest([{"url": secret, "dest": "w/gated.pt"}], "/g", "/h")
    assert entries[0]["origin"] == secret and "s3cr3t" not in entries[0]["shown"]
    text = lock("", "L", entries, [{"origin": secret, "sha256": A, "size": 3}])
    assert "s3cr3t" not in text and "hunter2" not in text
    assert list(json.loads(text)["files"]) == ["https://********@example.org/w/gated.pt?********#********"]
    # The pin is found again when the token rotates: the file is the same.
    rotated = manifest([{"url": secret.replace("s3cr3t", "n3w"), "dest": "w/gated.pt"}], "/g", "/h", lock_text=text)
    assert rotated[0]["sha256"] == A and rotated[0]["pinned"]


def test_a_lock_file_of_whole_urls_is_read_and_rewritten_without_their_secrets():
    secret = "https://example.org/w/gated.pt?token=s3cr3t"
    old = json.dumps({"version": 1, "files": {secret: {"sha256": A, "size": 3, "dest": "w/gated.pt"}}})
    entries = manifest([{"url": secret, "dest": "w/gated.pt"}], "/g", "/h", lock_text=old)
    assert entries[0]["pinned"] and entries[0]["sha256"] == A
    assert "s3cr3t" not in lock(old, "L", entries, [{"origin": secret, "sha256": A, "size": 3}])


def test_urls_that_differ_only_in_their_query_are_refused_naming_both():
    with pytest.raises(WeightsError) as err:
        manifest(
            [{"url": "https://example.org/f?x=1", "dest": "a"}, {"url": "https://example.org/f?x=2", "dest": "b"}],
            "/g",
            "/h",
        )
    assert str(err.value).startswith(
        "model_weights_files[1] (https://example.org/f?********): its URL differs from "
        "that of model_weights_files[0] (https://example.org/f?********) only in"
    )
