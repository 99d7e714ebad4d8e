# -*- coding: utf-8 -*-
# Copyright: gtsfm.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filter gtsfm.cluster.shell_path; documented in shell_path.yml beside it."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.errors import AnsibleFilterError
from ansible.module_utils.six.moves import shlex_quote


def shell_path(path):
    """A path as one shell word: ~ and ~/... become "$HOME"..., the rest is quoted literally."""
    if not isinstance(path, str) or not path:
        raise AnsibleFilterError(f"shell_path: expected a non-empty path, got {path!r}")
    path = str(path)
    if path == "~":
        return '"$HOME"'
    if path.startswith("~/"):
        return '"$HOME"' + shlex_quote(path[1:])
    if path.startswith("~"):
        raise AnsibleFilterError(f"shell_path: {path}: ~user paths are not supported; use an absolute path")
    return shlex_quote(path)


class FilterModule:
    """Paths as shell words for files every node shares, such as a ~/.bashrc on a shared home."""

    def filters(self):
        return {"shell_path": shell_path}
