"""The private folders of local Ray instances and the removal of dead drivers' instances, with real folders in /tmp
and real processes (no Ray: processes named as Ray names its workers stand in for them; tests/test_ray.py kills a
real Ray driver)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from nas.backends import ray_folders
from nas.backends.ray_folders import make_private_folder, remove_dead

# remove_dead() sweeps every dead instance of this user, also the one tests/test_ray.py kills on purpose and then
# expects to find (CI, 2026-12-07: its folder gone within 3 s): these tests run on the Ray tests' xdist worker
pytestmark = pytest.mark.xdist_group("ray")


def _folder_owned_by(pid: int, start: int, boot: str) -> Path:
    folder = make_private_folder()
    (folder / "owner").write_text(json.dumps({"pid": pid, "start": start, "boot": boot}))
    return folder


def _lines_about(lines: list[str], folders: list[Path]) -> list[str]:
    """The lines that name one of ``folders`` (other users of this machine may have dead instances too)."""
    return sorted(line for line in lines if any(line.endswith(f" {f}") for f in folders))


def test_a_driver_is_dead_when_its_pid_start_time_or_boot_differ() -> None:
    me, start, boot = os.getpid(), ray_folders._start_ticks(os.getpid()), ray_folders._boot_id()
    assert start is not None and boot
    live = make_private_folder()
    assert oct(live.stat().st_mode & 0o7777) == "0o700" and live.name.startswith("nasray-")
    assert json.loads((live / "owner").read_text()) == {"pid": me, "start": start, "boot": boot}
    assert oct((live / "owner").stat().st_mode & 0o7777) == "0o600"
    reused = _folder_owned_by(me, start + 1, boot)  # this pid, but a process that started later: not the driver
    rebooted = _folder_owned_by(me, start, "another-boot")
    old = make_private_folder()  # made by an earlier nas: no owner record, Ray's things only, untouched for 2 min
    (old / "owner").unlink()
    (old / "auth_token").write_text("x")
    (old / "session_2026-01-01_00-00-00_000000_1").mkdir()
    young = make_private_folder()
    (young / "owner").unlink()
    foreign = make_private_folder()
    (foreign / "owner").unlink()
    (foreign / "notes.txt").write_text("not Ray's")
    for f in (old, foreign):
        os.utime(f, (time.time() - 120, time.time() - 120))
    try:
        removed, live_count = remove_dead()
        mine = [live, reused, rebooted, old, young, foreign]
        assert _lines_about([r.line() for r in removed], mine) == sorted([
            f"nas: removed the Ray instance of dead driver {me}: deleted {reused}",
            f"nas: removed the Ray instance of dead driver {me}: deleted {rebooted}",
            f"nas: removed an unused Ray folder with no driver recorded: deleted {old}"])
        assert [f.exists() for f in mine] == [True, False, False, False, True, True]
        assert live_count >= 3  # live, young and foreign (and whatever other users of this machine run)
    finally:
        for f in (live, reused, rebooted, old, young, foreign):
            shutil.rmtree(f, ignore_errors=True)


def test_only_the_ray_processes_of_a_dead_instance_are_killed() -> None:
    """Ray's processes are found by their command line, environment, working directory or an open file in the
    folder; a process that is not Ray's (a shell, `tail -f` of a log) is left running, as is a live instance."""
    dead = _folder_owned_by(os.getpid(), ray_folders._start_ticks(os.getpid()) + 1, ray_folders._boot_id())
    live = make_private_folder()
    (dead / "r").mkdir()
    (live / "r").mkdir()

    def start(name: str, cwd: Path, env: dict[str, str] | None = None, out: Path | None = None) -> subprocess.Popen:
        redirect = f" > {out}" if out else ""
        return subprocess.Popen(["bash", "-c", f"exec -a {name} sleep 300{redirect}"], cwd=cwd,
                                env={**os.environ, **(env or {})})
    procs = {
        "cwd": start("ray::FakeAgent", dead / "r"),
        "environ": start("ray::FakeWorker", Path("/"), {"RAY_AUTH_TOKEN_PATH": f"{dead}/auth_token"}),
        "open file": start("ray::FakeLogger", Path("/"), out=dead / "r" / "worker.out"),
        "not Ray": start("sleep", dead / "r"),
        "live instance": start("ray::LiveAgent", live / "r"),
    }
    try:
        deadline = time.time() + 10  # bash has exec'd into sleep (named as given) in every process
        while any(Path(f"/proc/{p.pid}/cmdline").read_bytes().startswith(b"bash") for p in procs.values()):
            assert time.time() < deadline
            time.sleep(0.01)
        removed, _ = remove_dead()
        killed = sorted((procs[k].pid, n) for k, n in (("cwd", "ray::FakeAgent"), ("environ", "ray::FakeWorker"),
                                                        ("open file", "ray::FakeLogger")))
        listed = ", ".join(f"{n} {p}" for p, n in killed)
        expected = f"nas: removed the Ray instance of dead driver {os.getpid()}: killed 3 process(es) ({listed}), "
        assert _lines_about([r.line() for r in removed], [dead, live]) == [expected + f"deleted {dead}"]
        assert {k: p.poll() for k, p in procs.items()} == {"cwd": -signal.SIGKILL, "environ": -signal.SIGKILL,
                                                           "open file": -signal.SIGKILL, "not Ray": None,
                                                           "live instance": None}
        assert not dead.exists() and live.exists()
    finally:
        for p in procs.values():
            p.kill()
            p.wait()
        shutil.rmtree(dead, ignore_errors=True)
        shutil.rmtree(live, ignore_errors=True)


def test_nas_cleanup_says_what_it_removed() -> None:
    dead = _folder_owned_by(os.getpid(), ray_folders._start_ticks(os.getpid()) + 1, ray_folders._boot_id())
    try:
        out = subprocess.run([sys.executable, "-m", "nas.cli", "cleanup"], capture_output=True, text=True,
                             timeout=60, check=False)
        assert out.returncode == 0 and out.stderr == ""
        assert _lines_about(out.stdout.splitlines(), [dead]) == [
            f"nas: removed the Ray instance of dead driver {os.getpid()}: deleted {dead}"]
        assert not dead.exists()
    finally:
        shutil.rmtree(dead, ignore_errors=True)
