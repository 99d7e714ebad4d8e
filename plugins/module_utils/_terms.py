# -*- coding: utf-8 -*-
# Copyright: gtsfm.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A module's message in its caller's terms: the one rule, for modules (option_names) and the filter option_terms.

Private to the gtsfm.cluster collection; not a public API. The modules name their own options in messages
("option prefix"), so that they stand alone; a role that sets an option from one of its variables has the message
name the variable instead.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

_OPTION = re.compile(r"\boption ([a-z][a-z0-9_]*)\b")


def option_terms(msg, names):
    """msg with each "option NAME" that names holds replaced by what names gives for it; others left as they are."""
    if not names or not isinstance(msg, str):
        return msg
    return _OPTION.sub(lambda m: str(names.get(m.group(1), m.group(0))), msg)
