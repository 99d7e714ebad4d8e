# -*- coding: utf-8 -*-
# Copyright: gtsfm.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Drains the remote output of Dask's SSHCluster in a gtsfm_job runner (private to this collection).

Dask's SSHCluster reads its remote processes' stderr only until they have started; after that nobody reads the SSH
channel, and once about 2 MiB of output (a worker's logging, a task's prints) is unread the remote process blocks on
its next write: the job hangs (dask issue 9033, PR 9343 open). gtsfm_job writes this file, followed by a call of
install(), as sitecustomize.py into a directory it puts first on the runner's PYTHONPATH. It then:

- waits, at no cost, until the runner imports distributed.deploy.ssh (a meta path finder, nothing imported early);
- wraps Worker.start and Scheduler.start of that module so that, once one has started, its remote stdout and stderr
  are read to the end and logged line by line, with the host, by the 'distributed.deploy.ssh' logger (the one that
  logs their start-up lines; the runner's log shows them);
- runs the sitecustomize that it shadows (Debian's python has one), so nothing else changes.

With gtsfm_job's runner workaround it first swaps the runner: when this interpreter was started on the checkout's
gtsfm/runner.py (GTSfM HEAD's cluster bug), it re-executes itself - the same interpreter, options, arguments,
environment and working directory, whatever the entry point (./run, uv run) chose - on the fixed copy beside it.

Standard library only; every step is guarded, so a Dask without these classes runs untouched.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import sys

TARGET = "distributed.deploy.ssh"


def _drain_later(process, host):
    """Start reading the remote process's stdout and stderr to the end (on the cluster's event loop)."""
    import asyncio
    import logging

    log = logging.getLogger(TARGET)
    proc = getattr(process, "proc", None)

    async def drain(stream, label):
        try:
            while True:
                line = await stream.readline()
                if not line:
                    return
                if isinstance(line, bytes):
                    line = line.decode("utf-8", "replace")
                log.info("[%s %s] %s", host, label, line.rstrip("\r\n"))
        except Exception:  # the connection closing at the end of a job ends the reading, whatever it raises
            return

    tasks = []
    for label in ("stdout", "stderr"):
        stream = getattr(proc, label, None)
        if stream is not None:
            tasks.append(asyncio.ensure_future(drain(stream, label)))
    process._gtsfm_job_drains = tasks


def patch(module):
    """Wrap the start of the module's Worker and Scheduler, and the close of their Process base."""
    for name in ("Worker", "Scheduler"):
        cls = getattr(module, name, None)
        start = getattr(cls, "start", None)
        if start is None or getattr(start, "_gtsfm_job_drains", False):
            continue

        def drained_start(self, _start=start):
            host = getattr(self, "address", "?")  # the SSH host; a Scheduler replaces it with its Dask address

            async def run():
                await _start(self)
                _drain_later(self, host)

            return run()

        drained_start._gtsfm_job_drains = True
        cls.start = drained_start
    base = getattr(module, "Process", None)
    close = getattr(base, "close", None)
    if close is not None and not getattr(close, "_gtsfm_job_drains", False):

        def drained_close(self, _close=close):
            for task in getattr(self, "_gtsfm_job_drains", []):
                task.cancel()
            return _close(self)

        drained_close._gtsfm_job_drains = True
        base.close = drained_close


class _Loader:
    """Delegates to the real loader, then patches the module it executed."""

    def __init__(self, loader):
        self.loader = loader

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        self.loader.exec_module(module)
        try:
            patch(module)
        except Exception as exc:  # never break the runner over its logs
            sys.stderr.write(f"gtsfm_job: could not drain SSHCluster output ({type(exc).__name__}: {exc})\n")


class _Finder:
    """Finds nothing but distributed.deploy.ssh, which it hands to the real finder and loads through _Loader."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname != TARGET:
            return None
        import importlib.machinery

        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is not None and spec.loader is not None and hasattr(spec.loader, "exec_module"):
            spec.loader = _Loader(spec.loader)
        return spec


def _run_shadowed_sitecustomize(here):
    """Run the next sitecustomize on sys.path after this file's directory, as Python would have without us."""
    import importlib.machinery
    import importlib.util

    rest = [d for d in sys.path if os.path.realpath(d or ".") != here]
    spec = importlib.machinery.PathFinder.find_spec("sitecustomize", rest)
    if spec is None or spec.loader is None:
        return
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as exc:  # as site.py does for a failing sitecustomize: say so and go on
        sys.stderr.write(
            f"Error in sitecustomize ({spec.origin}); set PYTHONVERBOSE for traceback:\n{type(exc).__name__}: {exc}\n"
        )


def _interpreter_argv():
    """This interpreter's own command line (options included), or None when it cannot be read."""
    argv = getattr(sys, "orig_argv", None)  # Python 3.10+
    if argv:
        return list(argv)
    try:
        with open("/proc/self/cmdline", "rb") as f:
            raw = f.read()
    except OSError:
        return None
    return [os.fsdecode(a) for a in raw.split(b"\0")[:-1]] or None


def swap_runner(original, patched):
    """Re-execute this interpreter on patched when it was started on the script original; else return.

    Only the script changes: sys.executable, its options (-X, -u, ...) and the script's arguments stay, and so do
    the environment and working directory, which is how the entry point started the original.
    """
    script = sys.argv[0] if sys.argv else ""
    if not script or script in ("-c", "-m", "-") or os.path.realpath(script) != os.path.realpath(original):
        return
    argv = _interpreter_argv()
    at = len(argv) - len(sys.argv) if argv else -1
    if at < 1 or argv[at] != script:
        sys.stderr.write(f"gtsfm_job: cannot read how {script} was started ({argv!r}); running it unpatched\n")
        return
    # The copy sits beside the original: the same sys.path[0], and __file__ in the same directory.
    new_script = os.path.join(os.path.dirname(script), os.path.basename(patched))
    if os.path.realpath(new_script) != os.path.realpath(patched):
        new_script = patched
    sys.stderr.write(
        f"gtsfm_job: {script} has GTSfM HEAD's cluster bug: running {new_script} in its place (same interpreter "
        f"{sys.executable}, options and arguments)\n"
    )
    sys.stderr.flush()
    os.execv(sys.executable, [sys.executable] + argv[1:at] + [new_script] + argv[at + 1 :])


def install(here=None, drain=True, swap=None):
    """Swap the runner (swap: (original, patched)); watch for distributed.deploy.ssh when drain (patch it now if it
    is imported already); run the shadowed sitecustomize."""
    if swap:
        try:
            swap_runner(*swap)
        except OSError as exc:
            sys.stderr.write(f"gtsfm_job: cannot start the patched runner {swap[1]}: {exc}\n")
            sys.stderr.flush()
            os._exit(127)  # the original would fail on its cluster bug after minutes of start-up
    if drain and TARGET in sys.modules:
        patch(sys.modules[TARGET])
    elif drain and not any(isinstance(f, _Finder) for f in sys.meta_path):
        sys.meta_path.insert(0, _Finder())
    if here:
        _run_shadowed_sitecustomize(os.path.realpath(here))
