"""the conversation trigger skips ``preparing`` messages (a bulk job not yet written whole)

A large bulk job's rows are written in chunks as ``preparing`` before the job exists
(messages/writer.py); if the job is never committed they are deleted, so they must not have
touched a conversation. The writer upserts the conversations of a job's rows when it releases
them.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01 20:30:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Migration 0004's trigger, with the rows it takes as the only change.
_POSTGRESQL_FUNCTION = """
CREATE OR REPLACE FUNCTION textbridge_conversations() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO conversations AS c (account_id, phone, last_message_id,
        last_direction, last_text, last_message_at, unread)
    SELECT DISTINCT ON (account_id, phone) account_id, phone, id, direction,
        left(text, 200), created_at,
        count(*) FILTER (WHERE direction = 'in') OVER (PARTITION BY account_id, phone)
    FROM new_messages
    %(where)s
    ORDER BY account_id, phone, id DESC
    ON CONFLICT (account_id, phone) DO UPDATE SET
        last_message_id = excluded.last_message_id,
        last_direction = excluded.last_direction,
        last_text = excluded.last_text,
        last_message_at = excluded.last_message_at,
        unread = c.unread + excluded.unread
    WHERE excluded.last_message_id > c.last_message_id;
    RETURN NULL;
END $$
"""

_SQLITE_TRIGGER = """
CREATE TRIGGER messages_conversations AFTER INSERT ON messages
%(when)s
BEGIN
    INSERT INTO conversations (account_id, phone, last_message_id, last_direction,
        last_text, last_message_at, unread)
    VALUES (NEW.account_id, NEW.phone, NEW.id, NEW.direction,
        substr(NEW.text, 1, 200), NEW.created_at, NEW.direction = 'in')
    ON CONFLICT (account_id, phone) DO UPDATE SET
        last_message_id = excluded.last_message_id,
        last_direction = excluded.last_direction,
        last_text = excluded.last_text,
        last_message_at = excluded.last_message_at,
        unread = unread + excluded.unread
    WHERE excluded.last_message_id > conversations.last_message_id;
END
"""


def _replace_trigger(*, skip_preparing: bool) -> None:
    if op.get_bind().dialect.name == "postgresql":
        where = "WHERE status <> 'preparing'" if skip_preparing else ""
        op.execute(_POSTGRESQL_FUNCTION % {"where": where})  # the trigger calls it by name
    else:
        when = "WHEN NEW.status <> 'preparing'" if skip_preparing else ""
        op.execute("DROP TRIGGER IF EXISTS messages_conversations")
        op.execute(_SQLITE_TRIGGER % {"when": when})


def upgrade() -> None:
    _replace_trigger(skip_preparing=True)


def downgrade() -> None:
    _replace_trigger(skip_preparing=False)
