#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: gtsfm.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: bashrc_block
short_description: Keep one marked block in a ~/.bashrc before its interactive guard
version_added: 0.3.0
description:
  - Bash runs C(~/.bashrc) for a non-interactive C(ssh host command) too (Debian and Ubuntu build it so), but a
    stock file returns early at its interactive guard. This module places one marked block B(before) that guard,
    so what it sets (an environment, C(PYTHONPATH)) reaches Dask's SSH workers as well as interactive shells.
  - Recognised guards, with quoting and spacing variants and C(return) or C(exit) -
    a C(case $- in) statement whose only other branch returns (Debian's stock file; one or several lines),
    C([ -z "$PS1" ] && return),
    C([[ $- != *i* ]] && return), C([[ $- == *i* ]] || return), C(if [ -z "$PS1" ]; then return; fi).
    With no guard the block goes at the top of the file.
  - Only a guard at the file's top level counts. The module follows the file's structure as bash reads it (function
    bodies, C(if)/C(case)/loop nesting, subshells, command substitutions, heredocs, quoted text spanning lines,
    continued lines); a guard-shaped line inside a function body, a heredoc or a string is not a guard, and one
    inside an C(if), C(case) or loop - or any other C(return) or C(exit) that may end the reading before the guard -
    puts the block at the top of the file, the one place every shell runs. A file whose structure it cannot follow
    (an unmatched C(fi), an unclosed quote) is refused naming the line.
  - An existing C(# >>> conda initialize >>>) ... C(# <<< conda initialize <<<) block found after the guard is moved
    before it, as conda's manual asks for non-interactive shells.
  - Every other byte of the file is kept (CRLF line ends, a missing final newline). The block is never duplicated;
    a re-run with the same block changes nothing.
  - A symlinked file (dotfile managers) is edited through the link - its target is rewritten atomically in the
    target's own directory and the link stays. A missing file is created.
  - A file that cannot be edited safely (an interactive test of a shape not recognised, a structure it cannot follow,
    damaged markers, NUL bytes, not a regular file, a dangling link) is left untouched and the module fails saying
    why and what to do.
options:
  path:
    description:
      - The bashrc file. Created (mode C(0644) unless O(mode) says otherwise) if missing.
    type: path
    default: ~/.bashrc
  block:
    description:
      - The lines to keep between the markers, without line ends. Required with O(state=present).
    type: str
  marker:
    description:
      - Name in the marker lines (C(# BEGIN name ...) / C(# END name ...)); each distinct name is a separate block.
    type: str
    default: gtsfm.cluster.bashrc_init
  move_conda_init:
    description:
      - Move a C(conda initialize) block found after the guard to before it.
    type: bool
    default: true
  backup:
    description:
      - Before the first change, keep a copy of the file as it was at O(path)C(.gtsfm-cluster.orig). Made once,
        never overwritten, so it holds the user's own file.
    type: bool
    default: true
  state:
    description:
      - V(absent) removes the block and leaves the rest of the file (a moved conda block stays where it is).
    type: str
    choices: [present, absent]
    default: present
seealso:
  - module: ansible.builtin.blockinfile
extends_documentation_fragment:
  - gtsfm.cluster.attributes.block
  - gtsfm.cluster.attributes.observed
  - gtsfm.cluster.attributes
  - ansible.builtin.action_common_attributes
  - ansible.builtin.files
attributes:
  diff_mode:
    details: Shows the whole file before and after.
"""

EXAMPLES = r"""
- name: Activate a venv and put the checkout on PYTHONPATH for every shell, interactive or not
  gtsfm.cluster.bashrc_block:
    block: |
      if [ -d /opt/gtsfm/env/bin ]; then
        export VIRTUAL_ENV=/opt/gtsfm/env PATH="/opt/gtsfm/env/bin:$PATH"
      fi
      export PYTHONPATH="/opt/gtsfm/src${PYTHONPATH:+:$PYTHONPATH}"

- name: Remove the block again
  gtsfm.cluster.bashrc_block:
    state: absent
"""

RETURN = r"""
decided_from:
  description: V(observed) when the action plugin answered from O(observed) and the module did not run.
  returned: when the module did not run
  type: str
  sample: observed
  version_added: 0.4.0
path:
  description: Absolute path of the file as given (the link, for a symlink).
  returned: always
  type: str
  sample: /home/alice/.bashrc
target:
  description: The file actually written (the link's target for a symlink).
  returned: always
  type: str
  sample: /home/alice/dotfiles/bashrc
created:
  description: Whether the file was (or, in check mode, would be) created.
  returned: always
  type: bool
backup_file:
  description: The one backup copy, when this run made it.
  returned: when a backup was made
  type: str
  sample: /home/alice/.bashrc.gtsfm-cluster.orig
"""

import os
import shutil
import tempfile

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.text.converters import to_text

from ansible_collections.gtsfm.cluster.plugins.module_utils._bashrc import BashrcError, rewrite


def _fail(module, path, msg):
    module.fail_json(msg=f"bashrc_block: {path}: {msg}. The file was not changed.", path=path)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type="path", default="~/.bashrc"),
            block=dict(type="str"),
            marker=dict(type="str", default="gtsfm.cluster.bashrc_init"),
            move_conda_init=dict(type="bool", default=True),
            backup=dict(type="bool", default=True),
            state=dict(type="str", choices=["present", "absent"], default="present"),
            # Read by the action plugin on the controller (plugins/action/bashrc_block.py) and never sent here.
            observed=dict(type="dict"),
        ),
        required_if=[("state", "present", ["block"])],
        add_file_common_args=True,
        supports_check_mode=True,
    )
    path = os.path.abspath(module.params["path"])
    target = os.path.realpath(path)
    if os.path.islink(path) and not os.path.lexists(target):
        _fail(
            module,
            path,
            f"it is a symlink to {target}, which does not exist. Fix: create {target} (or remove the link) and re-run",
        )
    exists = os.path.lexists(target)
    if exists and not os.path.isfile(target):
        _fail(
            module,
            path,
            f"{target} is not a regular file. Fix: replace it with a file, or set path to the bashrc bash reads",
        )
    try:
        if exists:
            with open(target, "rb") as handle:
                raw = handle.read()
        else:
            raw = b""
    except OSError as exc:
        _fail(module, path, f"cannot read it ({exc}). Fix: make it readable by {os.environ.get('USER', 'you')}")
    # surrogateescape keeps bytes that are not UTF-8 exactly as they were.
    before = raw.decode("utf-8", "surrogateescape")
    try:
        after, changed = rewrite(before, exists, module.params)
    except BashrcError as exc:
        _fail(
            module,
            path,
            f"{exc}. Fix: move the environment lines before that line yourself, or rewrite the guard as "
            "`case $- in *i*) ;; *) return;; esac`, then re-run",
        )
    result = dict(changed=changed, path=path, target=target, created=not exists and changed)
    if module._diff:
        result["diff"] = dict(
            before_header=path,
            after_header=path,
            before=to_text(before, errors="surrogate_or_replace"),
            after=to_text(after, errors="surrogate_or_replace"),
        )
    if changed and not module.check_mode:
        directory = os.path.dirname(target)
        if not os.path.isdir(directory):
            _fail(module, path, f"its directory {directory} does not exist. Fix: create it, or set path")
        if exists and module.params["backup"]:
            backup = path + ".gtsfm-cluster.orig"
            if not os.path.lexists(backup):
                fd, tmp = tempfile.mkstemp(prefix=".gtsfm-cluster-backup.", dir=os.path.dirname(path))
                os.close(fd)
                shutil.copy2(target, tmp)
                try:
                    # link(2) fails if another node of a shared home made the backup first: exactly one wins.
                    os.link(tmp, backup)
                    result["backup_file"] = backup
                except OSError:
                    pass
                os.unlink(tmp)
        try:
            fd, tmp = tempfile.mkstemp(prefix=".gtsfm-cluster.", dir=directory)
            with os.fdopen(fd, "wb") as handle:
                handle.write(after.encode("utf-8", "surrogateescape"))
            if exists:
                st = os.stat(target)
                os.chmod(tmp, st.st_mode & 0o7777)
                try:
                    os.chown(tmp, st.st_uid, st.st_gid)
                except OSError:
                    pass
            else:
                os.chmod(tmp, 0o644)
        except OSError as exc:
            _fail(module, path, f"cannot write in {directory} ({exc}). Fix: make the directory writable")
        module.atomic_move(tmp, target)
    file_args = module.load_file_common_arguments(module.params, path=target)
    if os.path.exists(target):
        result["changed"] = module.set_fs_attributes_if_different(file_args, result["changed"], expand=False)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
