"""channels revision, order touchpoints index

`store_settings.channels_revision`: bumped when a recompute gives touchpoints other channels,
so the data-driven weights learned from the old channels are learned again. An index for the
touchpoints taken from an order, which attribution replaces with every batch (without it each
batch read every touchpoint of the workspace).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06 09:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("store_settings") as batch_op:
        batch_op.add_column(
            sa.Column("channels_revision", sa.Integer(), server_default="0", nullable=False)
        )
    with op.batch_alter_table("touchpoints") as batch_op:
        batch_op.create_index(
            "ix_touchpoints_workspace_order", ["workspace_id", "order_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("touchpoints") as batch_op:
        batch_op.drop_index("ix_touchpoints_workspace_order")
    with op.batch_alter_table("store_settings") as batch_op:
        batch_op.drop_column("channels_revision")
