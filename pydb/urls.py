"""Database URLs: parse, normalise for psycopg and Atlas, mask passwords, Neon host facts."""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from pydb.errors import ConfigError

_SCHEMES = {"postgres", "postgresql", "postgresql+psycopg", "postgresql+psycopg2", "postgresql+asyncpg"}
_MASK = "***"
_URL_IN_TEXT = re.compile(r"(postgres(?:ql)?(?:\+\w+)?://[^:/@\s]*:)([^@\s]*)(@)")


def _split(url: str) -> tuple[str, str, str, list[tuple[str, str]], str]:
    parts = urlsplit(url)
    if parts.scheme not in _SCHEMES:
        raise ConfigError(
            f"not a PostgreSQL URL: {mask_password(url)!r} (expected postgres:// or postgresql://)"
        )
    return parts.scheme, parts.netloc, parts.path, parse_qsl(parts.query, keep_blank_values=True), parts.fragment


def mask_password(url: str) -> str:
    """Return the URL with its password replaced by ***; any text with URLs in it works too."""
    return _URL_IN_TEXT.sub(lambda m: m.group(1) + (_MASK if m.group(2) else "") + m.group(3), url)


def query_params(url: str) -> dict[str, str]:
    """Return the URL's query parameters as a dict."""
    return dict(_split(url)[3])


def to_sqlalchemy(url: str) -> str:
    """Return the URL for SQLAlchemy with the psycopg 3 driver (postgres:// accepted)."""
    _scheme, netloc, path, query, fragment = _split(url)
    query = [(k, v) for k, v in query if k != "search_path"]
    return urlunsplit(("postgresql+psycopg", netloc, path, urlencode(query), fragment))


def to_libpq(url: str) -> str:
    """Return a postgresql:// URL that libpq (psycopg, psql) accepts: Atlas's search_path parameter removed."""
    _scheme, netloc, path, query, fragment = _split(url)
    query = [(k, v) for k, v in query if k != "search_path"]
    return urlunsplit(("postgresql", netloc, path, urlencode(query), fragment))


def to_atlas(url: str, *, schema: str = "public") -> str:
    """Return the URL for Atlas: postgres:// scheme, scoped to one schema, sslmode kept or disabled locally.

    Atlas's Go driver (lib/pq) knows neither libpq's `channel_binding` nor its `hostaddr`. The first
    is dropped (the TLS session is still required). With `hostaddr`, libpq connects to that address
    and keeps the host name for TLS, so Atlas is given the address as its host (the first one of a
    list); sslmode is then kept as set, or chosen from the host name. Real Neon URLs carry no hostaddr.
    """
    _scheme, netloc, path, query, fragment = _split(url)
    params = dict(query)
    params.pop("channel_binding", None)
    address = params.pop("hostaddr", "").split(",")[0].strip()
    if address:
        netloc = _with_host(netloc, address)
    params["search_path"] = schema
    if "sslmode" not in params:
        params["sslmode"] = "disable" if is_local_host(host(url)) else "require"
    return urlunsplit(("postgres", netloc, path, urlencode(params), fragment))


def _with_host(netloc: str, address: str) -> str:
    userinfo, _, hostport = netloc.rpartition("@")
    port = urlsplit(f"//{hostport}").port
    shown = f"[{address}]" if ":" in address else address
    return (f"{userinfo}@" if userinfo else "") + shown + (f":{port}" if port else "")


def host(url: str) -> str:
    """Return the host name of the URL ('' for a Unix socket URL)."""
    return urlsplit(url).hostname or ""


def port(url: str) -> int | None:
    """Return the port of the URL, if it names one."""
    return urlsplit(url).port


def username(url: str) -> str:
    """Return the user name of the URL ('' when it has none)."""
    return urlsplit(url).username or ""


def database_name(url: str) -> str:
    """Return the database name of the URL."""
    return urlsplit(url).path.lstrip("/")


def with_database(url: str, name: str) -> str:
    """Return the URL pointing at another database on the same server."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


def is_local_host(hostname: str) -> bool:
    """Tell whether a host name is this machine (loopback or a Unix socket)."""
    return hostname in ("", "localhost", "::1") or hostname.startswith("127.")


def is_neon_host(hostname: str) -> bool:
    """Tell whether a host is a Neon endpoint (ep-….neon.tech or neon.build)."""
    return hostname.startswith("ep-") and (".neon.tech" in hostname or ".neon.build" in hostname)


def is_pooled_host(hostname: str) -> bool:
    """Tell whether a host is a Neon pooled (PgBouncer, transaction mode) endpoint."""
    first = hostname.split(".", 1)[0]
    return first.endswith("-pooler")


def to_direct(url: str) -> str:
    """Return the URL with a Neon pooled host turned into its direct host (strip -pooler)."""
    parts = urlsplit(url)
    hostname = parts.hostname or ""
    if not is_pooled_host(hostname):
        return url
    first, _, rest = hostname.partition(".")
    direct = first.removesuffix("-pooler") + ("." + rest if rest else "")
    netloc = parts.netloc.replace(hostname, direct, 1)
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def to_pooled(url: str) -> str:
    """Return the URL with a Neon direct host turned into its pooled (-pooler) host."""
    parts = urlsplit(url)
    hostname = parts.hostname or ""
    if is_pooled_host(hostname) or not hostname:
        return url
    first, _, rest = hostname.partition(".")
    pooled = first + "-pooler" + ("." + rest if rest else "")
    netloc = parts.netloc.replace(hostname, pooled, 1)
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
