# -*- coding: utf-8 -*-
# Copyright: gtsfm.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filter gtsfm.cluster.known_hosts_lines; documented in known_hosts_lines.yml beside it."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.errors import AnsibleFilterError

from ansible_collections.gtsfm.cluster.plugins.module_utils.known_hosts import render_lines


def known_hosts_lines(entries, hash_hosts=False, previous=None):
    """The lines gtsfm.cluster.known_hosts_block would write for entries, given the block it finds."""
    try:
        return render_lines(entries, bool(hash_hosts), list(previous or []))
    except (ValueError, KeyError, TypeError) as exc:
        raise AnsibleFilterError(f"known_hosts_lines: {exc}")


class FilterModule:
    """known_hosts lines, rendered on the controller exactly as the module renders them."""

    def filters(self):
        return {"known_hosts_lines": known_hosts_lines}
