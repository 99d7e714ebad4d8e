# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The weights_catalog and weights_excludes filters, as a template calls them."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.gtsfm.cluster.plugins.filter.model_weights import FilterModule


def test_catalog_and_excludes_compose_as_the_conda_env_default_does():
    filters = FilterModule().filters()
    entries = filters["weights_catalog"]("all") + [{"url": "http://o/x", "dest": "mine/x.pt"}]
    patterns = filters["weights_excludes"](entries)
    assert "/thirdparty/vggt/weights/model.pt" in patterns and "/mine/.x.pt.gtsfm-*" in patterns
    assert len(patterns) == 2 * 8


def test_an_unknown_set_is_a_filter_error_naming_the_known_ones():
    with pytest.raises(AnsibleFilterError, match=r"model_weights: model_weights_sets: unknown set\(s\) nope"):
        FilterModule().filters()["weights_catalog"](["nope"])
