# -*- coding: utf-8 -*-
# Copyright: gtsfm.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Make ``ansible_collections.gtsfm.cluster`` importable when pytest runs from a checkout.

``ansible-test units`` installs Ansible's collection loader itself; plain ``pytest tests/unit`` from the
checkout does not, so install it here on ``<checkout>/collections`` (where
``ansible_collections/gtsfm/cluster`` is a link back to the checkout).  Installing the loader (instead of
only extending ``sys.path``) lets the tests load plugins through ``inventory_loader`` by their FQCN, so
option definitions and documentation fragments are read exactly as ansible-core reads them.
"""

from __future__ import annotations

from pathlib import Path

import pytest

COLLECTIONS_DIR = Path(__file__).resolve().parents[2] / "collections"


@pytest.hookimpl(trylast=True)
def pytest_configure(config: pytest.Config) -> None:  # pylint: disable=unused-argument
    """Install Ansible's collection finder on the checkout unless a test runner already did."""
    from ansible.utils.collection_loader import AnsibleCollectionConfig
    from ansible.utils.collection_loader._collection_finder import _AnsibleCollectionFinder

    if AnsibleCollectionConfig.collection_finder is None:
        _AnsibleCollectionFinder(paths=[str(COLLECTIONS_DIR)])._install()  # pylint: disable=protected-access
