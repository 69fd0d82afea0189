"""Persistence: SQLAlchemy Core over SQLite (default) and PostgreSQL, with Alembic migrations."""
