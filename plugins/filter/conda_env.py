# -*- coding: utf-8 -*-
# Copyright: gtsfm.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters gtsfm.cluster.env_setup, env_paths_check, env_checkout_plan, env_plan, env_final_check,
env_import_check, env_settings_check, env_reads, env_checkout_sends and env_checkout_changed; documented in the .yml
files beside.

Filters, not an action plugin: the conda_env plan is a function of data the play already holds (the stage's facts
and each node's registered python_env probe), so it needs no file and no connection, and its inputs stay visible in
the task that calls it.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.gtsfm.cluster.plugins.plugin_utils._env_plan import (
    check_final,
    check_imports,
    check_paths,
    check_settings,
    checkout_changed,
    checkout_plan,
    checkout_sends,
    env_plan,
    missing_sources,
    setup,
    stage_reads,
)


def env_setup(
    settings, home, scheduler, scheduler_home, controller_home, archive_sha256=None, checkout_src_is_dir=None
):
    """One node's paths, its python_env options, what a building node is sent and where the checkout comes from."""
    is_dir = None if checkout_src_is_dir is None else bool(checkout_src_is_dir)
    return setup(settings, home, scheduler, scheduler_home, controller_home, archive_sha256, is_dir)


def env_paths_check(probes, names, prefix, checkout_dest, checkout=True):
    """A message when the environment or the checkout would differ in path between nodes; '' otherwise."""
    return check_paths(list(names), probes, prefix, checkout_dest, bool(checkout))


def env_checkout_plan(
    nodes, scheduler, checkout_path, replicate="broadcast", exclude=(), check_mode=False, reads=None, changed=False
):
    """{broadcast, pull, rsync}: the nodes that receive the scheduler's checkout, and the pulling nodes' command."""
    return checkout_plan(nodes, scheduler, checkout_path, replicate, exclude, bool(check_mode), reads, bool(changed))


def env_reads(settings, controller_home):
    """What the stage reads on every node for conda_env: its probe's options, the checkout archive and tree."""
    return stage_reads(settings, controller_home)


def env_checkout_sends(read, source, checkout_path, exclude=()):
    """{send, unpack}: whether the scheduler must be sent and unpack the controller's checkout archive."""
    return checkout_sends(read, source, checkout_path, exclude)


def env_plan_filter(nodes, probes, scheduler, strategy, replicate, min_free_mb, check_mode=False, prefix="~/gtsfm-env"):
    """Who builds, copies and publishes the environment; who is short on space; whether the nodes agree."""
    return env_plan(nodes, probes, scheduler, strategy, replicate, min_free_mb, bool(check_mode), prefix)


def env_final_check(probes, names, prefix):
    """A message unless every node names the same finished environment; '' otherwise."""
    return check_final(list(names), probes, prefix)


def env_import_check(probe, host, prefix):
    """A message naming what one node's environment does not import; '' otherwise."""
    return check_imports(host, probe, prefix)


def env_settings_check(settings, missing=None):
    """One message per bad conda_env setting, or else one naming the controller files not there (by default the
    settings ending in _src whose file the controller lacks)."""
    return check_settings(settings, missing_sources(settings) if missing is None else missing)


def env_checkout_changed(hosts):
    """Whether any of these nodes' checkout steps changed the checkout in this run."""
    return checkout_changed(list(hosts))


class FilterModule:
    """The conda_env role's plan across the cluster."""

    def filters(self):
        return {
            "env_setup": env_setup,
            "env_paths_check": env_paths_check,
            "env_checkout_plan": env_checkout_plan,
            "env_plan": env_plan_filter,
            "env_final_check": env_final_check,
            "env_import_check": env_import_check,
            "env_settings_check": env_settings_check,
            "env_reads": env_reads,
            "env_checkout_sends": env_checkout_sends,
            "env_checkout_changed": env_checkout_changed,
        }
