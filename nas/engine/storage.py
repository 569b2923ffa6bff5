"""Study storage: where it lives, how every process opens it, the claim lock, and how its URL is shown.

Optuna storage is the single durable record. ``storage=None`` is an SQLite file ``runs/nas.db`` (embedded);
any Optuna RDB URL (``sqlite:///...``, ``postgresql://...``) or a journal file (``journal:///path``) works,
as do ``optuna.storages.RDBStorage`` / ``JournalStorage`` objects (their URL or file is what worker processes
open). A URL is printed, logged and put in error messages only through :func:`mask_url`, which hides its
password.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import socket
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import optuna

HEARTBEAT_INTERVAL = 5   # seconds between a running trial's heartbeats
GRACE_PERIOD = 30        # a RUNNING trial without a heartbeat for this long belongs to a dead worker
HOST = socket.gethostname()
DEFAULT_STORAGE = Path("runs") / "nas.db"


_USERINFO = re.compile(r"^(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<user>[^:/@]*):(?P<password>[^@]*)@")


def _password(url: str) -> str:
    m = _USERINFO.match(url) or re.search(r"[?&]password=([^&]*)", url, re.IGNORECASE)
    return (m.group("password") if "password" in m.groupdict() else m.group(1)) if m else ""


_QUERY_PASSWORD = re.compile(r"([?&]password=)[^&]*", re.IGNORECASE)


def mask_url(url: str) -> str:
    """``url`` with its password replaced by ``***`` (``postgresql://nas:***@db/nas``, ``...?password=***``):
    the only form in which a storage URL is printed, logged or put in a message."""
    url = _USERINFO.sub(lambda m: f"{m['scheme']}{m['user']}:***@", str(url), count=1)
    return _QUERY_PASSWORD.sub(r"\1***", url)


def describe_storage(storage: Any) -> str:
    """Normalise ``storage`` to a URL string every process can open."""
    if storage is None:
        return f"sqlite:///{DEFAULT_STORAGE.resolve()}"
    if isinstance(storage, optuna.Study):  # an existing Optuna study: its storage
        storage = storage._storage
    storage = getattr(storage, "_backend", storage) if type(storage).__name__ == "_CachedStorage" else storage
    if isinstance(storage, optuna.storages.InMemoryStorage):
        raise ValueError("`storage`: an in-memory Optuna storage cannot be shared with worker processes; create the "
                         "Optuna study on an SQLite file, a journal file or a database (optuna.create_study("
                         "storage='sqlite:///runs/nas.db', ...))")
    if isinstance(storage, optuna.storages.RDBStorage):
        return str(storage.url)
    if isinstance(storage, optuna.storages.JournalStorage):
        backend = getattr(storage, "_backend", None)
        path = getattr(backend, "_file_path", None)
        if path is None:
            raise ValueError("`storage`: a JournalStorage is supported only with a JournalFileBackend (worker "
                             "processes must be able to open it)")
        return f"journal:///{Path(path).resolve()}"
    if isinstance(storage, (str, os.PathLike)):
        text = str(storage)
        if not text.strip():  # Path("") is the current folder, and its lock file would go into the parent
            raise ValueError(f"`storage` must be a file path or a storage URL, but got storage={text!r}; leave it "
                             f"out for the default {DEFAULT_STORAGE}")
        if "://" not in text:  # a plain file path
            path = Path(text)
            if path.suffix in (".log", ".journal"):
                return f"journal:///{path.resolve()}"
            return f"sqlite:///{path.resolve()}"
        if text.startswith("sqlite:///") and not text.startswith("sqlite:////") and not text == "sqlite:///:memory:":
            # make relative SQLite paths absolute, so every worker (and a later resume) finds the same file
            return f"sqlite:///{Path(text[len('sqlite:///'):]).resolve()}"
        return text
    raise ValueError(f"`storage` must be None, a storage URL, a file path, an RDBStorage, a JournalStorage or an "
                     f"optuna.Study, but got {type(storage).__name__}")


def _file_of(url: str) -> Path | None:
    for prefix in ("sqlite:///", "journal:///"):
        if url.startswith(prefix):
            path = url[len(prefix):]
            return Path(path if path.startswith("/") else "/" + path)
    return None


def check_storage_path(url: str) -> None:
    """Refuse, before anything is written, a storage file that cannot be created where ``url`` says: a folder, a
    path under a regular file, or a folder that takes no file (e.g. under /proc). Database URLs pass."""
    from nas._files import check_folder

    path = _file_of(url)
    if path is None:
        return
    if path.is_dir():
        raise ValueError(f"`storage` must be a file (SQLite or journal), but got storage={mask_url(url)!r}, which is "
                         f"a folder; e.g. {path / 'nas.db'}")
    check_folder(path.parent, "storage", mask_url(url))


def open_storage(url: str, *, create: bool = True) -> optuna.storages.BaseStorage:
    """Open the storage at ``url`` with heartbeats (RDB) and a generous SQLite lock timeout. With
    ``create=False`` (commands that only read) a storage file that does not exist is an error, never a new
    empty database."""
    if url == "sqlite:///:memory:" or url.startswith("inmemory"):
        raise ValueError("`storage`: an in-memory storage cannot be shared with worker processes; use an SQLite "
                         "file (the default) or a database URL")
    path = _file_of(url)
    if not create and path is not None and not path.exists():
        raise ValueError(f"`storage`: there is no storage at {path} (storage={mask_url(url)!r}); check the path, "
                         f"or start a search there first")
    try:
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        if url.startswith("journal:///"):
            return optuna.storages.JournalStorage(JournalFile(str(path)))
        engine_kwargs: dict[str, Any] = {}
        if url.startswith("sqlite"):
            engine_kwargs = {"connect_args": {"timeout": 120}}
        else:
            engine_kwargs = {"pool_pre_ping": True}
        with warnings.catch_warnings():  # heartbeats are "experimental" in Optuna 5; we rely on them knowingly
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            storage = optuna.storages.RDBStorage(url, engine_kwargs=engine_kwargs,
                                                 heartbeat_interval=HEARTBEAT_INTERVAL, grace_period=GRACE_PERIOD)
        if url.startswith("sqlite"):
            _fast_sqlite(storage)
        return storage
    except Exception as exc:  # bad URL, unreachable server, missing driver
        message = str(exc).replace(url, mask_url(url))
        password = _password(url)
        if password:
            message = message.replace(password, "***")
        raise ValueError(f"`storage` could not be opened: storage={mask_url(url)!r}: {type(exc).__name__}: "
                         f"{message}") from None


class JournalFile(optuna.storages.journal.JournalFileBackend):
    """Optuna's journal file, appended under ``flock`` on the file itself and without an ``fsync`` per append.

    Optuna's own file backend takes a symlink lock (which a SIGKILLed holder leaves behind for its 30 s grace
    period) and fsyncs every append (about 20 per trial). An ``flock`` is released by the kernel when its
    holder dies, and each append is one ``write`` of whole lines to a file opened for appending, so a process
    killed at any point leaves either all of a record or none of it. Without the fsync the file survives
    any process crash (the data is in the page cache); only a power loss can drop the last appends, as
    with SQLite in WAL mode with ``synchronous=NORMAL``. The file format is Optuna's: optuna-dashboard and
    ``optuna.storages.JournalStorage`` read it. The file must be on a local disk (``flock`` over NFS is not
    reliable): searches across machines use PostgreSQL."""

    def append_logs(self, logs: list[dict[str, Any]]) -> None:
        data = "".join(json.dumps(log, separators=(",", ":")) + "\n" for log in logs).encode("utf-8")
        fd = os.open(self._file_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
        finally:
            os.close(fd)  # closing releases the flock


def _fast_sqlite(storage: optuna.storages.RDBStorage) -> None:
    """Write-ahead logging with ``synchronous=NORMAL`` on every connection: a commit no longer waits for an
    fsync (Optuna commits once per parameter and per user attribute, ~40 times per trial; with the default
    rollback journal each took ~7 ms here). The database stays consistent if a process dies (SQLite's
    guarantee for WAL); only a power loss can drop the last commits. WAL needs the file on a local disk,
    which an SQLite study shared by the processes of one machine is."""
    import sqlalchemy

    def pragmas(connection: Any, _record: Any) -> None:
        cursor = connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    sqlalchemy.event.listen(storage.engine, "connect", pragmas)
    storage.engine.dispose()  # connections made while Optuna set the schema up reconnect with the pragmas


def lock_path(url: str) -> Path | str | None:
    """What serialises claims on this storage: a lock file next to a file-based storage (SQLite, journal), the
    PostgreSQL URL itself (an advisory lock), or None (other databases: no lock)."""
    path = _file_of(url)
    if path is not None:
        return path.with_suffix(".lock")
    if url.startswith("postgresql"):
        return url
    return None


_ENGINES: dict[str, Any] = {}
ADVISORY_KEY = 0x6E617321  # "nas!": one lock for all nas claims on a database


@contextlib.contextmanager
def claim_lock(target: Path | str | None) -> Iterator[None]:
    """Serialises "count trials, then ask for one" between processes - of one machine through a lock file, of
    many machines through a PostgreSQL advisory lock - so that a study never runs more trials than its
    target."""
    if target is None:
        yield
        return
    if isinstance(target, str):
        import sqlalchemy

        engine = _ENGINES.get(target)
        if engine is None:
            engine = _ENGINES[target] = sqlalchemy.create_engine(target, pool_pre_ping=True, poolclass=sqlalchemy.pool.NullPool)
        with engine.connect() as conn:
            conn.execute(sqlalchemy.text("SELECT pg_advisory_lock(:k)"), {"k": ADVISORY_KEY})
            try:
                yield
            finally:
                conn.execute(sqlalchemy.text("SELECT pg_advisory_unlock(:k)"), {"k": ADVISORY_KEY})
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def default_artifacts(url: str, study_name: str) -> str:
    path = lock_path(url)
    base = path.parent / (path.stem + "-artifacts") if isinstance(path, Path) else Path("runs") / "artifacts"
    return str((base / study_name).resolve())
