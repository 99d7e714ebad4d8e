# -*- coding: utf-8 -*-
# Copyright: gtsfm.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filter gtsfm.cluster.home_writers; documented in home_writers.yml beside it."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.errors import AnsibleFilterError


def home_writers(home_ids):
    """Map each host to the host that writes its home directory's files: the first host, in order, of that home.

    A host whose home has no id yet (check mode before the first run) counts as having a home of its own.
    """
    if not isinstance(home_ids, dict):
        raise AnsibleFilterError(
            f"home_writers: expects a mapping of host name to home id, got {type(home_ids).__name__}"
        )
    first = {}
    writers = {}
    for host, home_id in home_ids.items():
        key = ("home", str(home_id)) if home_id else ("host", str(host))
        writers[str(host)] = first.setdefault(key, str(host))
    return writers


class FilterModule:
    """The one rule for which node writes a shared home directory."""

    def filters(self):
        return {"home_writers": home_writers}
