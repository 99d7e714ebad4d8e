# -*- coding: utf-8 -*-
# Copyright: gtsfm.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The model_weights manifest and lock file, on the controller.

Private to the gtsfm.cluster collection (used by the filters in plugins/filter/model_weights.py); not a public API.

CATALOG is GTSfM's own list of weight files (scripts/download_model_weights.sh), grouped into the sets users pick:
the one copy of it, read by the model_weights role (catalog()) and by conda_env, whose checkout copy leaves these
paths to model_weights (checkout_excludes()).

manifest() turns the role's entries ({url, dest, sha256?, size?}) into what the tasks need: the absolute path on the
nodes, the URL to ask (the origin, or the mirror), the path on the controller, and the sum to expect (given, or
pinned in the lock file). lock() merges verified sums into the lock file's text, in a stable order, so a re-run that
learns nothing new reproduces the file byte for byte.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib
import json
import os
import re

from ansible_collections.gtsfm.cluster.plugins.module_utils._fetch import redact_url
from ansible_collections.gtsfm.cluster.plugins.module_utils._plain import plain

SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
ENTRY_KEYS = ("url", "dest", "sha256", "size", "set")
LOCK_VERSION = 1
# What else a weight file's place holds beside it, hidden: the fetch's partial file (.NAME.gtsfm-partial) and the
# broadcast's record, lock and temporary copies (.NAME.gtsfm-broadcast*), all named by this prefix.
SIDE_PREFIX = ".%s.gtsfm-"

# GTSfM's scripts/download_model_weights.sh, grouped into sets. No checksum is published for any of these files: the
# first verified download pins each one in the lock file (trust on first use).
_SUPERGLUE = "https://github.com/magicleap/SuperGluePretrainedNetwork/raw/master/models/weights/"
CATALOG = {
    "superglue": [
        {"url": _SUPERGLUE + name, "dest": "thirdparty/SuperGluePretrainedNetwork/models/weights/" + name}
        for name in ("superpoint_v1.pth", "superglue_indoor.pth", "superglue_outdoor.pth")
    ],
    "patchmatchnet": [
        {
            "url": "https://github.com/FangjinhuaWang/PatchmatchNet/raw/fa4ecae69b3a376ce238002db8d5283406128eac/checkpoints/model_000007.ckpt",
            "dest": "thirdparty/patchmatchnet/checkpoints/model_000007.ckpt",
        }
    ],
    "d2net": [{"url": "https://dusmanu.com/files/d2-net/d2_tf.pth", "dest": "thirdparty/d2net/weights/d2_tf.pth"}],
    "netvlad": [
        {
            "url": "https://github.com/johnwlambert/gtsfm-datasets-mirror/releases/download/gerrard-hall-100/VGG16-NetVLAD-Pitts30K.mat",
            "dest": "thirdparty/hloc/weights/VGG16-NetVLAD-Pitts30K.mat",
        }
    ],
    "vggt": [
        {
            "url": "https://huggingface.co/facebook/VGGT-1B/resolve/main/model.pt",
            "dest": "thirdparty/vggt/weights/model.pt",
        }
    ],
}


class WeightsError(Exception):
    """Bad manifest or lock file; the message names the entry or file, the field and the fix."""


def _expand(path, home):
    if path == "~" or path.startswith("~/"):
        return home.rstrip("/") + path[1:]
    return path


def catalog(sets):
    """GTSfM's entries of the named sets, in catalog order; 'all' for every set."""
    sets = plain(sets)
    if sets == "all":
        sets = list(CATALOG)
    if isinstance(sets, str) or not isinstance(sets, list):
        raise WeightsError(
            f"model_weights_sets: expected a list of set names, got {sets!r}. Fix: pick from {', '.join(CATALOG)}."
        )
    unknown = [name for name in sets if name not in CATALOG]
    if unknown:
        raise WeightsError(
            f"model_weights_sets: unknown set(s) {', '.join(map(str, unknown))}. Fix: pick from {', '.join(CATALOG)}."
        )
    return [dict(entry, set=name) for name in sets for entry in CATALOG[name]]


def _glob_literal(text):
    """text as a pattern that matches only itself (for the broadcast module's and rsync's exclude alike)."""
    return re.sub(r"([*?\[])", r"[\1]", text)


def checkout_excludes(entries):
    """Exclude patterns, from the checkout's top, for the places inside the checkout the entries' relative dests take:
    each file and its hidden side files. Entries that are not relative file paths are skipped (the model_weights
    preflight names them)."""
    patterns = []
    for entry in plain(entries or []):
        dest = entry.get("dest") if isinstance(entry, dict) else None
        if not isinstance(dest, str) or not dest.strip() or dest.startswith(("/", "~")) or dest.endswith("/"):
            continue
        rel = os.path.normpath(dest)
        if rel.startswith("..") or rel == ".":
            continue
        head, name = os.path.split(rel)
        side = "/" + _glob_literal(os.path.join(head, SIDE_PREFIX % name)) + "*"
        for pattern in ("/" + _glob_literal(rel), side):
            if pattern not in patterns:
                patterns.append(pattern)
    return patterns


def pin_key(url):
    """The key a URL's pin is filed under: the URL as redact_url shows it. A lock file is meant to be committed, so a
    token in the URL's userinfo, query or fragment never reaches it; the file's identity is its host and path."""
    return redact_url(url)


def parse_lock(text, lock_path):
    """The pins of a lock file's text: {pin_key(origin URL): {sha256, size, dest}}; empty text means no pins yet.
    A pin written under a whole URL (before 0.4.0) is read under its key, so the next write drops the URL's secrets."""
    if text is None or not str(text).strip():
        return {}
    fix = (
        "Fix: restore it from version control, or delete it to pin every file again on the next run "
        "(trust on first use)."
    )
    try:
        data = json.loads(str(text))
    except ValueError as exc:
        raise WeightsError(f"{lock_path}: not valid JSON ({exc}). {fix}")
    if not isinstance(data, dict) or not isinstance(data.get("files"), dict):
        raise WeightsError(f"{lock_path}: not a model_weights lock file (expected an object with 'files'). {fix}")
    pins = {}
    for url, pin in data["files"].items():
        if not isinstance(pin, dict) or not SHA256_RE.match(str(pin.get("sha256", ""))):
            raise WeightsError(f"{lock_path}: files[{url!r}] has no valid sha256. {fix}")
        pins[pin_key(url)] = pin
    return pins


def manifest(entries, checkout_dir, home, mirror="", lock_text="", lock_path="", repin=False, controller_dir=""):
    """Resolved entries: name, url, origin, shown (origin redacted), path, cache, sha256 (expected or None), given,
    pinned, size, id."""
    entries = plain(entries)
    if not isinstance(entries, list) or not entries:
        raise WeightsError(
            "model_weights_files: expected a non-empty list of {url, dest, sha256?, size?} "
            "entries. Fix: set it, or leave it empty and pick model_weights_sets."
        )
    home = str(home)
    checkout = _expand(str(checkout_dir), home)
    if not checkout.startswith("/"):
        raise WeightsError(
            f"model_weights_checkout_dir: {checkout_dir!r} is not an absolute path (or ~/...). Fix: give the GTSfM "
            "checkout's path on the nodes."
        )
    pins = parse_lock(lock_text, lock_path)
    mirror = str(mirror or "").rstrip("/")
    controller_dir = os.path.expanduser(str(controller_dir or ""))
    out = []
    seen = {}
    keys = {}
    for index, entry in enumerate(entries):
        where = f"model_weights_files[{index}]"
        if not isinstance(entry, dict):
            raise WeightsError(
                f"{where}: expected a mapping with url and dest, got {entry!r}. Fix: write it as "
                "{url: https://..., dest: thirdparty/...}."
            )
        unknown = sorted(set(entry) - set(ENTRY_KEYS))
        if unknown:
            raise WeightsError(f"{where}: unknown key(s) {', '.join(unknown)}. Fix: use only {', '.join(ENTRY_KEYS)}.")
        url = entry.get("url")
        if not isinstance(url, str) or not re.match(r"^https?://[^/\s]+/\S*$", url):
            raise WeightsError(
                f"{where}: url {url!r} is not an http:// or https:// URL. Fix: give the file's download URL."
            )
        where = f"{where} ({redact_url(url)})"
        key = pin_key(url)
        if key in keys and keys[key][1] != url:
            raise WeightsError(
                f"{where}: its URL differs from that of {keys[key][0]} only in the parts a lock file leaves out "
                "(userinfo, query, fragment), so the two cannot be pinned apart. Fix: give each file its own path, or "
                "its sha256."
            )
        keys[key] = (where, url)
        dest = entry.get("dest")
        if not isinstance(dest, str) or not dest.strip() or dest.endswith("/"):
            raise WeightsError(
                f"{where}: dest {dest!r} must be a file path, relative to the GTSfM checkout or absolute. Fix: give "
                "the file's path, e.g. thirdparty/vggt/weights/model.pt."
            )
        if ".." in dest.split("/"):
            raise WeightsError(f"{where}: dest {dest!r} contains '..'. Fix: give the path without '..'.")
        if dest.startswith(("/", "~")):
            path = os.path.normpath(_expand(dest, home))
            rel = path.lstrip("/")
        else:
            rel = os.path.normpath(dest)
            path = os.path.join(checkout, rel)
        if path in seen:
            raise WeightsError(
                f"{where}: dest {path} is also the dest of {seen[path]}. Fix: give each file its own dest."
            )
        seen[path] = where
        sha = entry.get("sha256")
        if sha is not None and sha != "":
            sha = str(sha).strip().lower()
            if sha.startswith("sha256:"):
                sha = sha[7:]
            if not SHA256_RE.match(sha):
                raise WeightsError(
                    f"{where}: sha256 {entry.get('sha256')!r} is not 64 hex digits. Fix: give what 'sha256sum FILE' "
                    "prints, or leave it out to pin the first download."
                )
        else:
            sha = None
        size = entry.get("size")
        if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 0):
            raise WeightsError(
                f"{where}: size {size!r} is not a number of bytes. Fix: give an integer, or leave it out."
            )
        pin = None if (sha or repin) else pins.get(key)
        out.append(
            {
                "name": rel,
                "origin": url,
                "shown": redact_url(url),  # the URL as messages show it
                "url": f"{mirror}/{rel}" if mirror else url,
                "path": path,
                "cache": os.path.join(controller_dir, rel) if controller_dir else "",
                "sha256": sha or (pin["sha256"] if pin else None),
                "given": sha is not None,
                "pinned": pin is not None,
                "size": size,
                "id": hashlib.sha1(path.encode("utf-8")).hexdigest()[:16],
            }
        )
    return out


def lock(lock_text, lock_path, entries, results, repin=False):
    """The lock file's new text: the old pins, plus (or, with repin, replacing) the verified sums of entries
    without a given sha256. results: [{origin, sha256, size}] of verified files."""
    pins = parse_lock(lock_text, lock_path)
    by_origin = dict((e["origin"], e) for e in plain(entries))
    for result in plain(results):
        entry = by_origin.get(result.get("origin"))
        if entry is None or entry["given"] or not result.get("sha256"):
            continue
        key = pin_key(entry["origin"])
        if key in pins and not repin:
            continue  # a pin is changed only on purpose
        pins[key] = {"sha256": result["sha256"], "size": result.get("size"), "dest": entry["name"]}
    if not pins and not str(lock_text or "").strip():
        return ""
    document = {
        "comment": "gtsfm.cluster.model_weights: SHA-256 of each weight file, pinned at its first verified download "
        "(trust on first use). Commit this file; change a pin only with model_weights_repin=true.",
        "version": LOCK_VERSION,
        "files": pins,
    }
    return json.dumps(document, indent=2, sort_keys=True) + "\n"
