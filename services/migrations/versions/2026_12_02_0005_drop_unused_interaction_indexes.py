"""drop unused interaction indexes: every ingested row paid for two indexes that no query reads

`ix_interaction_conversation_id`: nothing looks interactions up by conversation (a conversation view would want
(app, conversation_id, turn)). `ix_interaction_domain_bucket`: four values; drift windows filter by model version
and time through `ix_interaction_model_time` and by bucket on the rows it finds. Together they cost PostgreSQL
~6-10 µs of CPU per inserted row (of ~45 for the whole insert), measured with the consumer's staged COPY insert.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02 15:30:00
"""
from alembic import op


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('interaction', schema=None) as batch_op:
        batch_op.drop_index('ix_interaction_conversation_id')
        batch_op.drop_index('ix_interaction_domain_bucket')


def downgrade() -> None:
    with op.batch_alter_table('interaction', schema=None) as batch_op:
        batch_op.create_index('ix_interaction_domain_bucket', ['domain_bucket'], unique=False)
        batch_op.create_index('ix_interaction_conversation_id', ['conversation_id'], unique=False)
