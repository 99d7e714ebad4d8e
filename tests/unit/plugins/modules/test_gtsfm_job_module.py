# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""gtsfm_job's argument spec: what must never be shown."""

from __future__ import annotations

import pytest
from ansible.module_utils import basic

from ansible_collections.gtsfm.cluster.plugins.modules import gtsfm_job


class _Spec(Exception):
    pass


def test_the_runners_environment_is_no_log(monkeypatch):
    # Issue 22: a token passed to the runner in `environment` came back in the result (invocation) and the log.
    def capture(self, argument_spec, **kwargs):
        raise _Spec(argument_spec)

    monkeypatch.setattr(basic.AnsibleModule, "__init__", capture)
    with pytest.raises(_Spec) as spec:
        gtsfm_job.main()
    assert spec.value.args[0]["environment"]["no_log"] is True
