# -*- coding: utf-8 -*-
# Copyright: gtsfm.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filter gtsfm.cluster.option_terms; documented in option_terms.yml beside it."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.errors import AnsibleFilterError

from ansible_collections.gtsfm.cluster.plugins.module_utils import _terms


def option_terms(msg, names):
    """msg with each "option NAME" that names holds replaced by the variable the role sets it from."""
    if not isinstance(names, dict):
        raise AnsibleFilterError(f"option_terms: expected a mapping of option names to variable names, got {names!r}")
    return _terms.option_terms(msg, names)


class FilterModule:
    """A module's message in the terms of the role that called it."""

    def filters(self):
        return {"option_terms": option_terms}
