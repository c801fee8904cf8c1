"""Alembic migrations of the conversation store (``voice_agent.store``), shipped inside the package.

``ConversationStore.open`` upgrades a database to the newest revision at start, with a configuration built in code
(``store.migrations_config``: no alembic.ini). A new revision, after changing the models in ``store.py``:

    cd frontend && python -c "from alembic import command; from voice_agent.store import migrations_config; \\
        command.revision(migrations_config(url='sqlite:////tmp/head.db'), 'what changed', autogenerate=True)"

against a database at the current head (``command.upgrade(..., 'head')`` first). Revisions never import the models:
each states its own tables, so an old revision still runs after the models have moved on.
"""
