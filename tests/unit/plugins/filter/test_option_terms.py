# -*- coding: utf-8 -*-
# Copyright: gtsfm.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""python_env speaks in its own options; conda_env's mapping turns them into the role's variables."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from ansible.errors import AnsibleFilterError

from ansible_collections.gtsfm.cluster.plugins.filter.option_terms import option_terms

ROOT = Path(__file__).resolve().parents[4]
NAMES = yaml.safe_load((ROOT / "roles" / "conda_env" / "vars" / "main.yml").read_text())[
    "_conda_env_python_env_options"
]


def test_each_option_named_becomes_the_roles_variable_and_the_rest_stays():
    msg = "Fix: free space there, or set option prefix elsewhere (or lower option min_free_mb); option other stays"
    assert option_terms(msg, NAMES) == (
        "Fix: free space there, or set conda_env_prefix elsewhere (or lower conda_env_min_free_mb); option other stays"
    )
    assert option_terms(None, NAMES) is None
    with pytest.raises(AnsibleFilterError, match="expected a mapping"):
        option_terms("x", ["prefix"])


def test_python_env_messages_name_no_role_variable_and_every_option_they_name_is_mapped():
    sources = [ROOT / "plugins" / "modules" / "python_env.py", ROOT / "plugins" / "module_utils" / "_python_env.py"]
    text = "\n".join(p.read_text() for p in sources)
    assert not re.search(r"conda_env_|model_weights_", text)
    spec = yaml.safe_load(
        (ROOT / "plugins" / "modules" / "python_env.py").read_text().split('DOCUMENTATION = r"""')[1].split('"""')[0]
    )["options"]
    named = set(re.findall(r"\boption ([a-z][a-z0-9_]*)", text)) | {"env_file", "project_dir"}
    assert named <= set(NAMES) <= set(spec), (named - set(NAMES), set(NAMES) - set(spec))
    defaults = yaml.safe_load((ROOT / "roles" / "conda_env" / "defaults" / "main.yml").read_text())
    assert set(NAMES.values()) <= set(defaults)
