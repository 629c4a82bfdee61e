"""badcase review order index: claim-next walks the open items by priority instead of sorting the queue

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02 01:40:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None

WHERE = "status IN ('queued', 'in_review') AND NOT is_gold"


def upgrade() -> None:
    # CONCURRENTLY (outside the migration's transaction): a live API keeps writing badcases while this builds.
    with op.get_context().autocommit_block():
        op.create_index('ix_badcase_review_order', 'badcase', [sa.text('priority DESC'), 'id'], unique=False,
                        postgresql_where=sa.text(WHERE), sqlite_where=sa.text(WHERE), postgresql_concurrently=True,
                        if_not_exists=True)


def downgrade() -> None:
    with op.get_context().autocommit_block():
        op.drop_index('ix_badcase_review_order', table_name='badcase', postgresql_concurrently=True)
