"""SQL sources: `ingest.database` (a SQLAlchemy URL) and the query in the file `ingest.source`.

The query file is what DVC tracks; the database is not versioned, so the snapshot `ingest`
writes is the data the pipeline reproduces from (`make snapshot` takes a new one). The URL holds
no password: the driver reads it from the environment (PGPASSWORD for PostgreSQL, or
~/.pgpass), and `env:NAME` reads the whole URL from the variable NAME.
"""

from __future__ import annotations

import os

import fsspec
import pandas as pd
import sqlalchemy
from sqlalchemy.engine import URL, make_url

from tabml.io import DataError

CONNECT_SECONDS = 10
ENV_PREFIX = "env:"


def database_url(setting: str) -> URL:
    """The SQLAlchemy URL `ingest.database` names, refused when it holds a password."""
    text = setting
    if setting.startswith(ENV_PREFIX):
        name = setting.removeprefix(ENV_PREFIX)
        text = os.environ.get(name, "")
        if not text:
            raise DataError(f"ingest.database is {setting!r} but the variable {name} is not set.")
    try:
        url = make_url(text)
    except sqlalchemy.exc.ArgumentError:
        raise DataError(
            f"ingest.database {setting!r} is no SQLAlchemy URL "
            "(e.g. duckdb:///data/raw/source.duckdb, postgresql+psycopg://user@host/db)."
        ) from None
    if url.password is not None and not setting.startswith(ENV_PREFIX):
        raise DataError(
            "ingest.database holds a password: remove it from params.yaml and give it in the "
            "environment (PGPASSWORD for PostgreSQL), or name a variable with env:NAME."
        )
    return url


def first_line(exc: Exception) -> str:
    """The database's own message: pandas wraps SQLAlchemy's error, which wraps the driver's."""
    cause = exc.__cause__ if isinstance(exc, pd.errors.DatabaseError) else exc
    orig = getattr(cause, "orig", None) or cause or exc
    return str(orig).strip().splitlines()[0]


def read_query(query_file: str, setting: str) -> pd.DataFrame:
    """The rows the query in `query_file` returns from the database; timestamps as ISO text."""
    try:
        with fsspec.open(query_file, "r", encoding="utf-8") as fh:
            query = fh.read().strip().rstrip(";")
    except FileNotFoundError:
        raise DataError(f"{query_file}: the query file (ingest.source) does not exist.") from None
    if not query:
        raise DataError(f"{query_file}: the query file (ingest.source) is empty.")
    url = database_url(setting)
    shown = url.render_as_string(hide_password=True)
    options = (
        {"connect_timeout": CONNECT_SECONDS} if url.get_backend_name() == "postgresql" else {}
    )
    try:
        engine = sqlalchemy.create_engine(url, connect_args=options)
    except (sqlalchemy.exc.NoSuchModuleError, ImportError) as exc:
        raise DataError(f"ingest.database {shown}: no driver for it ({exc}).") from None
    try:
        try:
            conn = engine.connect()
        except sqlalchemy.exc.DBAPIError as exc:
            reason = first_line(exc)
            raise DataError(f"ingest.database {shown}: cannot connect: {reason}") from None
        with conn:
            frame = pd.read_sql_query(sqlalchemy.text(query), conn)
    except (sqlalchemy.exc.DBAPIError, pd.errors.DatabaseError) as exc:
        raise DataError(f"{query_file}: the query failed on {shown}: {first_line(exc)}") from None
    finally:
        engine.dispose()
    if frame.empty:
        raise DataError(f"{query_file}: the query returned no rows from {shown}.")
    for name in frame.columns:
        if pd.api.types.is_datetime64_any_dtype(frame[name]):
            frame[name] = frame[name].map(lambda t: t.isoformat() if pd.notna(t) else None)
    return frame
