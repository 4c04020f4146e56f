"""messages.handed_at / handed_to and message_sends: what went to a channel, and every time it went

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01 19:20:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import textbridge.db.base

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("handed_at", textbridge.db.base.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(sa.Column("handed_to", sa.String(length=32), nullable=True))
    op.create_table(
        "message_sends",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("message_id", sa.String(length=26), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(length=32), nullable=True),
        sa.Column("channel_ref", sa.String(length=64), nullable=True),
        sa.Column("at", textbridge.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("acknowledged", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["messages.id"],
            name=op.f("fk_message_sends_message_id_messages"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_message_sends")),
    )
    op.create_index("ix_message_sends_message", "message_sends", ["message_id", "id"])
    # Messages already sent keep their one send, so a repeat after the upgrade shows as two.
    op.execute(
        "INSERT INTO message_sends (message_id, attempt, channel, channel_ref, at, acknowledged)"
        " SELECT id, attempts, channel, channel_ref, sent_at, true FROM messages"
        " WHERE sent_at IS NOT NULL AND direction = 'out'"
    )


def downgrade() -> None:
    op.drop_index("ix_message_sends_message", table_name="message_sends")
    op.drop_table("message_sends")
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_column("handed_to")
        batch_op.drop_column("handed_at")
