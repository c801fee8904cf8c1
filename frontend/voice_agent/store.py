"""The conversation store: every finished turn of the page with its audio, and the transcripts of uploaded recordings.

Where things are kept:
- Rows in a SQL database through SQLAlchemy 2: by default the SQLite file ``<data dir>/voice-agent.db``
  (``FRONTEND_DATA_DIR``, default ``$VOICE_AGENT_CACHE`` or ~/.cache/voice-agent); ``FRONTEND_DATABASE_URL`` (a
  SQLAlchemy URL, e.g. ``postgresql+psycopg://user:password@host/voice``) points the same code at PostgreSQL.
- Audio as files, never in the database: ``<data dir>/conversations/<conversation id>/<turn id>-question.<ext>`` (the
  user's recording as sent, its extension from the uploaded file name) and ``<turn id>-reply.wav`` (the reply as WAV).
- The schema belongs to Alembic (``voice_agent/migrations``, shipped in the package); ``ConversationStore.open``
  upgrades the database to the newest revision before anything else, under a lock, so two processes starting at
  once on an empty database migrate it once.

Shapes and units: ids are 32 lower-case hex characters (uuid4); every stored time is a timezone-aware ``datetime`` in
UTC, except ``Turn.started_at``, seconds since the epoch as in ``conversation.Turn``; timings are milliseconds
(``Turn.timings_ms``); ``duration_s`` is seconds; ``segments`` are JSON objects as the STT service's ``verbose_json``
segments (``start`` and ``end`` in s, ``text``).

Consistency: a turn is one transaction. Its audio is written to temporary files, the row committed, then the files
renamed into place; if anything before the commit fails, the temporary files are removed and nothing of the turn
remains. Deleting a conversation deletes its rows (turns by ``ON DELETE CASCADE``) and then its audio directory.

Concurrency: one ``ConversationStore`` per process, shared by its threads (each call uses its own session). SQLite
runs in WAL mode with a busy timeout (``SQLITE_BUSY_TIMEOUT_S``) and every transaction starts with ``BEGIN IMMEDIATE``,
so writers from other threads or processes wait for each other instead of failing with "database is locked"; on
PostgreSQL a turn locks its conversation's row.

Errors: ``ConversationNotFound`` (a ``LookupError``) when an id names no conversation, or is not an id at all;
``ValueError`` for an empty title; ``sqlalchemy.exc.SQLAlchemyError`` when the database fails (unreachable, locked for
longer than the busy timeout); ``OSError`` when an audio file cannot be written. A failed call leaves nothing half
written.
"""

from __future__ import annotations

import hashlib
import logging
import re
import shutil
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, ClassVar

from alembic import command
from alembic.config import Config
from sqlalchemy import (
    JSON,
    URL,
    DateTime,
    Dialect,
    Engine,
    ForeignKey,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    create_engine,
    delete,
    event,
    func,
    make_url,
    or_,
    select,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker
from sqlalchemy.types import TypeDecorator

from .conversation import Turn

if TYPE_CHECKING:
    from .config import FrontendSettings

logger = logging.getLogger(__name__)

DATABASE_FILE_NAME = "voice-agent.db"
AUDIO_DIR_NAME = "conversations"
MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
SQLITE_BUSY_TIMEOUT_S = 30.0
TITLE_MAX_CHARS = 200  # the column; a title made from the first question is shorter
AUTO_TITLE_MAX_CHARS = 60
UNTITLED = "Untitled conversation"
MIGRATION_LOCK_ID = 0x766F696365  # PostgreSQL advisory lock held while migrating ("voice")
ID_PATTERN = re.compile(r"[0-9a-f]{32}")
AUDIO_SUFFIX_PATTERN = re.compile(r"\.[a-z0-9]{1,8}")


class ConversationNotFound(LookupError):
    """No stored conversation has this id (it was deleted, or the id is not one of the store's)."""


# ----- the schema (the ORM's view of it; Alembic's revisions create it) -----------------------------------------


class UtcDateTime(TypeDecorator[datetime]):
    """A timezone-aware datetime stored in UTC. SQLite keeps no zone, so what it returns is read as UTC."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"a stored time needs a time zone: {value!r}")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(
        naming_convention={
            "ix": "ix_%(column_0_label)s",
            "uq": "uq_%(table_name)s_%(column_0_N_name)s",
            "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
            "pk": "pk_%(table_name)s",
        }
    )
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UtcDateTime()}


class ConversationRow(Base):
    __tablename__ = "conversations"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    title: Mapped[str] = mapped_column(String(TITLE_MAX_CHARS))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime] = mapped_column(index=True)


class TurnRow(Base):
    __tablename__ = "turns"
    __table_args__ = (UniqueConstraint("conversation_id", "position"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    conversation_id: Mapped[str] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"))
    position: Mapped[int]
    """0 for the conversation's first turn, then 1, 2, ..."""
    started_at: Mapped[datetime]
    transcript: Mapped[str] = mapped_column(Text)
    reply: Mapped[str] = mapped_column(Text)
    interrupted: Mapped[bool]
    timings_ms: Mapped[dict[str, float | None]] = mapped_column(JSON)
    voice: Mapped[str | None] = mapped_column(String(200))
    language: Mapped[str | None] = mapped_column(String(16))
    temperature: Mapped[float | None]
    max_tokens: Mapped[int | None]
    mode: Mapped[str | None] = mapped_column(String(16))
    system_prompt: Mapped[str | None] = mapped_column(Text)
    question_audio_name: Mapped[str | None] = mapped_column(Text)
    """The user's recording's file name as it came (uploaded or recorded), for the exports."""
    question_audio_file: Mapped[str | None] = mapped_column(Text)
    """Path of the user's recording under the audio directory (``<conversation id>/<turn id>-question.<ext>``)."""
    reply_audio_file: Mapped[str | None] = mapped_column(Text)
    """Path of the reply's WAV under the audio directory (``<conversation id>/<turn id>-reply.wav``)."""


class TranscriptRow(Base):
    __tablename__ = "transcripts"

    id: Mapped[int] = mapped_column(primary_key=True)
    content_sha256: Mapped[str] = mapped_column(String(64), index=True)
    file_name: Mapped[str] = mapped_column(Text)
    language: Mapped[str | None] = mapped_column(String(16))
    duration_s: Mapped[float | None]
    text: Mapped[str] = mapped_column(Text)
    segments: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(index=True)


# ----- what the store hands out ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class TurnSettings:
    """How a turn was made: the page's settings when it finished (None: not known)."""

    voice: str | None = None
    language: str | None = None
    """ISO-639-1 code the user's speech was transcribed as; None = detected."""
    temperature: float | None = None
    max_tokens: int | None = None
    mode: str | None = None
    """The page's mode: ``hands-free`` or ``push-to-talk`` (a typed turn has the mode it was typed in)."""
    system_prompt: str | None = None
    """None = the LLM service's default prompt."""


@dataclass(frozen=True)
class ConversationSummary:
    id: str
    title: str
    created_at: datetime
    updated_at: datetime
    """When its latest turn was stored, or it was renamed (UTC)."""
    turn_count: int


@dataclass(frozen=True)
class StoredTranscript:
    id: int
    content_sha256: str
    """sha256 of the uploaded file's bytes, 64 hex characters (``content_sha256``)."""
    file_name: str
    language: str | None
    duration_s: float | None
    text: str
    segments: list[dict[str, Any]]
    created_at: datetime


def content_sha256(data: bytes) -> str:
    """The key a transcript is found by: the sha256 of the uploaded file's bytes, 64 lower-case hex characters."""
    return hashlib.sha256(data).hexdigest()


def title_of(question: str) -> str:
    """A conversation's title made from its first question: one line, cut at a word to at most
    ``AUTO_TITLE_MAX_CHARS`` characters with an ellipsis; ``UNTITLED`` for an empty question."""
    words = " ".join(question.split())
    if len(words) <= AUTO_TITLE_MAX_CHARS:
        return words or UNTITLED
    space = words.rfind(" ", 0, AUTO_TITLE_MAX_CHARS)  # the ellipsis takes the place of that space
    cut = words[:space] if space > 0 else words[: AUTO_TITLE_MAX_CHARS - 1]
    return cut.rstrip(" ,;:.-") + "…"


def sqlite_url(data_dir: Path) -> URL:
    return URL.create("sqlite+pysqlite", database=str(data_dir / DATABASE_FILE_NAME))


def _now() -> datetime:
    return datetime.now(UTC)


def _check_id(conversation_id: str) -> str:
    """The id as given, if it can be one of ours; it also names a directory, so nothing else may pass."""
    if not isinstance(conversation_id, str) or not ID_PATTERN.fullmatch(conversation_id):
        raise ConversationNotFound(conversation_id)
    return conversation_id


def _question_suffix(file_name: str | None) -> str:
    suffix = PurePosixPath(file_name or "").suffix.lower()
    return suffix if AUDIO_SUFFIX_PATTERN.fullmatch(suffix) else ".bin"


def _sqlite_engine(url: URL) -> Engine:
    """A SQLite engine safe for several threads and processes: WAL, a busy timeout, foreign keys on, and every
    transaction opened with ``BEGIN IMMEDIATE`` (a deferred one that reads and then writes fails at once with
    "database is locked" when another writer came first; an immediate one waits for the lock up front)."""
    engine = create_engine(url)

    @event.listens_for(engine, "connect")
    def _configure(dbapi_connection: Any, connection_record: Any) -> None:
        dbapi_connection.isolation_level = None  # the sqlite3 module's own BEGIN handling off: ours below
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {int(SQLITE_BUSY_TIMEOUT_S * 1000)}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = NORMAL")  # durable across a crash of the process in WAL mode
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def migrations_config(connection: Any | None = None, url: str | None = None) -> Config:
    """Alembic's configuration, built in code (no alembic.ini): the package's migrations, and the open
    ``connection`` to migrate or else the ``url``."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if url is not None:
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    config.attributes["connection"] = connection
    return config


def upgrade_to_head(engine: Engine) -> None:
    """Bring the database to Alembic's newest revision; nothing to do when it is there. One transaction, under a
    lock (SQLite: ``BEGIN IMMEDIATE``; PostgreSQL: an advisory lock), so concurrent starts migrate once."""
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:lock)"), {"lock": MIGRATION_LOCK_ID})
        command.upgrade(migrations_config(connection), "head")


# ----- the store -------------------------------------------------------------------------------------------------


class ConversationStore:
    """Conversations and transcripts in one database, audio under ``audio_dir``. Open with ``open`` or
    ``from_settings``; thread-safe; ``close`` releases the database connections."""

    def __init__(self, engine: Engine, audio_dir: Path) -> None:
        self.engine = engine
        self.audio_dir = audio_dir
        self._sessions = sessionmaker(engine, expire_on_commit=False)

    @classmethod
    def open(cls, url: str | URL, audio_dir: Path) -> ConversationStore:
        """The store at the SQLAlchemy ``url`` with audio under ``audio_dir``, its schema upgraded to the newest
        revision. Raises ``SQLAlchemyError`` when the database cannot be reached or migrated."""
        url = make_url(url)
        if url.get_backend_name() == "sqlite":
            if url.database and url.database != ":memory:":
                Path(url.database).parent.mkdir(parents=True, exist_ok=True)
            engine = _sqlite_engine(url)
        else:
            engine = create_engine(url, pool_pre_ping=True)
        audio_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        try:
            upgrade_to_head(engine)
        except BaseException:
            engine.dispose()
            raise
        logger.info("conversation store at %s, audio in %s", engine.url, audio_dir)
        return cls(engine, audio_dir)

    @classmethod
    def from_settings(cls, settings: FrontendSettings) -> ConversationStore:
        """``FRONTEND_DATABASE_URL`` or SQLite in ``FRONTEND_DATA_DIR``; audio under ``<data dir>/conversations``."""
        url = settings.database_url.get_secret_value() if settings.database_url else sqlite_url(settings.data_dir)
        return cls.open(url, settings.data_dir / AUDIO_DIR_NAME)

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def _transaction(self) -> Iterator[Session]:
        with self._sessions.begin() as session:
            yield session

    # ----- conversations -----

    def create_conversation(self, title: str = "") -> ConversationSummary:
        """A new, empty conversation. An empty ``title`` is filled from the first turn's question (``title_of``)."""
        now = _now()
        title = " ".join(title.split())[:TITLE_MAX_CHARS]
        row = ConversationRow(id=uuid.uuid4().hex, title=title, created_at=now, updated_at=now)
        with self._transaction() as session:
            session.add(row)
        return ConversationSummary(row.id, row.title or UNTITLED, now, now, 0)

    def add_turn(self, conversation_id: str, turn: Turn, settings: TurnSettings | None = None) -> str:
        """Store ``turn`` as the conversation's next one, with its audio (``turn.user_audio`` when there is one,
        ``turn.reply_wav`` when not empty) and the ``settings`` it was made with; returns the turn's id.

        Raises ``ConversationNotFound`` (also when the conversation is deleted meanwhile), ``SQLAlchemyError`` or
        ``OSError``; then no row and no audio file of the turn remain."""
        _check_id(conversation_id)
        settings = settings or TurnSettings()
        turn_id = uuid.uuid4().hex
        folder = self.audio_dir / conversation_id
        staged: list[tuple[Path, Path]] = []  # (temporary, final)
        made_folder = False
        try:
            with self._transaction() as session:
                # the lock (SQLite: the whole database; PostgreSQL: this row) keeps a delete out until the commit
                conversation = session.get(ConversationRow, conversation_id, with_for_update=True)
                if conversation is None:
                    raise ConversationNotFound(conversation_id)
                position = session.scalar(
                    select(func.coalesce(func.max(TurnRow.position) + 1, 0)).where(
                        TurnRow.conversation_id == conversation_id
                    )
                )
                made_folder = not folder.exists()
                folder.mkdir(parents=True, exist_ok=True, mode=0o700)
                question_file = reply_file = None
                if turn.user_audio:
                    question_file = f"{turn_id}-question{_question_suffix(turn.user_audio_name)}"
                    _stage(staged, folder / question_file, turn.user_audio)
                if turn.reply_wav:
                    reply_file = f"{turn_id}-reply.wav"
                    _stage(staged, folder / reply_file, turn.reply_wav)
                session.add(
                    TurnRow(
                        id=turn_id,
                        conversation_id=conversation_id,
                        position=position,
                        started_at=datetime.fromtimestamp(turn.started_at, UTC),
                        transcript=turn.transcript,
                        reply=turn.reply,
                        interrupted=turn.interrupted,
                        timings_ms=dict(turn.timings_ms),
                        voice=settings.voice,
                        language=settings.language,
                        temperature=settings.temperature,
                        max_tokens=settings.max_tokens,
                        mode=settings.mode,
                        system_prompt=settings.system_prompt,
                        question_audio_name=turn.user_audio_name if turn.user_audio else None,
                        question_audio_file=f"{conversation_id}/{question_file}" if question_file else None,
                        reply_audio_file=f"{conversation_id}/{reply_file}" if reply_file else None,
                    )
                )
                if not conversation.title:
                    conversation.title = title_of(turn.transcript or turn.reply)
                conversation.updated_at = _now()
        except BaseException:
            for temporary, _ in staged:
                temporary.unlink(missing_ok=True)
            if made_folder:
                with suppress(OSError):
                    folder.rmdir()  # only if empty: nothing of another turn is lost
            raise
        for temporary, final in staged:
            try:
                temporary.replace(final)
            except OSError:  # the conversation was deleted right after the commit: its folder went with it
                logger.warning("audio of turn %s not kept: %s gone", turn_id, final.parent, exc_info=True)
        return turn_id

    def list_conversations(self, limit: int | None = None) -> list[ConversationSummary]:
        """Conversations, the latest updated first (``limit`` of them; None = all), with their number of turns."""
        counts = (
            select(TurnRow.conversation_id, func.count().label("turn_count"))
            .group_by(TurnRow.conversation_id)
            .subquery()
        )
        query = (
            select(ConversationRow, func.coalesce(counts.c.turn_count, 0))
            .outerjoin(counts, counts.c.conversation_id == ConversationRow.id)
            .order_by(ConversationRow.updated_at.desc(), ConversationRow.created_at.desc(), ConversationRow.id)
            .limit(limit)
        )
        with self._transaction() as session:
            rows = session.execute(query).all()
        return [_summary(row, count) for row, count in rows]

    def get_conversation(self, conversation_id: str) -> ConversationSummary:
        _check_id(conversation_id)
        with self._transaction() as session:
            row = session.get(ConversationRow, conversation_id)
            if row is None:
                raise ConversationNotFound(conversation_id)
            count = session.scalar(select(func.count()).where(TurnRow.conversation_id == conversation_id)) or 0
        return _summary(row, count)

    def load_turns(self, conversation_id: str) -> list[Turn]:
        """The conversation's turns, oldest first, as the page keeps them (so ``history_of`` and the exports work on
        them). An audio file that went missing (removed by hand) loads as no audio, with a warning."""
        rows = self._turn_rows(conversation_id)
        return [
            Turn(
                transcript=row.transcript,
                reply=row.reply,
                reply_wav=self._read_audio(row.reply_audio_file) or b"",
                timings_ms=dict(row.timings_ms),
                user_audio=self._read_audio(row.question_audio_file),
                user_audio_name=row.question_audio_name if row.question_audio_file else None,
                started_at=row.started_at.timestamp(),
                interrupted=row.interrupted,
            )
            for row in rows
        ]

    def turn_settings(self, conversation_id: str) -> list[TurnSettings]:
        """The settings each of the conversation's turns was made with, oldest first (as ``load_turns``)."""
        return [
            TurnSettings(row.voice, row.language, row.temperature, row.max_tokens, row.mode, row.system_prompt)
            for row in self._turn_rows(conversation_id)
        ]

    def _turn_rows(self, conversation_id: str) -> list[TurnRow]:
        """The conversation's turn rows, oldest first; ConversationNotFound for an unknown id."""
        _check_id(conversation_id)
        with self._transaction() as session:
            if session.get(ConversationRow, conversation_id) is None:
                raise ConversationNotFound(conversation_id)
            return list(
                session.scalars(
                    select(TurnRow).where(TurnRow.conversation_id == conversation_id).order_by(TurnRow.position)
                ).all()
            )

    def rename_conversation(self, conversation_id: str, title: str) -> None:
        """A new title (surrounding space stripped, cut to ``TITLE_MAX_CHARS``); ValueError when empty."""
        _check_id(conversation_id)
        title = " ".join(title.split())[:TITLE_MAX_CHARS]
        if not title:
            raise ValueError("a conversation's title cannot be empty")
        with self._transaction() as session:
            row = session.get(ConversationRow, conversation_id, with_for_update=True)
            if row is None:
                raise ConversationNotFound(conversation_id)
            row.title, row.updated_at = title, _now()

    def delete_conversation(self, conversation_id: str) -> None:
        """Delete the conversation, its turns and its audio directory."""
        _check_id(conversation_id)
        with self._transaction() as session:
            if session.get(ConversationRow, conversation_id, with_for_update=True) is None:
                raise ConversationNotFound(conversation_id)
            # the foreign key's ON DELETE CASCADE would do it; explicit, so a database without one is no different
            session.execute(delete(TurnRow).where(TurnRow.conversation_id == conversation_id))
            session.execute(delete(ConversationRow).where(ConversationRow.id == conversation_id))
        shutil.rmtree(self.audio_dir / conversation_id, ignore_errors=True)

    def _read_audio(self, relative: str | None) -> bytes | None:
        if not relative:
            return None
        try:
            return (self.audio_dir / relative).read_bytes()
        except FileNotFoundError:
            logger.warning("audio file %s is missing from %s", relative, self.audio_dir)
            return None

    # ----- transcripts -----

    def find_transcript(self, sha256: str) -> StoredTranscript | None:
        """The newest transcript of the file whose bytes hash to ``sha256`` (``content_sha256``), else None."""
        with self._transaction() as session:
            row = session.scalars(
                select(TranscriptRow)
                .where(TranscriptRow.content_sha256 == sha256)
                .order_by(TranscriptRow.created_at.desc(), TranscriptRow.id.desc())
                .limit(1)
            ).first()
        return _transcript(row) if row is not None else None

    def save_transcript(
        self,
        sha256: str,
        file_name: str,
        text: str,
        *,
        language: str | None = None,
        duration_s: float | None = None,
        segments: Sequence[dict[str, Any]] = (),
    ) -> StoredTranscript:
        """Keep the transcript of a file: ``sha256`` of its bytes, its name, the ``text``, the ``language`` it was
        transcribed in (ISO-639-1), its ``duration_s`` (s) and the ``segments`` (JSON objects, times in s)."""
        if not re.fullmatch(r"[0-9a-f]{64}", sha256):
            raise ValueError(f"not a sha256 in hex: {sha256!r}")
        row = TranscriptRow(
            content_sha256=sha256,
            file_name=file_name,
            language=language,
            duration_s=duration_s,
            text=text,
            segments=list(segments),
            created_at=_now(),
        )
        with self._transaction() as session:
            session.add(row)
        return _transcript(row)

    def search_transcripts(self, query: str = "", limit: int | None = 50) -> list[StoredTranscript]:
        """Transcripts whose file name or text contains ``query`` (case-insensitive; ``%`` and ``_`` are plain
        characters), the newest first; an empty query lists them all."""
        select_rows = select(TranscriptRow)
        if query:
            select_rows = select_rows.where(
                or_(
                    TranscriptRow.file_name.icontains(query, autoescape=True),
                    TranscriptRow.text.icontains(query, autoescape=True),
                )
            )
        select_rows = select_rows.order_by(TranscriptRow.created_at.desc(), TranscriptRow.id.desc()).limit(limit)
        with self._transaction() as session:
            rows = session.scalars(select_rows).all()
        return [_transcript(row) for row in rows]

    def delete_transcript(self, transcript_id: int) -> bool:
        """Delete one transcript; False when there was none with this id."""
        with self._transaction() as session:
            row = session.get(TranscriptRow, transcript_id)
            if row is None:
                return False
            session.delete(row)
        return True


def _stage(staged: list[tuple[Path, Path]], final: Path, data: bytes) -> None:
    """``data`` written beside ``final`` under a temporary name, renamed into place after the commit; listed in
    ``staged`` before it is written, so a write that fails half-way is removed too."""
    temporary = final.with_name(f".{final.name}.{uuid.uuid4().hex[:8]}.tmp")
    staged.append((temporary, final))
    temporary.write_bytes(data)


def _summary(row: ConversationRow, turn_count: int) -> ConversationSummary:
    return ConversationSummary(row.id, row.title or UNTITLED, row.created_at, row.updated_at, turn_count)


def _transcript(row: TranscriptRow) -> StoredTranscript:
    return StoredTranscript(
        id=row.id,
        content_sha256=row.content_sha256,
        file_name=row.file_name,
        language=row.language,
        duration_s=row.duration_s,
        text=row.text,
        segments=list(row.segments),
        created_at=row.created_at,
    )
