"""Storage passwords: every form a user can type is masked in the URL nas shows, and no piece of it reaches an
error message, the name resolver, a worker's command line or its log.

The connection attempts go to 127.0.0.1 port 1 (closed): they fail locally and fast, and a test that breaks
the parsing shows up as a different message, never as a lookup leaving the machine.
"""

from __future__ import annotations

import functools
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from urllib.parse import quote, unquote

import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st
from hypothesis.configuration import set_hypothesis_home_dir

from nas.engine.storage import mask_url, open_storage

EXAMPLES = int(os.environ.get("NAS_FUZZ_EXAMPLES", "60"))
set_hypothesis_home_dir(Path(tempfile.gettempdir()) / "nas-hypothesis")  # its caches, out of the work tree
SETTINGS = settings(max_examples=EXAMPLES, deadline=None, database=None,
                    derandomize=os.environ.get("NAS_FUZZ_RANDOM") != "1", suppress_health_check=[HealthCheck.too_slow])

# printable characters: letters, digits, punctuation, symbols and spaces of any script, and the URL delimiters
PASSWORDS = st.text(st.one_of(st.sampled_from("@:/?#%&=+ "),
                              st.characters(codec="utf-8", categories=("L", "N", "P", "S", "Zs"))),
                    min_size=4, max_size=24)
HOST = "127.0.0.1:1"  # a closed port on this machine
REFUSED = 'port 1 failed: Connection refused'


def _at_error(masked: str) -> str:
    return (f"`storage`: storage={masked!r} has an '@' that is not written %40: SQLAlchemy and libpq end the user "
            f"name and password at the first '@' and would take the rest for the host; write each '@' in a password "
            f"(or a user name, database name or query value) as %40 and each '%' as %25, e.g. "
            f"postgresql://user:my%40pw@host/db")


def _nul_error(masked: str) -> str:
    return (f"`storage`: storage={masked!r} holds a NUL character (%00), which the database driver cannot pass "
            f"on; remove it")


def _error(url: str) -> str:
    with pytest.raises(ValueError) as err:
        open_storage(url)
    return str(err.value)


def _pieces(secret: str) -> set[str]:
    """Every piece of ``secret`` of 4 or more characters (a longer piece contains a 4-character one)."""
    return {secret[i:i + 4] for i in range(len(secret) - 3)}


@functools.cache
def _fixed() -> str:
    """The text of the messages whatever the password: a piece of a password that is part of it cannot show a
    leak (such examples are drawn again)."""
    return "".join([_at_error("postgresql+psycopg://nas@127.0.0.1:***"), _nul_error(""),
                    _error(f"postgresql+psycopg://nas:zz@{HOST}/db"),
                    _error(f"postgresql://nas@{HOST}/db?password=zz")])


@SETTINGS
@given(PASSWORDS)
@example("p@ss")           # the report: everything after the first '@' was shown
@example("p@ssw0rd@home")
@example("pa:ss/wo?rd#x")
@example("100%sure")
@example("%40pw%40-x")     # typed escaped: the password is @pw@-x
@example("%00nul-byte")    # a NUL, escaped
def test_no_piece_of_a_typed_password_shows_in_the_url_or_the_connection_error(password: str) -> None:
    encoded = quote(password, safe="")
    secrets = _pieces(password) | _pieces(encoded) | _pieces(unquote(password))
    assume(not any(p in _fixed() for p in secrets))
    query_rule = re.search(r"[?&][^=&?]*password=", password, re.IGNORECASE) is not None
    for scheme in ("postgresql", "postgresql+psycopg"):
        # typed as is in the user part: masked up to the last '@', refused if SQLAlchemy would read it otherwise
        url = f"{scheme}://nas:{password}@{HOST}/db"
        masked, message = mask_url(url), _error(url)
        assert not [p for p in secrets if p in masked or p in message]
        if not query_rule:
            assert masked == f"{scheme}://nas:***@{HOST}/db"
        if "\0" in unquote(password):
            assert message == _nul_error(masked)
        elif "@" in password:
            assert message == _at_error(masked)
        else:  # read as typed: the right host and port, the connection refused there
            assert message.startswith(f"`storage` could not be opened: storage={masked!r}: OperationalError: ")
            assert REFUSED in message
        # percent-encoded, as a URL should be: always read right
        url = f"{scheme}://nas:{encoded}@{HOST}/db"
        message = _error(url)
        assert mask_url(url) == f"{scheme}://nas:***@{HOST}/db"
        assert REFUSED in message and not [p for p in secrets if p in message]
    # in the query string, as typed and encoded
    url = f"postgresql://nas@{HOST}/db?password={password}"
    masked, message = mask_url(url), _error(url)
    assert not [p for p in secrets if p in masked or p in message]
    if "\0" in unquote(password):
        assert message == _nul_error(masked)
    elif "@" in password:
        assert message == _at_error(masked)
    if "@" not in password:
        assert masked == f"postgresql://nas@{HOST}/db?password=***"
    url = f"postgresql://nas@{HOST}/db?password={encoded}"
    message = _error(url)
    assert mask_url(url) == f"postgresql://nas@{HOST}/db?password=***"
    assert REFUSED in message and not [p for p in secrets if p in message]


def test_masked_forms() -> None:
    """The forms a user types, masked exactly: user part up to the last '@', query passwords to the end."""
    assert mask_url("postgresql://nas:s3cret@db.example:5432/nas") == "postgresql://nas:***@db.example:5432/nas"
    assert mask_url("postgresql://nas:p@ss@127.0.0.1:5432/db") == "postgresql://nas:***@127.0.0.1:5432/db"
    assert mask_url("postgresql+psycopg://u:p%40ss@h/d") == "postgresql+psycopg://u:***@h/d"
    assert mask_url("postgresql://nas@db/nas") == "postgresql://nas@db/nas"  # a user without a password
    assert mask_url("postgresql://n@me@db/nas") == "postgresql://n@me@db/nas"
    assert mask_url("postgresql://db/nas?user=nas&password=hunter2&sslmode=require") == \
        "postgresql://db/nas?user=nas&password=***"  # an unescaped '&' may belong to the password
    assert mask_url("postgresql://db/nas?sslpassword=k3y&sslmode=require") == "postgresql://db/nas?sslpassword=***"
    assert mask_url("postgresql://nas:pw@db/nas?password=other") == "postgresql://nas:***@db/nas?password=***"
    assert mask_url("sqlite:////tmp/a:b@c/x.db") == "sqlite:////tmp/a:b@c/x.db"  # a file has no user part
    assert mask_url("journal:////tmp/x.journal") == "journal:////tmp/x.journal"


def test_a_raw_at_is_refused_before_any_lookup() -> None:
    """SQLAlchemy would look up 'ssword@127.0.0.1' as a host (the driver's error named it); nas refuses the URL
    before connecting, saying how to write it, and the escaped form connects to the host given."""
    url = f"postgresql://nas:p@ssword@{HOST}/db"
    assert _error(url) == _at_error(f"postgresql://nas:***@{HOST}/db")
    assert REFUSED in _error(f"postgresql://nas:p%40ssword@{HOST}/db")
    # a user name with '@' and no password is read as typed
    assert REFUSED in _error(f"postgresql://n@me@{HOST}/db")


def test_the_cli_and_a_worker_never_print_the_password(tmp_path: Path) -> None:
    """`nas worker` (storage from NAS_STORAGE) and `nas status` exit 2 with the masked URL, in real processes."""
    env = {**os.environ, "NAS_STORAGE": f"postgresql://nas:Secr3t@Horse@{HOST}/db"}
    worker = subprocess.run([sys.executable, "-m", "nas.cli", "worker", "--study", "s"], capture_output=True,
                            text=True, env=env, cwd=tmp_path, timeout=120, check=False)
    assert worker.returncode == 2 and worker.stdout == ""
    assert worker.stderr == f"nas: error: {_at_error(f'postgresql://nas:***@{HOST}/db')}\n"
    status = subprocess.run([sys.executable, "-m", "nas.cli", "status", "--storage",
                             f"postgresql://nas:Secr3t%40Horse@{HOST}/db"], capture_output=True, text=True,
                            cwd=tmp_path, timeout=120, check=False)
    assert status.returncode == 2 and status.stdout == ""
    assert status.stderr.startswith(f"nas: error: `storage` could not be opened: storage='postgresql://nas:***@"
                                    f"{HOST}/db': OperationalError: ") and REFUSED in status.stderr
    for out in (worker.stderr, status.stderr):
        assert not [p for p in _pieces("Secr3t@Horse") | _pieces("Secr3t%40Horse") if p in out]
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # nothing written
