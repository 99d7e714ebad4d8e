# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Every module takes its shared documentation from gtsfm.cluster.attributes, and ansible-doc renders what the
fragments and the module's own lines add up to (ansible-core merges them in an order that a misplaced fragment
silently gets wrong)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[4]
MODULES = sorted(p.stem for p in (ROOT / "plugins" / "modules").glob("*.py"))


def _own_doc(module: str) -> dict:
    source = (ROOT / "plugins" / "modules" / (module + ".py")).read_text()
    return yaml.safe_load(source.split('DOCUMENTATION = r"""', 1)[1].split('"""', 1)[0])


@pytest.fixture(scope="module")
def rendered() -> dict:
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"))
    res = subprocess.run(
        [str(Path(sys.executable).parent / "ansible-doc"), "--json"] + ["gtsfm.cluster." + m for m in MODULES],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
        env=env,
    )
    assert res.returncode == 0, res.stderr
    return {name.split(".")[-1]: entry["doc"] for name, entry in json.loads(res.stdout).items()}


@pytest.mark.parametrize("module", MODULES)
def test_the_module_extends_the_shared_fragment_and_says_only_what_differs(module):
    own = _own_doc(module)
    fragments = own["extends_documentation_fragment"]
    assert "gtsfm.cluster.attributes" in fragments
    # The specific parts come first: ansible-core lets an earlier fragment win over a later one.
    shared = fragments.index("gtsfm.cluster.attributes")
    assert all(f.startswith("gtsfm.cluster.attributes.") for f in fragments[:shared]), fragments
    assert "author" not in own
    for name, attribute in (own.get("attributes") or {}).items():
        assert attribute.get("platforms") != "posix", (module, name)


@pytest.mark.parametrize("module", MODULES)
def test_ansible_doc_renders_every_attribute_with_its_support(rendered, module):
    doc = rendered[module]
    assert doc["author"] == ["gtsfm.cluster maintainers (@borglab)"]
    assert doc["attributes"]["platform"]["platforms"] == "posix"
    assert doc["attributes"]["check_mode"]["support"] == "full"
    for name, attribute in doc["attributes"].items():
        assert attribute.get("description"), (module, name)
        assert attribute.get("support") in ("full", "partial", "none", "N/A"), (module, name)


def test_the_block_modules_show_a_diff_and_the_readers_none(rendered):
    for module in ("bashrc_block", "known_hosts_block", "managed_block"):
        assert rendered[module]["attributes"]["diff_mode"]["support"] == "full"
        assert rendered[module]["attributes"]["safe_file_operations"]["support"] == "full"
    for module in ("cluster_node_info", "progress_info", "follow"):
        assert rendered[module]["attributes"]["diff_mode"]["support"] == "N/A"
