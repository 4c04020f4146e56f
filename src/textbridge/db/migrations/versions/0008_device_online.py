"""devices.online, the state device.online / device.offline events tell

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-22 23:45:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Phones there before start offline: each one still alive tells device.online the next
    # time it is seen, rather than every long-gone one telling device.offline.
    with op.batch_alter_table("devices", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("online", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
        batch_op.create_index(
            batch_op.f("ix_devices_online_last_seen_at"), ["online", "last_seen_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("devices", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_devices_online_last_seen_at"))
        batch_op.drop_column("online")
