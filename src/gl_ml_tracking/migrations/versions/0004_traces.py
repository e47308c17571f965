"""traces, spans and assessments (issue 15)

Revision ID: 0004
Revises: 0003

Mirrors gl_ml_tracking.models.traces.
"""
from alembic import op
import sqlalchemy as sa

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def _trace_fk(table):
    return sa.ForeignKeyConstraint(['trace_pk'], ['glml_traces.id'], name=op.f(f'fk_{table}_trace_pk_glml_traces'),
                                   ondelete='CASCADE')


def _key_value_table(table):
    op.create_table(table,
                    sa.Column('trace_pk', BIG_ID, nullable=False),
                    sa.Column('key', sa.String(length=250), nullable=False),
                    sa.Column('value', sa.Text(), nullable=True),
                    _trace_fk(table),
                    sa.PrimaryKeyConstraint('trace_pk', 'key', name=op.f(f'pk_{table}')))
    op.create_index(f'ix_{table}_key_trace', table, ['key', 'trace_pk'])


def upgrade():
    op.create_table('glml_traces',
                    sa.Column('id', BIG_ID, autoincrement=True, nullable=False),
                    sa.Column('project_id', sa.String(length=64), nullable=False),
                    sa.Column('trace_id', sa.String(length=64), nullable=False),
                    sa.Column('experiment_id', BIG_ID, nullable=False),
                    sa.Column('client_request_id', sa.String(length=250), nullable=True),
                    sa.Column('name', sa.String(length=250), nullable=True),
                    sa.Column('state', sa.String(length=32), nullable=False),
                    sa.Column('request_time', sa.BigInteger(), nullable=False),
                    sa.Column('execution_duration', sa.BigInteger(), nullable=True),
                    sa.Column('request_preview', sa.Text(), nullable=True),
                    sa.Column('response_preview', sa.Text(), nullable=True),
                    sa.Column('finalized', sa.Boolean(), nullable=False),
                    sa.ForeignKeyConstraint(['experiment_id'], ['glml_experiments.id'],
                                            name=op.f('fk_glml_traces_experiment_id_glml_experiments'), ondelete='CASCADE'),
                    sa.PrimaryKeyConstraint('id', name=op.f('pk_glml_traces')),
                    sa.UniqueConstraint('project_id', 'trace_id', name='uq_glml_traces_project_trace'))
    op.create_index('ix_glml_traces_experiment_time', 'glml_traces', ['experiment_id', 'request_time', 'trace_id'])
    _key_value_table('glml_trace_tags')
    _key_value_table('glml_trace_metadata')
    op.create_table('glml_trace_spans',
                    sa.Column('trace_pk', BIG_ID, nullable=False),
                    sa.Column('span_id', sa.String(length=32), nullable=False),
                    sa.Column('parent_span_id', sa.String(length=32), nullable=True),
                    sa.Column('name', sa.String(length=500), nullable=True),
                    sa.Column('span_type', sa.String(length=64), nullable=True),
                    sa.Column('status', sa.String(length=32), nullable=True),
                    sa.Column('start_ns', sa.BigInteger(), nullable=False),
                    sa.Column('end_ns', sa.BigInteger(), nullable=True),
                    sa.Column('payload', sa.Text(), nullable=False),
                    _trace_fk('glml_trace_spans'),
                    sa.PrimaryKeyConstraint('trace_pk', 'span_id', name=op.f('pk_glml_trace_spans')))
    op.create_table('glml_trace_assessments',
                    sa.Column('id', BIG_ID, autoincrement=True, nullable=False),
                    sa.Column('project_id', sa.String(length=64), nullable=False),
                    sa.Column('assessment_id', sa.String(length=64), nullable=False),
                    sa.Column('trace_pk', BIG_ID, nullable=False),
                    sa.Column('name', sa.String(length=250), nullable=False),
                    sa.Column('kind', sa.String(length=16), nullable=False),
                    sa.Column('value', sa.Text(), nullable=True),
                    sa.Column('error', sa.Text(), nullable=True),
                    sa.Column('rationale', sa.Text(), nullable=True),
                    sa.Column('source_type', sa.String(length=32), nullable=True),
                    sa.Column('source_id', sa.String(length=250), nullable=True),
                    sa.Column('span_id', sa.String(length=32), nullable=True),
                    sa.Column('metadata_json', sa.Text(), nullable=True),
                    sa.Column('overrides', sa.String(length=64), nullable=True),
                    sa.Column('valid', sa.Boolean(), nullable=False),
                    sa.Column('create_time', sa.BigInteger(), nullable=False),
                    sa.Column('last_update_time', sa.BigInteger(), nullable=False),
                    _trace_fk('glml_trace_assessments'),
                    sa.PrimaryKeyConstraint('id', name=op.f('pk_glml_trace_assessments')),
                    sa.UniqueConstraint('project_id', 'assessment_id', name='uq_glml_trace_assessments_project_id'))
    op.create_index('ix_glml_trace_assessments_trace', 'glml_trace_assessments', ['trace_pk', 'name'])
    op.create_table('glml_trace_run_links',
                    sa.Column('trace_pk', BIG_ID, nullable=False),
                    sa.Column('run_id', BIG_ID, nullable=False),
                    _trace_fk('glml_trace_run_links'),
                    sa.ForeignKeyConstraint(['run_id'], ['glml_runs.id'], name=op.f('fk_glml_trace_run_links_run_id_glml_runs'),
                                            ondelete='CASCADE'),
                    sa.PrimaryKeyConstraint('trace_pk', 'run_id', name=op.f('pk_glml_trace_run_links')))
    op.create_index('ix_glml_trace_run_links_run', 'glml_trace_run_links', ['run_id', 'trace_pk'])
    op.create_table('glml_trace_issues',
                    sa.Column('id', BIG_ID, autoincrement=True, nullable=False),
                    sa.Column('project_id', sa.String(length=64), nullable=False),
                    sa.Column('issue_id', sa.String(length=64), nullable=False),
                    sa.Column('experiment_id', BIG_ID, nullable=False),
                    sa.Column('name', sa.String(length=250), nullable=False),
                    sa.Column('description', sa.Text(), nullable=True),
                    sa.Column('status', sa.String(length=32), nullable=False),
                    sa.Column('severity', sa.String(length=32), nullable=True),
                    sa.Column('root_causes', sa.Text(), nullable=True),
                    sa.Column('categories', sa.Text(), nullable=True),
                    sa.Column('source_run_id', sa.String(length=32), nullable=True),
                    sa.Column('created_by', sa.String(length=250), nullable=True),
                    sa.Column('created_time', sa.BigInteger(), nullable=False),
                    sa.Column('last_update_time', sa.BigInteger(), nullable=False),
                    sa.ForeignKeyConstraint(['experiment_id'], ['glml_experiments.id'],
                                            name=op.f('fk_glml_trace_issues_experiment_id_glml_experiments'), ondelete='CASCADE'),
                    sa.PrimaryKeyConstraint('id', name=op.f('pk_glml_trace_issues')),
                    sa.UniqueConstraint('project_id', 'issue_id', name='uq_glml_trace_issues_project_id'))
    op.create_index('ix_glml_trace_issues_experiment', 'glml_trace_issues', ['experiment_id', 'created_time'])


def downgrade():
    for table in ('glml_trace_issues', 'glml_trace_run_links', 'glml_trace_assessments', 'glml_trace_spans', 'glml_trace_metadata',
                  'glml_trace_tags', 'glml_traces'):
        op.drop_table(table)
