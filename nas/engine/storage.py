"""Study storage: where it lives, how every process opens it, the claim lock, and how its URL is shown.

Optuna storage is the single durable record. ``storage=None`` is an SQLite file ``runs/nas.db`` (embedded);
any Optuna RDB URL (``sqlite:///...``, ``postgresql://...``) or a journal file (``journal:///path``) works,
as do ``optuna.storages.RDBStorage`` / ``JournalStorage`` objects (their URL or file is what worker processes
open). A URL is printed, logged and put in error messages only through :func:`mask_url`, which hides its
password in every form a user can type; :func:`open_storage` refuses a password SQLAlchemy would misread
(a raw ``@``) before connecting, and its errors hold no piece of the password.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import socket
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import optuna
import optuna.storages.journal

HEARTBEAT_INTERVAL = 5   # seconds between a running trial's heartbeats
GRACE_PERIOD = 30        # a RUNNING trial without a heartbeat for this long belongs to a dead worker
HOST = socket.gethostname()
DEFAULT_STORAGE = Path("runs") / "nas.db"


_SCHEME = re.compile(r"[a-zA-Z][a-zA-Z0-9+.-]*://")
_QUERY_PASSWORD = re.compile(r"[?&][^=&?]*password=", re.IGNORECASE)  # password=, sslpassword=, ...
_PIECE = 4  # pieces of a password this long or longer are scrubbed from driver messages


def _secret_spans(url: str) -> list[tuple[int, int]]:
    """Where ``url`` may hold a password, under every reading of what its user typed: in the user part, from its
    first ``:`` to the URL's *last* ``@``, and in the query, from each ``password=`` (``sslpassword=`` too) to the
    end of the URL.

    SQLAlchemy (which parses the URLs nas opens) and libpq both end the user part at its *first* ``@``, so a
    password typed with a raw ``@`` (``nas:p@ss@db``) would send ``p`` as the password and look up ``ss@db`` as
    the host; reading up to the last ``@`` covers every such password, and ``:``, ``/``, ``?``, ``#`` in it. A
    raw ``&`` in a query password likewise makes the rest of it look like more parameters, hence the end of the
    URL. When an ``@`` or a ``password=`` occurs later for another reason (a query value), more than the
    password is hidden, never less. A URL without ``//host`` (``sqlite:////path``) has no user part."""
    m = _SCHEME.match(url)
    if m is None:
        return []
    start, spans = m.end(), []
    at = url.rfind("@")
    if at > start and not url.startswith("/", start):
        colon = url.find(":", start, at)
        if colon != -1:
            spans.append((colon + 1, at))
    spans.extend((q.end(), len(url)) for q in _QUERY_PASSWORD.finditer(url, start))
    return spans


def _merged(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """The spans in order, overlapping ones joined (each becomes one ``***``)."""
    out: list[tuple[int, int]] = []
    for a, b in sorted(spans):
        if out and a <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


def mask_url(url: str) -> str:
    """``url`` with every text that may be its password replaced by ``***`` (``postgresql://nas:***@db/nas``,
    ``...?password=***``; see :func:`_secret_spans` for what is hidden): the only form in which a storage URL
    is printed, logged or put in a message."""
    url = str(url)
    out, last = [], 0
    for a, b in _merged(_secret_spans(url)):
        out += [url[last:a], "***"]
        last = b
    return "".join(out) + url[last:]


def _secrets(url: str) -> list[str]:
    """Every text of ``url`` that may be a password (:func:`_secret_spans`), as typed and percent-decoded."""
    from urllib.parse import unquote, unquote_plus

    texts = [url[a:b] for a, b in _secret_spans(url)]
    return sorted({form for t in texts for form in (t, unquote(t), unquote_plus(t))})


def _scrub(text: str, secrets: list[str]) -> str:
    """``text`` with every run of characters covered by a piece of ``_PIECE`` or more characters of one of
    ``secrets`` replaced by ``***``. Shorter pieces are left: they occur in any message, and hiding them would
    itself show which characters the password has."""
    hidden = bytearray(len(text))
    for secret in secrets:
        for i in range(len(secret) - _PIECE + 1):
            piece = secret[i:i + _PIECE]
            j = text.find(piece)
            while j != -1:
                hidden[j:j + _PIECE] = b"\x01" * _PIECE
                j = text.find(piece, j + 1)
    out, i = [], 0
    while i < len(text):
        if hidden[i]:
            while i < len(text) and hidden[i]:
                i += 1
            out.append("***")
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def _check_user_part(url: str) -> None:
    """Refuse a database URL whose password SQLAlchemy would read otherwise than :func:`_secret_spans` does:
    an ``@`` before the last one in the user part (SQLAlchemy ends it at the first), or after a query
    ``password=`` (SQLAlchemy would take the text up to it for the user part). Either would send part of the
    password as the password and the rest to the name resolver as a host, and into the driver's error. Also a
    NUL (``%00``), which cuts the driver's connection string short (the port and database after it are lost).
    Nothing is connected."""
    from urllib.parse import unquote

    import sqlalchemy

    m = _SCHEME.match(url)
    if m is None:
        return
    if "\0" in unquote(url):
        raise ValueError(f"`storage`: storage={mask_url(url)!r} holds a NUL character (%00), which the database "
                         f"driver cannot pass on; remove it")
    at = url.rfind("@")
    user_part = at > m.end() and not url.startswith("/", m.end())
    user, colon, password = url[m.end():at].partition(":") if user_part else ("", "", "")
    ambiguous = "@" in password or any("@" in url[q.end():] for q in _QUERY_PASSWORD.finditer(url, m.end()))
    if user_part and not ambiguous:
        try:
            parsed = sqlalchemy.engine.make_url(url)
        except (sqlalchemy.exc.ArgumentError, ValueError):  # not a URL SQLAlchemy reads: opening it says so
            return
        ambiguous = (parsed.username, parsed.password) != (unquote(user), unquote(password) if colon else None)
    if ambiguous:
        raise ValueError(f"`storage`: storage={mask_url(url)!r} has an '@' that is not written %40: SQLAlchemy and "
                         f"libpq end the user name and password at the first '@' and would take the rest for the "
                         f"host; write each '@' in a password (or a user name, database name or query value) as "
                         f"%40 and each '%' as %25, e.g. postgresql://user:my%40pw@host/db")


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
        if text.startswith("sqlite:///") and not text.startswith("sqlite:////") and text != "sqlite:///:memory:":
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


def _rdb_storage(url: str, engine_kwargs: dict[str, Any]) -> optuna.storages.RDBStorage:
    """Optuna's RDBStorage, retried when another process creates the same fresh database at the same moment:
    Optuna creates the tables and inserts the schema version row unguarded, so of two processes opening a new
    SQLite file (or an empty PostgreSQL database) together, one can fail with "UNIQUE constraint failed:
    alembic_version.version_num" or "table ... already exists" (seen with a driver and a worker starting at once;
    ``tests/test_storage_race.py``). The second attempt finds the tables and the row there."""
    for attempt in range(5):
        try:
            return optuna.storages.RDBStorage(url, engine_kwargs=engine_kwargs,
                                              heartbeat_interval=HEARTBEAT_INTERVAL, grace_period=GRACE_PERIOD)
        except Exception as exc:
            text = str(exc)
            if attempt == 4 or not ("alembic_version" in text or "already exists" in text):
                raise
            time.sleep(0.1 * (attempt + 1))
    raise AssertionError("unreachable")


def open_storage(url: str, *, create: bool = True) -> optuna.storages.BaseStorage:
    """Open the storage at ``url`` with heartbeats (RDB) and a generous SQLite lock timeout. With
    ``create=False`` (commands that only read) a storage file that does not exist is an error, never a new
    empty database. Braces in ``url`` are themselves (Optuna would fill ``{...}`` in as a template, so a
    password with a brace would fail or change). An error names the URL masked and holds no piece of 4 or
    more characters of what may be its password (:func:`_secret_spans`)."""
    if url == "sqlite:///:memory:" or url.startswith("inmemory"):
        raise ValueError("`storage`: an in-memory storage cannot be shared with worker processes; use an SQLite "
                         "file (the default) or a database URL")
    path = _file_of(url)
    if not create and path is not None and not path.exists():
        raise ValueError(f"`storage`: there is no storage at {path} (storage={mask_url(url)!r}); check the path, "
                         f"or start a search there first")
    if path is None:
        _check_user_part(url)
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
            template = url.replace("{", "{{").replace("}", "}}")
            storage = _rdb_storage(template, engine_kwargs)
        if url.startswith("sqlite"):
            _fast_sqlite(storage)
        return storage
    except Exception as exc:  # bad URL, unreachable server, missing driver
        # the driver's words, without the URL or any piece of what may be its password
        secrets = _secrets(url)
        message = mask_url(url).join(_scrub(part, secrets) for part in str(exc).split(url))
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
def claim_lock(target: Path | str | None) -> Iterator[bool]:
    """Serialises "count trials, then ask for one" between processes - of one machine through a lock file, of
    many machines through a PostgreSQL advisory lock - so that a study never runs more trials than its
    target.

    Yields whether this process created the lock file. Its holder may remove it (a search that fails before
    it starts leaves nothing beside the storage): a process that was waiting for the removed file finds, once
    it holds it, that the path no longer names that file, and locks the file at the path instead, so two
    processes never hold the lock at once."""
    if target is None:
        yield False
        return
    if isinstance(target, str):
        import sqlalchemy

        engine = _ENGINES.get(target)
        if engine is None:
            engine = _ENGINES[target] = sqlalchemy.create_engine(target, pool_pre_ping=True,
                                                                 poolclass=sqlalchemy.pool.NullPool)
        with engine.connect() as conn:
            conn.execute(sqlalchemy.text("SELECT pg_advisory_lock(:k)"), {"k": ADVISORY_KEY})
            try:
                yield False
            finally:
                conn.execute(sqlalchemy.text("SELECT pg_advisory_unlock(:k)"), {"k": ADVISORY_KEY})
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    while True:
        try:
            fd, created = os.open(target, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_EXCL, 0o666), True
        except FileExistsError:
            try:
                fd, created = os.open(target, os.O_WRONLY | os.O_APPEND), False
            except FileNotFoundError:  # removed in between
                continue
        fcntl.flock(fd, fcntl.LOCK_EX)
        held = os.fstat(fd)
        try:
            now = os.stat(target)
            if (now.st_dev, now.st_ino) == (held.st_dev, held.st_ino):
                break
        except FileNotFoundError:
            pass
        os.close(fd)  # its holder removed it while this process waited: lock the file at the path now
    try:
        yield created
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def default_artifacts(url: str, study_name: str) -> str:
    """Where a study keeps its weights and logs unless told otherwise: ``<storage>-artifacts/<study>`` beside a
    storage file, ``runs/artifacts/<study>`` (from the current folder) for a database."""
    path = lock_path(url)
    base = path.parent / (path.stem + "-artifacts") if isinstance(path, Path) else Path("runs") / "artifacts"
    return str((base / study_name).resolve())


ARTIFACTS_ENV = "NAS_ARTIFACTS"  # an artefact folder the user confirms for every study that stores it


def artifacts_folder(stored: str, url: str, study_name: str, given: str | os.PathLike[str] | None = None) -> str:
    """The folder a process running trials of a study writes its weights and logs to (and the Ray backend its
    results): the stored folder ``stored``, made absolute, once it is confirmed.

    The stored folder is written by whoever can write the storage: followed as it is, it would let them choose
    where this user's processes write (another study's folder, a home directory). So it is written only if it
    is the default for this storage and study (:func:`default_artifacts`) or inside it, or if the user gives it
    again: ``given`` (``Study.resume(artifacts=...)``, ``nas resume --artifacts``, ``nas worker --artifacts``;
    a study made by ``create_study`` in this process counts as given) or the ``NAS_ARTIFACTS`` environment
    variable. A ``given`` folder that is not the stored one is an error (a study's folder does not move);
    ``NAS_ARTIFACTS`` that is not the stored one confirms nothing (it may be set for other studies). Reading
    needs no confirmation (``status``, ``front``; ``export`` checks each weights file's SHA-256)."""
    import shlex

    path = Path(stored).resolve()
    if given is not None:
        if Path(given).resolve() != path:
            raise ValueError(f"`artifacts`: study {study_name!r} keeps its weights and logs in {str(path)!r}, but "
                             f"got artifacts={str(given)!r}; give the study's own folder (it cannot move)")
        return str(path)
    default = Path(default_artifacts(url, study_name))
    confirmed = os.environ.get(ARTIFACTS_ENV)
    if path == default or default in path.parents or (confirmed and Path(confirmed).resolve() == path):
        return str(path)
    quoted = shlex.quote(str(path))
    raise ValueError(f"`artifacts`: study {study_name!r} keeps its weights and logs in {str(path)!r} (as its storage "
                     f"says), outside {str(default)!r}, the default for this storage and study; nas writes to a "
                     f"folder read from a storage only once you give it: resume(artifacts={str(path)!r}), `nas "
                     f"resume --artifacts {quoted}`, `nas worker --artifacts {quoted}` or "
                     f"{ARTIFACTS_ENV}={quoted}")
