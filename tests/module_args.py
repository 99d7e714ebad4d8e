# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Hand arguments to the next AnsibleModule, on every supported ansible-core (the unit tests of modules use it)."""

from __future__ import annotations

import contextlib
import json

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


__all__ = ["patch_module_args"]
