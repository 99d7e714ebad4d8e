# -*- coding: utf-8 -*-
# Copyright: gtsfm.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests of the drain hook: the wrapped start reads remote output to the end; the sitecustomize chains."""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
import types

from ansible_collections.gtsfm.cluster.plugins.module_utils import _gtsfm_job as job
from ansible_collections.gtsfm.cluster.plugins.module_utils import _gtsfm_job_hook as hook


def fake_ssh_module():
    """A module shaped like distributed.deploy.ssh: start reads stderr up to 'worker at', as Dask's does."""
    module = types.ModuleType("fake_ssh")

    class Process:
        def __init__(self):
            self.proc = None
            self.closed = False

        async def close(self):
            self.closed = True

    class Worker(Process):
        def __init__(self, address, lines):
            super().__init__()
            self.address = address
            self.lines = lines

        async def start(self):
            proc = types.SimpleNamespace(stdout=asyncio.StreamReader(), stderr=asyncio.StreamReader())
            proc.stderr.feed_data(b"Start worker at: tcp://10.0.0.2:1\n" + self.lines)
            proc.stderr.feed_eof()
            proc.stdout.feed_data(b"printed by a task\n")
            proc.stdout.feed_eof()
            self.proc = proc
            await proc.stderr.readline()

    module.Process, module.Worker, module.Scheduler = Process, Worker, None
    return module


def test_started_worker_output_is_read_to_the_end_and_logged_with_its_host(caplog):
    module = fake_ssh_module()
    hook.patch(module)
    hook.patch(module)  # twice: still one wrapper

    async def scenario():
        worker = module.Worker("node2", b"".join(b"line %d\n" % i for i in range(5000)))
        await worker.start()
        await asyncio.gather(*worker._gtsfm_job_drains)  # pylint: disable=protected-access
        await worker.close()
        return worker

    with caplog.at_level(logging.INFO, logger=hook.TARGET):
        worker = asyncio.run(scenario())
    messages = [r.getMessage() for r in caplog.records]
    assert worker.closed
    assert [m for m in messages if "stderr" in m] == [f"[node2 stderr] line {i}" for i in range(5000)]
    assert [m for m in messages if "stdout" in m] == ["[node2 stdout] printed by a task"]


def test_close_cancels_the_readings_that_start_began():
    module = fake_ssh_module()
    hook.patch(module)

    async def scenario():
        # Remote output that never ends: only close can stop the readings the wrapped start began.
        worker = module.Worker("node3", b"")

        async def start_quiet(self):
            self.proc = types.SimpleNamespace(stdout=asyncio.StreamReader(), stderr=asyncio.StreamReader())

        worker_start = module.Worker.start
        module.Worker.start = start_quiet
        hook.patch(module)  # the wrapper around this start, as on import of distributed.deploy.ssh
        try:
            await worker.start()
        finally:
            module.Worker.start = worker_start
        readings = list(getattr(worker, "_gtsfm_job_drains", []))
        for _dummy in range(3):
            await asyncio.sleep(0)
        before = [r.done() for r in readings]
        await worker.close()
        for _dummy in range(3):
            await asyncio.sleep(0)
        # Judged here, inside the loop: asyncio.run cancels whatever is left when it returns.
        return len(readings), before, [r.cancelled() for r in readings], worker.closed

    assert asyncio.run(scenario()) == (2, [False, False], [True, True], True)


def test_sitecustomize_patches_on_import_and_runs_the_one_it_shadows(tmp_path):
    hook_dir = job.write_runner_hook(str(tmp_path / "job"), True, None)
    fake = tmp_path / "fake"
    (fake / "distributed" / "deploy").mkdir(parents=True)
    (fake / "distributed" / "__init__.py").write_text("")
    (fake / "distributed" / "deploy" / "__init__.py").write_text("")
    (fake / "distributed" / "deploy" / "ssh.py").write_text(
        "class Process:\n    async def close(self): pass\n"
        "class Worker(Process):\n    async def start(self): pass\n"
        "class Scheduler(Process):\n    async def start(self): pass\n"
    )
    shadowed = tmp_path / "shadowed"
    shadowed.mkdir()
    (shadowed / "sitecustomize.py").write_text("import sys\nsys.stdout.write('shadowed ran\\n')\n")
    code = (
        "import sys; assert 'distributed' not in sys.modules; import distributed.deploy.ssh as m; "
        "print(m.Worker.start._gtsfm_job_drains, m.Scheduler.start._gtsfm_job_drains)"
    )
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([hook_dir, str(fake), str(shadowed)]))
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.splitlines() == ["shadowed ran", "True True"], out.stderr
