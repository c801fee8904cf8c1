"""The conversation store as the Streamlit pages open it: once per process, shared by every browser session.

Used by the Conversation page (``frontend/app.py``) and the Transcribe page (``frontend/transcribe_page.py``), so both
hold the same ``ConversationStore`` (one per process, as ``voice_agent.store`` asks).
"""

from __future__ import annotations

import logging

import streamlit as st
from sqlalchemy.exc import SQLAlchemyError

from .config import get_settings
from .store import ConversationStore

logger = logging.getLogger(__name__)


@st.cache_resource(show_spinner=False, on_release=ConversationStore.close)
def get_store() -> ConversationStore:
    """The conversation store (``FRONTEND_DATABASE_URL`` or SQLite in ``FRONTEND_DATA_DIR``), opened and migrated once
    per process and shared by every browser session."""
    return ConversationStore.from_settings(get_settings())


def conversation_store() -> ConversationStore | None:
    """The store, or None when conversations are not kept (``FRONTEND_STORE_CONVERSATIONS=false``) or it cannot be
    opened (then the page says so once and goes on without it; a new browser session tries again)."""
    if not get_settings().store_conversations or st.session_state.get("store_unavailable"):
        return None
    try:
        return get_store()
    except (SQLAlchemyError, OSError) as err:
        logger.exception("the conversation store cannot be opened")
        st.session_state.store_unavailable = str(err)
        return None
