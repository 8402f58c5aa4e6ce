"""One training run per work dir.

Two runs writing into one work dir share a log, duplicate every scalar and
leave one run's checkpoints beside the other's config, and both exit 0.
:class:`WorkDirLock` makes the second run refuse to start, naming the first.

The lock is a file, ``<work_dir>/.npdg_run.lock``, created atomically
(``O_CREAT | O_EXCL``) and holding the owner's host, PID, process start time
and command line. A lock left by a run that died (crash, ``kill -9``) is
detected, because its PID is no longer alive on this host (or now belongs to a
process that started later), and taken over, so ``--resume`` of a crashed run
just works. In distributed runs only global rank 0 takes the lock.
"""
import atexit
import json
import os
import os.path as osp
import socket
import sys
import time

LOCK_NAME = '.npdg_run.lock'


class WorkDirBusyError(RuntimeError):
    """Another live run holds the work dir."""


def _start_time(pid):
    """Start time of process ``pid`` in clock ticks since boot (Linux), else None."""
    try:
        with open(f'/proc/{pid}/stat') as f:
            stat = f.read()
        return int(stat.rsplit(')', 1)[1].split()[19])
    except (OSError, ValueError, IndexError):
        return None


def _alive(owner):
    """Whether the run described by ``owner`` (the lock's content) still runs."""
    if owner.get('host') != socket.gethostname():
        return True  # cannot check another machine: assume it runs
    pid = owner.get('pid')
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, owned by someone else
    started = _start_time(pid)
    return started is None or owner.get('start_time') in (None, started)


def _global_rank():
    return int(os.environ.get('RANK', os.environ.get('SLURM_PROCID', 0)) or 0)


class WorkDirLock:
    """Exclusive use of a work dir by one run (a context manager).

    Args:
        work_dir (str): The run's work dir (created if absent).
        what (str): What the run is, for the other run's message.
    """

    def __init__(self, work_dir, what='training'):
        self.work_dir = work_dir
        self.path = osp.join(work_dir, LOCK_NAME)
        self.what = what
        self.held = False

    def _owner(self):
        return dict(host=socket.gethostname(), pid=os.getpid(),
                    start_time=_start_time(os.getpid()), started=time.strftime('%Y-%m-%d %H:%M:%S'),
                    command=' '.join([osp.basename(sys.executable)] + sys.argv), what=self.what)

    def _read(self):
        try:
            with open(self.path) as f:
                return json.load(f)
        except (OSError, ValueError):
            return None

    def acquire(self):
        """Take the lock, or raise naming the run that holds it.

        Raises:
            WorkDirBusyError: If a live run holds the work dir.
        """
        if _global_rank() != 0 or self.held:
            return self
        os.makedirs(self.work_dir, exist_ok=True)
        for _ in range(3):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                owner = self._read()
                if owner is None:  # being written right now by a starting run
                    time.sleep(0.2)
                    owner = self._read()
                if owner is not None and _alive(owner):
                    raise WorkDirBusyError(
                        f'Work dir {self.work_dir!r} is in use by another run: '
                        f'{owner.get("what", "run")} with PID {owner.get("pid")} on '
                        f'{owner.get("host")}, started {owner.get("started")} '
                        f'({owner.get("command")}). Wait for it to finish or stop it, or give '
                        f'this run its own --work-dir. (If that run is really gone, delete '
                        f'{self.path}.)')
                try:  # stale: its run died; take it over
                    os.remove(self.path)
                except FileNotFoundError:
                    pass
                continue
            with os.fdopen(fd, 'w') as f:
                json.dump(self._owner(), f)
            self.held = True
            atexit.register(self.release)
            return self
        raise WorkDirBusyError(f'Could not take the lock {self.path}; another run is starting '
                               'in the same work dir.')

    def release(self):
        """Give the work dir back (only the lock this process took)."""
        if not self.held:
            return
        owner = self._read()
        if owner is not None and owner.get('pid') == os.getpid():
            try:
                os.remove(self.path)
            except FileNotFoundError:
                pass
        self.held = False

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()
        return False
