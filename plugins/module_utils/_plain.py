# -*- coding: utf-8 -*-
# Copyright: gtsfm.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Plain Python data from what Ansible hands over. Private to the gtsfm.cluster collection; not a public API.

Ansible 2.19 hands modules, filters and action plugins tagged subclasses of str, dict and list; code that compares,
serialises or hashes them wants the plain types. One rule, for the modules and the controller's plans alike.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type


def plain(value):
    """Plain Python data (str, int, float, bool, None, list, dict) from whatever Ansible handed over."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, str):
        return str(value)
    if isinstance(value, dict):
        return dict((str(k), plain(v)) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return str(value)
