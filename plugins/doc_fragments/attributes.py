# -*- coding: utf-8 -*-
# Copyright: gtsfm.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations


class ModuleDocFragment:
    # What every module of the collection says the same way. The attributes' descriptions come from
    # ansible.builtin.action_common_attributes, which every module extends as well.
    #
    # ansible-core merges fragments one at a time into the module's own text, and what is already there wins key by
    # key: a module's own attribute entry beats every fragment, and a fragment listed earlier beats one listed later.
    # So a module lists the specific fragments below (gtsfm.cluster.attributes.block, ...) BEFORE this one.
    DOCUMENTATION = r"""
author:
  - gtsfm.cluster maintainers (@borglab)
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
  platform:
    platforms: posix
"""

    # The modules that rewrite their own block of a user's file and leave the rest of it alone. Each has an action
    # plugin of its name (plugins/plugin_utils/_observed.py) that decides from O(observed) whether to run at all.
    BLOCK = r"""
options:
  observed:
    description:
      - What a read made earlier in the play found in the file, that is one entry of
        M(gtsfm.cluster.cluster_node_info)'s RV(gtsfm.cluster.cluster_node_info#module:files), as the stage
        (gtsfm.cluster.cluster_facts) publishes it in C(cluster_facts_probe.files).
      - When given, the action plugin on the controller applies the module's own rule to it, and when nothing would
        change it answers C(changed=false) with RV(decided_from=observed) without a remote call. When the read cannot
        tell (another file option is set, a symbolic O(mode), a text the read did not hold), the module runs and
        reads the file itself, as it does without O(observed).
      - Used on the controller only; the module never receives it.
    type: dict
    version_added: 0.4.0
attributes:
  action:
    # support and description come from gtsfm.cluster.attributes.observed, listed after this fragment.
    details: Decides from O(observed) on the controller whether the module must run.
  diff_mode:
    support: full
  safe_file_operations:
    support: full
    description: Uses Ansible's strict file operation functions to ensure proper permissions and avoid data corruption.
    details: The new content goes to a temporary file beside the target, which is then renamed over it.
notes:
  - Check mode reports what would change and writes nothing.
"""

    # Every module whose action plugin answers from what the stage read: the block writers (after
    # gtsfm.cluster.attributes.block, whose details win), ssh_keypair, managed_blocks, python_env (its own details).
    OBSERVED = r"""
attributes:
  action:
    support: full
    description: >-
      Indicates this has a corresponding action plugin so some parts of the options can be executed on the
      controller.
    details: Decides on the controller, from what the stage read, whether the module must run.
"""

    IDEMPOTENT = r"""
attributes:
  idempotent:
    support: full
    description: When a re-run with the same arguments can change nothing, the module reports no change.
"""

    # The modules that only read.
    INFO_MODULE = r"""
attributes:
  check_mode:
    details: It only reads, so check mode and a normal run report the same.
  diff_mode:
    support: N/A
    details: It only reads.
"""

    # The action plugins that run on the controller (with ansible.builtin.action_common_attributes.flow).
    ACTION = r"""
attributes:
  action:
    support: full
  async:
    support: none
  bypass_host_loop:
    support: none
"""
