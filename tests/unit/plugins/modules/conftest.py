# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Run a module's main() in-process: exit_json/fail_json become exceptions carrying the result."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from ansible.module_utils import basic

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))
from module_args import patch_module_args  # noqa: E402  pylint: disable=wrong-import-position


class ModuleExit(Exception):
    """main() called exit_json."""


class ModuleFail(Exception):
    """main() called fail_json."""


@pytest.fixture
def run_module(monkeypatch):
    def exit_json(self, **kwargs):
        raise ModuleExit(kwargs)

    def fail_json(self, **kwargs):
        raise ModuleFail(kwargs)

    monkeypatch.setattr(basic.AnsibleModule, "exit_json", exit_json)
    monkeypatch.setattr(basic.AnsibleModule, "fail_json", fail_json)

    def _run(main, args):
        """Return (failed, result) of main() with args."""
        with patch_module_args(args):
            try:
                main()
            except ModuleExit as exc:
                return False, exc.args[0]
            except ModuleFail as exc:
                return True, exc.args[0]
        raise AssertionError("the module returned without exit_json or fail_json")

    return _run
