"""Adapters: SQLAlchemy tables, repositories and schema management, and the system clock."""
