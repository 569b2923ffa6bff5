"""The private folders of the local Ray instances nas starts, and the removal of those whose driver died.

``nas.Ray()`` without an address starts a Ray instance of its own in a folder ``/tmp/nasray-XXXXXXXX`` that nas
makes with mode 0700 and Ray never changes: Ray's own temporary folder is ``r`` inside it (Ray makes its folders
world-writable, 0777, whatever mode they had), and Ray's authentication token is ``auth_token`` (0600) beside it.
So no other user can read the token, Ray's logs or reach its sockets while the instance runs. The path stays
short: Ray's socket paths (``r/session_.../sockets/plasma_store``) must fit in 107 bytes.

A driver killed with SIGKILL cannot stop its instance: Ray's agents live on for a minute or more (one listening
on loopback) and the folder stays, token included. So the folder records its driver in ``owner`` (pid, start
time and boot id: a reused pid is not taken for the driver), and :func:`remove_dead`, run whenever the Ray
backend starts a local instance and by ``nas cleanup``, kills the processes of every instance of this user whose
driver is gone and deletes its folder. An instance's processes are this user's Ray processes (Ray's programs and
scripts, its workers and agents) that name its folder in their command line or environment, or hold a file or
their working directory in it (Ray's agents rename themselves and keep only their log files open there); any other
process (a shell in the folder) is left running. A live driver's instance is never touched. A folder without an
owner record (an earlier nas wrote none) is deleted only when no process uses it, it holds only Ray's files and
nothing changed in it for a minute.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import signal
import tempfile
import time
from pathlib import Path

__all__ = ["RAY_DIR", "TOKEN", "Removal", "make_private_folder", "remove_dead"]

ROOT = Path("/tmp")
PREFIX = "nasray-"
OWNER = "owner"  # {"pid": ..., "start": clock ticks after boot, "boot": boot id} of the driver
TOKEN = "auth_token"
RAY_DIR = "r"  # Ray's temporary folder, inside the private one
UNOWNED_AGE_S = 60.0  # a folder without an owner record (an earlier nas made none) is left alone this long
_RAY_NAMES = (OWNER, f".{OWNER}", TOKEN, RAY_DIR, "session_latest")  # a folder's contents, besides session_*


@dataclasses.dataclass(frozen=True)
class Removal:
    """One instance cleaned: its folder, its dead driver's pid (None: none recorded), the processes killed as
    ``(pid, name)``, those that did not exit (then the folder is kept), and whether the folder is gone."""

    folder: Path
    driver: int | None
    killed: tuple[tuple[int, str], ...]
    survivors: tuple[tuple[int, str], ...]
    deleted: bool

    def line(self) -> str:
        """What was done, in one line."""
        whose = (f"the Ray instance of dead driver {self.driver}" if self.driver is not None
                 else "an unused Ray folder with no driver recorded")
        done = [f"killed {len(self.killed)} process(es) ({', '.join(f'{n} {p}' for p, n in self.killed)})"] \
            if self.killed else []
        if self.survivors:
            done.append(f"{len(self.survivors)} did not exit ({', '.join(f'{n} {p}' for p, n in self.survivors)})")
        done.append(f"deleted {self.folder}" if self.deleted else f"kept {self.folder}")
        return f"nas: removed {whose}: {', '.join(done)}"


def make_private_folder() -> Path:
    """A new folder ``/tmp/nasray-XXXXXXXX`` (mode 0700) owned by this process, for a local Ray instance."""
    folder = Path(tempfile.mkdtemp(prefix=PREFIX, dir=ROOT))
    record = json.dumps({"pid": os.getpid(), "start": _start_ticks(os.getpid()), "boot": _boot_id()})
    staged = folder / f".{OWNER}"
    with os.fdopen(os.open(staged, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as f:
        f.write(record)
    os.replace(staged, folder / OWNER)  # the record is whole or absent
    return folder


def remove_dead() -> tuple[list[Removal], int]:
    """Kill the processes of every local Ray instance of this user whose driver is gone and delete its folder.
    Returns what was removed and the number of instances left alone (a live driver's, or in use)."""
    dead: dict[Path, int | None] = {}
    live = 0
    unowned: list[Path] = []
    for folder in _folders():
        owner = _owner(folder)
        if owner is None:
            unowned.append(folder)
        elif _alive(owner):
            live += 1
        else:
            dead[folder] = owner[0]
    if unowned:  # an old folder nothing uses any more is debris; one in use may be a live driver's
        used = _users([str(f) for f in unowned])
        for folder in unowned:
            if used[str(folder)] or not _looks_unused(folder):
                live += 1
            else:
                dead[folder] = None
    return [_remove(folder, driver) for folder, driver in dead.items()], live


def _folders() -> list[Path]:
    """This user's ``nasray-*`` folders in /tmp (real folders, not links)."""
    out = []
    try:
        entries = list(os.scandir(ROOT))
    except OSError:
        return []
    for entry in entries:
        try:
            if (entry.name.startswith(PREFIX) and entry.is_dir(follow_symlinks=False)
                    and entry.stat(follow_symlinks=False).st_uid == os.getuid()):
                out.append(Path(entry.path))
        except OSError:
            continue
    return sorted(out)


def _owner(folder: Path) -> tuple[int, int, str] | None:
    """The driver recorded in ``folder``: (pid, start ticks, boot id), or None if there is no valid record."""
    try:
        record = json.loads((folder / OWNER).read_text())
        owner = (record["pid"], record["start"], record["boot"])
    except (OSError, ValueError, TypeError, KeyError):
        return None
    types_ok = isinstance(owner[0], int) and isinstance(owner[1], int) and isinstance(owner[2], str)
    return owner if types_ok else None


def _alive(owner: tuple[int, int, str]) -> bool:
    """The recorded driver still runs: same boot, a process with its pid and start time, not a zombie."""
    pid, start, boot = owner
    return boot == _boot_id() and _start_ticks(pid) == start and _state(pid) not in ("Z", "X", "")


def _looks_unused(folder: Path) -> bool:
    """An unowned folder holds only what Ray and nas put there, and nothing changed in it for a while."""
    try:
        names = os.listdir(folder)
        idle = time.time() - folder.stat().st_mtime
    except OSError:
        return False
    return idle > UNOWNED_AGE_S and all(n in _RAY_NAMES or n.startswith("session_") for n in names)


def _remove(folder: Path, driver: int | None) -> Removal:
    """Kill the instance's processes (again while new ones appear), then delete its folder once they are gone."""
    killed: dict[int, str] = {}
    survivors: dict[int, str] = {}
    for _ in range(3):
        found = _users([str(folder)])[str(folder)]
        if not found:
            break
        for pid in found:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                continue
        killed.update(found)
        survivors = _wait_gone(found, 10.0)
        if survivors:
            break
    deleted = False
    if not survivors:
        shutil.rmtree(folder, ignore_errors=True)
        deleted = not folder.exists()
    return Removal(folder, driver, tuple(sorted(killed.items())), tuple(sorted(survivors.items())), deleted)


def _wait_gone(pids: dict[int, str], timeout: float) -> dict[int, str]:
    """The processes of ``pids`` still running after up to ``timeout`` seconds (a zombie has exited)."""
    deadline = time.monotonic() + timeout
    left = dict(pids)
    while left:
        left = {p: n for p, n in left.items() if _state(p) not in ("Z", "X", "")}
        if not left or time.monotonic() > deadline:
            break
        time.sleep(0.02)
    return left


def _users(folders: list[str]) -> dict[str, dict[int, str]]:
    """For each folder, the running Ray processes of this user that refer to it: pid -> name."""
    marks = {folder: (folder + "/").encode() for folder in folders}
    found: dict[str, dict[int, str]] = {folder: {} for folder in folders}
    me, uid = os.getpid(), os.getuid()
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit() or int(entry.name) == me:
            continue
        pid = int(entry.name)
        try:
            if entry.stat().st_uid != uid or _state(pid) in ("Z", "X", ""):
                continue
            with open(f"/proc/{pid}/cmdline", "rb") as file:
                cmdline = file.read()
            if not _is_ray(cmdline):
                continue
            for folder, mark in marks.items():
                if _refers(pid, cmdline, mark):
                    found[folder][pid] = _name(cmdline)
        except OSError:  # gone meanwhile
            continue
    return found


def _is_ray(cmdline: bytes) -> bool:
    """A Ray process: one of Ray's programs or scripts (in the ``ray`` package), or a Ray worker or agent
    (they rename themselves ``ray::...``). Anything else in the folder (a shell, ``tail -f`` of a log) is not
    killed."""
    return cmdline.startswith(b"ray::") or any(b"/ray/" in arg for arg in cmdline.split(b"\0")[:3])


def _name(cmdline: bytes) -> str:
    """A Ray process's name: a worker's or agent's own (``ray::DashboardAgent``), else its program's or script's
    (``raylet``, ``gcs_server``, ``log_monitor.py``)."""
    args = cmdline.split(b"\0")
    if args[0].startswith(b"ray::"):
        return args[0].decode(errors="replace").strip()
    return next(os.path.basename(a.decode(errors="replace")) for a in args if b"/ray/" in a)


def _refers(pid: int, cmdline: bytes, mark: bytes) -> bool:
    """Process ``pid`` names the folder ``mark`` (its path and a slash) in its command line or environment, or has
    its working directory or an open file in it."""
    if mark in cmdline.replace(b"\0", b"/\0"):
        return True
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            if mark in f.read().replace(b"\0", b"/\0"):
                return True
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:  # not readable (a process that made itself undumpable)
        fds = []
    for path in [f"/proc/{pid}/cwd"] + [f"/proc/{pid}/fd/{fd}" for fd in fds]:
        try:
            if (os.readlink(path) + "/").encode().startswith(mark):
                return True
        except OSError:
            continue
    return False


def _state(pid: int) -> str:
    """The process state letter (R, S, D, Z, ...), or "" if there is no such process."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return ""


def _start_ticks(pid: int) -> int | None:
    """When process ``pid`` started, in clock ticks after boot (None: no such process)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rsplit(")", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return None


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""
