"""Alembic environment and versions of the labledger schema."""
