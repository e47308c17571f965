"""GenAI evaluation datasets (tags, experiment links, records) and registered scorers

Revision ID: 0006
Revises: 0005

Mirrors gl_ml_tracking.models.genai; the same on SQLite and PostgreSQL.
"""
import sqlalchemy as sa
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def _fk(table, column, target):
    return sa.ForeignKeyConstraint([column], [f'{target}.id'], name=op.f(f'fk_{table}_{column}_{target}'),
                                   ondelete='CASCADE')


def upgrade():
    op.create_table('glml_eval_datasets',
    sa.Column('id', BIG_ID, autoincrement=True, nullable=False),
    sa.Column('dataset_id', sa.String(length=40), nullable=False),
    sa.Column('project_id', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=500), nullable=False),
    sa.Column('digest', sa.String(length=64), nullable=False),
    sa.Column('schema', sa.Text(), nullable=True),
    sa.Column('profile', sa.Text(), nullable=True),
    sa.Column('created_by', sa.String(length=255), nullable=True),
    sa.Column('last_updated_by', sa.String(length=255), nullable=True),
    sa.Column('creation_time', sa.BigInteger(), nullable=False),
    sa.Column('last_update_time', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_glml_eval_datasets')),
    sa.UniqueConstraint('dataset_id', name=op.f('uq_glml_eval_datasets_dataset_id'))
    )
    op.create_index('ix_glml_eval_datasets_project_created', 'glml_eval_datasets', ['project_id', 'creation_time'])

    op.create_table('glml_eval_dataset_tags',
    sa.Column('dataset_pk', BIG_ID, nullable=False),
    sa.Column('key', sa.String(length=250), nullable=False),
    sa.Column('value', sa.Text(), nullable=True),
    _fk('glml_eval_dataset_tags', 'dataset_pk', 'glml_eval_datasets'),
    sa.PrimaryKeyConstraint('dataset_pk', 'key', name=op.f('pk_glml_eval_dataset_tags'))
    )

    op.create_table('glml_eval_dataset_experiments',
    sa.Column('dataset_pk', BIG_ID, nullable=False),
    sa.Column('experiment_pk', BIG_ID, nullable=False),
    sa.Column('creation_time', sa.BigInteger(), nullable=False),
    _fk('glml_eval_dataset_experiments', 'dataset_pk', 'glml_eval_datasets'),
    _fk('glml_eval_dataset_experiments', 'experiment_pk', 'glml_experiments'),
    sa.PrimaryKeyConstraint('dataset_pk', 'experiment_pk', name=op.f('pk_glml_eval_dataset_experiments'))
    )
    op.create_index(op.f('ix_glml_eval_dataset_experiments_experiment_pk'), 'glml_eval_dataset_experiments',
                    ['experiment_pk'])

    op.create_table('glml_eval_dataset_records',
    sa.Column('id', BIG_ID, autoincrement=True, nullable=False),
    sa.Column('record_id', sa.String(length=40), nullable=False),
    sa.Column('dataset_pk', BIG_ID, nullable=False),
    sa.Column('input_hash', sa.String(length=64), nullable=False),
    sa.Column('inputs', sa.Text(), nullable=False),
    sa.Column('outputs', sa.Text(), nullable=True),
    sa.Column('expectations', sa.Text(), nullable=True),
    sa.Column('tags', sa.Text(), nullable=True),
    sa.Column('source', sa.Text(), nullable=True),
    sa.Column('source_id', sa.String(length=255), nullable=True),
    sa.Column('source_type', sa.String(length=32), nullable=True),
    sa.Column('created_by', sa.String(length=255), nullable=True),
    sa.Column('last_updated_by', sa.String(length=255), nullable=True),
    sa.Column('creation_time', sa.BigInteger(), nullable=False),
    sa.Column('last_update_time', sa.BigInteger(), nullable=False),
    _fk('glml_eval_dataset_records', 'dataset_pk', 'glml_eval_datasets'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_glml_eval_dataset_records')),
    sa.UniqueConstraint('record_id', name=op.f('uq_glml_eval_dataset_records_record_id')),
    sa.UniqueConstraint('dataset_pk', 'input_hash', name='uq_glml_eval_dataset_records_inputs')
    )
    op.create_index('ix_glml_eval_dataset_records_order', 'glml_eval_dataset_records',
                    ['dataset_pk', 'creation_time', 'record_id'])

    op.create_table('glml_scorers',
    sa.Column('id', BIG_ID, autoincrement=True, nullable=False),
    sa.Column('scorer_id', sa.String(length=36), nullable=False),
    sa.Column('project_id', sa.String(length=64), nullable=False),
    sa.Column('experiment_pk', BIG_ID, nullable=False),
    sa.Column('name', sa.String(length=256), nullable=False),
    _fk('glml_scorers', 'experiment_pk', 'glml_experiments'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_glml_scorers')),
    sa.UniqueConstraint('scorer_id', name=op.f('uq_glml_scorers_scorer_id')),
    sa.UniqueConstraint('experiment_pk', 'name', name='uq_glml_scorers_experiment_name')
    )

    op.create_table('glml_scorer_versions',
    sa.Column('scorer_pk', BIG_ID, nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('serialized_scorer', sa.Text(), nullable=False),
    sa.Column('creation_time', sa.BigInteger(), nullable=False),
    _fk('glml_scorer_versions', 'scorer_pk', 'glml_scorers'),
    sa.PrimaryKeyConstraint('scorer_pk', 'version', name=op.f('pk_glml_scorer_versions'))
    )


def downgrade():
    op.drop_table('glml_scorer_versions')
    op.drop_table('glml_scorers')
    op.drop_index('ix_glml_eval_dataset_records_order', table_name='glml_eval_dataset_records')
    op.drop_table('glml_eval_dataset_records')
    op.drop_index(op.f('ix_glml_eval_dataset_experiments_experiment_pk'), table_name='glml_eval_dataset_experiments')
    op.drop_table('glml_eval_dataset_experiments')
    op.drop_table('glml_eval_dataset_tags')
    op.drop_index('ix_glml_eval_datasets_project_created', table_name='glml_eval_datasets')
    op.drop_table('glml_eval_datasets')
