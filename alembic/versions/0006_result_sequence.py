"""Results numbered in the order they came in (live streams resume after a number)

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23 12:15:12.094109
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("fetch_results", schema=None) as batch_op:
        batch_op.add_column(sa.Column("sequence", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("fetch_results", schema=None) as batch_op:
        batch_op.drop_column("sequence")
