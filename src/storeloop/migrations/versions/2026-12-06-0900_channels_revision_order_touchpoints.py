"""channels revision, order touchpoints index

`workspaces.channels_revision`: bumped when a recompute gives touchpoints other channels, so
the data-driven weights learned from the old channels are learned again. A partial index for
the touchpoints taken from orders, which attribution replaces with every batch (without it,
each batch read every touchpoint of the workspace); built concurrently on PostgreSQL, so
ingestion does not wait for it on a large store.

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

INDEX = "ix_touchpoints_workspace_order"
ORDER_TOUCHPOINTS = sa.text("order_id IS NOT NULL")


def upgrade() -> None:
    with op.batch_alter_table("workspaces") as batch_op:
        batch_op.add_column(
            sa.Column("channels_revision", sa.Integer(), server_default="0", nullable=False)
        )
    columns = ["workspace_id", "order_id"]
    if op.get_bind().dialect.name == "postgresql":
        with op.get_context().autocommit_block():
            op.create_index(
                INDEX,
                "touchpoints",
                columns,
                postgresql_where=ORDER_TOUCHPOINTS,
                postgresql_concurrently=True,
            )
    else:
        op.create_index(INDEX, "touchpoints", columns, sqlite_where=ORDER_TOUCHPOINTS)


def downgrade() -> None:
    op.drop_index(INDEX, table_name="touchpoints")
    with op.batch_alter_table("workspaces") as batch_op:
        batch_op.drop_column("channels_revision")
