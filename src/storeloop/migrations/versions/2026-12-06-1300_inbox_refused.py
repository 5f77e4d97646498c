"""inbox and quarantine: the indexes of the messages the request refused

Processing quarantines a body's refused messages from the stored body, instead of the request
writing them (ADR 0014); ``inbox.refused`` tells it which refusals the sender was already told
of, and ``quarantine.refused`` keeps them for a body set aside whole, for its replay.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06 13:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


TABLES = ("inbox", "quarantine")


def upgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table) as batch_op:
            batch_op.add_column(
                sa.Column(
                    "refused",
                    sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
                    nullable=True,
                )
            )


def downgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table) as batch_op:
            batch_op.drop_column("refused")
