"""Database plumbing: the declarative base, column types, engines and migrations."""

from textbridge.db.base import Base, UTCDateTime
from textbridge.db.engine import Database

__all__ = ["Base", "Database", "UTCDateTime"]
