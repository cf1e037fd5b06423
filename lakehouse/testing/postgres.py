"""Throwaway PostgreSQL databases for tests (the ``postgres_dsn`` fixture)."""

from __future__ import annotations

from lakehouse.config import Settings


def create_database(settings: Settings, name: str) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(settings.postgres_dsn("postgres"), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def drop_database(settings: Settings, name: str) -> None:
    """Drop the database; its logical replication slots first, since they block the drop."""
    import psycopg
    from psycopg import sql

    with psycopg.connect(settings.postgres_dsn("postgres"), autocommit=True) as conn:
        conn.execute(
            "SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots "
            "WHERE database = %s AND active_pid IS NOT NULL",
            (name,),
        )
        conn.execute(
            "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots "
            "WHERE database = %s",
            (name,),
        )
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
