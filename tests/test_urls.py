"""URL handling: masking, driver forms, Neon pooled and direct hosts."""

from __future__ import annotations

import pytest

from pydb.errors import ConfigError
from pydb.urls import mask_password, to_atlas, to_direct, to_pooled, to_sqlalchemy

NEON = "postgresql://app:placeholder%40pw@ep-cool-rain-123456-pooler.eu-central-1.aws.neon.tech/neondb?sslmode=require&channel_binding=require"


def test_mask_password_in_urls_and_text() -> None:
    assert mask_password(NEON).startswith("postgresql://app:***@ep-cool-rain")
    assert "placeholder" not in mask_password(f"could not connect to {NEON}: timeout")
    assert mask_password("postgres://app@host/db") == "postgres://app@host/db"


def test_sqlalchemy_form_keeps_tls_settings() -> None:
    url = to_sqlalchemy(NEON.replace("postgresql://", "postgres://"))
    assert url.startswith("postgresql+psycopg://app:placeholder%40pw@")
    assert url.endswith("sslmode=require&channel_binding=require")


def test_atlas_form() -> None:
    assert to_atlas("postgresql://postgres@127.0.0.1:5432/pydb") == (
        "postgres://postgres@127.0.0.1:5432/pydb?search_path=public&sslmode=disable"
    )
    neon = to_atlas(to_direct(NEON))
    assert "channel_binding" not in neon and "sslmode=require" in neon and "-pooler" not in neon


def test_pooled_and_direct_hosts() -> None:
    direct = to_direct(NEON)
    assert "@ep-cool-rain-123456.eu-central-1.aws.neon.tech/" in direct
    assert to_pooled(direct) == NEON
    assert to_direct(direct) == direct


def test_not_a_postgres_url() -> None:
    with pytest.raises(ConfigError, match="not a PostgreSQL URL"):
        to_atlas("mysql://u:pw@h/db")


def test_atlas_form_connects_to_hostaddr_as_libpq_does() -> None:
    double = ("postgresql://postgres:pw@ep-quiet-dew-123456.us-east-2.aws.neon.tech:5544/neon_br-1"
              "?sslmode=disable&hostaddr=127.0.0.1")
    assert to_atlas(double) == "postgres://postgres:pw@127.0.0.1:5544/neon_br-1?sslmode=disable&search_path=public"
    # No sslmode given: chosen from the host name, which still says Neon.
    assert "sslmode=require" in to_atlas(double.replace("sslmode=disable&", ""))
    assert to_atlas("postgresql://u@db.example.com/app?hostaddr=::1,10.0.0.2") == (
        "postgres://u@[::1]/app?search_path=public&sslmode=require"
    )
    # A real Neon URL has no hostaddr: Atlas gets the Neon host itself.
    assert to_atlas(to_direct(NEON)) == (
        "postgres://app:placeholder%40pw@ep-cool-rain-123456.eu-central-1.aws.neon.tech/neondb"
        "?sslmode=require&search_path=public"
    )
