# -*- coding: utf-8 -*-
# Copyright: gtsfm.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filter gtsfm.cluster.option_terms; documented in option_terms.yml beside it."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

from ansible.errors import AnsibleFilterError

# How a module of this collection names one of its options in a message: "option NAME".
_OPTION = re.compile(r"\boption ([a-z][a-z0-9_]*)\b")


def option_terms(msg, names):
    """msg with each "option NAME" that names holds replaced by the variable the role sets it from."""
    if not isinstance(names, dict):
        raise AnsibleFilterError("option_terms: expected a mapping of option names to variable names, got %r"
                                 % (names,))
    if not isinstance(msg, str):
        return msg
    return _OPTION.sub(lambda m: str(names.get(m.group(1), m.group(0))), msg)


class FilterModule:
    """A module's message in the terms of the role that called it."""

    def filters(self):
        return {"option_terms": option_terms}
