# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Run a module's main() in-process: exit_json/fail_json become exceptions carrying the result."""
from __future__ import annotations

import contextlib
import json

import pytest
from ansible.module_utils import basic

try:
    from ansible.module_utils.testing import patch_module_args
except ImportError:  # ansible-core before 2.19 has no testing helper: feed the arguments the way 2.16-2.18 read them.
    @contextlib.contextmanager
    def patch_module_args(args):
        """Hand args to the next AnsibleModule as ansible-core 2.16-2.18 do: JSON in basic._ANSIBLE_ARGS."""
        args = dict({"_ansible_remote_tmp": "/tmp", "_ansible_keep_remote_files": False}, **args)
        saved = basic._ANSIBLE_ARGS  # pylint: disable=protected-access
        basic._ANSIBLE_ARGS = json.dumps({"ANSIBLE_MODULE_ARGS": args}).encode()  # pylint: disable=protected-access
        try:
            yield
        finally:
            basic._ANSIBLE_ARGS = saved  # pylint: disable=protected-access


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
