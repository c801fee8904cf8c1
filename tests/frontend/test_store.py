"""The conversation store on a real SQLite file in tmp_path, and the same round trips on a real PostgreSQL server
the tests start themselves (skipped, with the reason, where PostgreSQL's binaries are not installed).

Concurrency is tested as it happens: two threads, and two processes, writing to one database at once.
"""

from __future__ import annotations

import io
import json
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
import wave
import zipfile
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import event
from sqlalchemy.exc import OperationalError

from bench.processes import free_port
from voice_agent.conversation import Turn, history_of, to_json, to_markdown, to_zip
from voice_agent.playback import pcm_to_wav
from voice_agent.store import (
    AUTO_TITLE_MAX_CHARS,
    MIGRATIONS_DIR,
    UNTITLED,
    Base,
    ConversationNotFound,
    ConversationStore,
    TurnSettings,
    content_sha256,
    migrations_config,
    sqlite_url,
    title_of,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
SETTINGS = TurnSettings(voice="alloy", language="en", temperature=0.7, max_tokens=64, mode="push-to-talk")


def tone_wav(seconds: float, rate_hz: int = 22_050) -> bytes:
    """A real WAV file: a 440 Hz tone, PCM16 mono."""
    samples = np.sin(2 * np.pi * 440 * np.arange(int(seconds * rate_hz)) / rate_hz)
    return pcm_to_wav((samples * 8000).astype("<i2").tobytes(), rate_hz)


def make_turn(number: int, *, question_audio: bool = True) -> Turn:
    return Turn(
        transcript=f"Question number {number}: what is the capital of France?",
        reply=f"Reply number {number}: Paris.",
        reply_wav=tone_wav(0.2),
        timings_ms={"stt_ms": 120.5 + number, "llm_ttft_ms": 80.0, "voice_to_voice_ms": 412.0, "tts_ttfa_ms": None},
        user_audio=tone_wav(0.1, 16_000) if question_audio else None,
        user_audio_name=f"question-{number}.wav" if question_audio else None,
    )


def audio_files(store: ConversationStore) -> list[str]:
    """Every file under the store's audio directory, temporary ones included, relative and sorted."""
    return sorted(str(path.relative_to(store.audio_dir)) for path in store.audio_dir.rglob("*") if path.is_file())


# ----- a PostgreSQL server of the tests' own ----------------------------------------------------------------------


def postgres_bin() -> Path | None:
    """The directory of PostgreSQL's server binaries (Debian keeps them out of PATH), or None."""
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).resolve().parent
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))
    return versions[-1].parent if versions else None


@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A PostgreSQL server started with initdb + pg_ctl on a free 127.0.0.1 port; yields its base URL (no database).

    The server refuses to run as root: as root it runs as the ``postgres`` user, in a directory under /tmp that user
    can reach (pytest's temporary directories are root's alone)."""
    binaries = postgres_bin()
    if binaries is None:
        pytest.skip("PostgreSQL's server binaries (initdb, pg_ctl) are not installed: apt-get install postgresql")
    pytest.importorskip("psycopg", reason="the psycopg driver is not installed: pip install 'psycopg[binary]'")
    user: str | None = None
    if os.geteuid() == 0:
        try:
            owner = pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root and there is no postgres user to run the server as")
        user = "postgres"
        base = Path(tempfile.mkdtemp(prefix="voice-agent-postgres-"))
        os.chown(base, owner.pw_uid, owner.pw_gid)
    else:
        base = tmp_path_factory.mktemp("postgres")
    data, port = base / "data", free_port()

    def run(*command: str | Path) -> None:
        done = subprocess.run(command, user=user, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            pytest.fail(f"{' '.join(map(str, command))} failed: {done.stderr or done.stdout}")

    options = f"-p {port} -k {base} -c listen_addresses=127.0.0.1 -c fsync=off"
    try:
        run(binaries / "initdb", "-D", data, "-U", "voice", "--auth=trust", "-E", "UTF8", "--no-sync")
        run(binaries / "pg_ctl", "-D", data, "-o", options, "-l", base / "server.log", "-w", "-t", "60", "start")
        yield f"postgresql+psycopg://voice@127.0.0.1:{port}"
    finally:
        subprocess.run([binaries / "pg_ctl", "-D", data, "-m", "immediate", "stop"], user=user, capture_output=True)
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def postgres_database(postgres_server: str) -> Iterator[str]:
    """The URL of a new, empty database on ``postgres_server``, dropped after the test."""
    name = f"test_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(f"{postgres_server}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.exec_driver_sql(f"CREATE DATABASE {name}")
    try:
        yield f"{postgres_server}/{name}"
    finally:
        with admin.connect() as connection:
            connection.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The store's database: a SQLite file in tmp_path, then a fresh database on the tests' PostgreSQL server."""
    if request.param == "sqlite":
        return str(sqlite_url(tmp_path))
    return str(request.getfixturevalue("postgres_database"))


@pytest.fixture
def open_store(tmp_path: Path) -> Iterator[Callable[[str], ConversationStore]]:
    """``open_store(url)``: the store at ``url`` with audio in tmp_path, closed after the test."""
    opened: list[ConversationStore] = []

    def open_(url: str) -> ConversationStore:
        opened.append(ConversationStore.open(url, tmp_path / "conversations"))
        return opened[-1]

    yield open_
    for store in opened:
        store.close()


@pytest.fixture
def store(open_store: Callable[[str], ConversationStore], database_url: str) -> ConversationStore:
    return open_store(database_url)


# ----- round trips ------------------------------------------------------------------------------------------------


def test_add_list_load_rename_delete_round_trip(store: ConversationStore) -> None:
    first = store.create_conversation()
    turns = [make_turn(1), make_turn(2, question_audio=False), make_turn(3)]
    turns[2].interrupted, turns[2].reply, turns[2].reply_wav = True, "Reply number 3: Pa", b""
    settings = [SETTINGS, TurnSettings(voice="nova", mode="hands-free"), SETTINGS]
    turn_ids = [store.add_turn(first.id, turn, each) for turn, each in zip(turns, settings, strict=True)]
    time.sleep(0.01)
    second = store.create_conversation("A later one")
    store.add_turn(second.id, make_turn(9))

    # listed: the latest updated first, titles from the first question (cut at a word), UTC dates, turn counts
    listed = store.list_conversations()
    assert [(c.id, c.turn_count) for c in listed] == [(second.id, 1), (first.id, 3)]
    assert listed[1].title == title_of(turns[0].transcript) == "Question number 1: what is the capital of France?"
    assert listed[0].title == "A later one"
    now = datetime.now(UTC)
    for summary in listed:
        assert summary.created_at.tzinfo is not None and summary.created_at.utcoffset() == timedelta(0)
        assert now - timedelta(minutes=1) < summary.created_at <= summary.updated_at <= now
    assert store.list_conversations(limit=1) == listed[:1]
    assert store.get_conversation(first.id) == listed[1]

    # the audio is files: the question as sent (its name's extension), the reply as WAV; no temporary file is left
    assert audio_files(store) == sorted(
        [
            f"{first.id}/{turn_ids[0]}-question.wav",
            f"{first.id}/{turn_ids[0]}-reply.wav",
            f"{first.id}/{turn_ids[1]}-reply.wav",
            f"{first.id}/{turn_ids[2]}-question.wav",
            *(f"{second.id}/{name}" for name in os.listdir(store.audio_dir / second.id)),
        ]
    )
    assert (store.audio_dir / first.id / f"{turn_ids[0]}-reply.wav").read_bytes() == turns[0].reply_wav
    with wave.open(str(store.audio_dir / first.id / f"{turn_ids[0]}-question.wav")) as question:
        assert question.getframerate() == 16_000 and question.getnframes() == 1_600

    # loaded: the same turns, in order, audio included
    loaded = store.load_turns(first.id)
    assert len(loaded) == 3
    for original, back in zip(turns, loaded, strict=True):
        assert (back.transcript, back.reply) == (original.transcript, original.reply)
        assert back.interrupted == original.interrupted
        assert back.timings_ms == original.timings_ms
        assert back.reply_wav == original.reply_wav
        assert back.user_audio == original.user_audio and back.user_audio_name == original.user_audio_name
        assert back.started_at == pytest.approx(original.started_at, abs=1e-3)
    assert history_of(loaded) == history_of(turns)
    assert store.turn_settings(first.id) == settings

    store.rename_conversation(first.id, "  Capitals   of Europe ")
    assert store.get_conversation(first.id).title == "Capitals of Europe"
    assert store.list_conversations()[0].id == first.id  # renaming counts as an update
    with pytest.raises(ValueError, match="empty"):
        store.rename_conversation(first.id, "   ")

    store.delete_conversation(first.id)
    assert [c.id for c in store.list_conversations()] == [second.id]
    assert not (store.audio_dir / first.id).exists()
    assert all(name.startswith(second.id) for name in audio_files(store))
    for call in (store.load_turns, store.get_conversation, store.delete_conversation, store.turn_settings):
        with pytest.raises(ConversationNotFound):
            call(first.id)
    with pytest.raises(ConversationNotFound):
        store.add_turn(first.id, make_turn(4))
    assert not (store.audio_dir / first.id).exists()  # the refused turn made no folder
    with store.engine.connect() as connection:
        assert connection.scalar(sa.text("SELECT count(*) FROM turns")) == 1


def test_an_id_that_is_not_one_of_ours_is_not_found(store: ConversationStore, tmp_path: Path) -> None:
    """An id names a directory under the store; anything but 32 hex characters is refused before any file access."""
    victim = tmp_path / "precious"
    victim.mkdir()
    for bad in ("../precious", "..", "", "A" * 32, str(victim)):
        with pytest.raises(ConversationNotFound):
            store.delete_conversation(bad)
        with pytest.raises(ConversationNotFound):
            store.add_turn(bad, make_turn(1))
    assert victim.is_dir()


def test_a_missing_audio_file_loads_as_no_audio(store: ConversationStore) -> None:
    conversation = store.create_conversation()
    turn_id = store.add_turn(conversation.id, make_turn(1))
    (store.audio_dir / conversation.id / f"{turn_id}-reply.wav").unlink()
    [turn] = store.load_turns(conversation.id)
    assert turn.reply_wav == b"" and turn.user_audio == make_turn(1).user_audio


def test_titles_come_from_the_first_question() -> None:
    assert title_of("  What   is\nthe time? ") == "What is the time?"
    long = "Tell me a long story about a dragon, a knight, a princess and a castle in the mountains far away"
    title = title_of(long)
    assert title.endswith("…") and len(title) <= AUTO_TITLE_MAX_CHARS
    assert long.startswith(title[:-1]) and long[len(title) - 1] == " "  # cut at a word
    assert title_of("") == UNTITLED


def test_exports_work_on_a_loaded_conversation(store: ConversationStore) -> None:
    conversation = store.create_conversation()
    turns = [make_turn(1), make_turn(2, question_audio=False)]
    for turn in turns:
        store.add_turn(conversation.id, turn)
    loaded = store.load_turns(conversation.id)

    assert to_markdown(loaded) == to_markdown(turns)
    exported, original = json.loads(to_json(loaded)), json.loads(to_json(turns))
    for back, turn in zip(exported["turns"], original["turns"], strict=True):  # times are kept to the microsecond
        assert back.pop("started_at") == pytest.approx(turn.pop("started_at"), abs=1e-6)
    assert exported == original
    with zipfile.ZipFile(io.BytesIO(to_zip(loaded))) as archive:
        assert sorted(archive.namelist()) == [
            "conversation.json",
            "conversation.md",
            "turn-01-agent.wav",
            "turn-01-user-question-1.wav",
            "turn-02-agent.wav",
        ]
        assert archive.read("turn-01-user-question-1.wav") == turns[0].user_audio
        assert archive.read("turn-02-agent.wav") == turns[1].reply_wav
        assert "**You:** Question number 2" in archive.read("conversation.md").decode()


# ----- the schema: Alembic from the first revision ----------------------------------------------------------------


def test_the_migration_creates_the_schema_on_an_empty_database_and_is_idempotent(
    open_store: Callable[[str], ConversationStore], database_url: str
) -> None:
    head = ScriptDirectory.from_config(migrations_config()).get_current_head()
    assert head == "0001" and (MIGRATIONS_DIR / "versions" / "0001_first_schema.py").is_file()

    store = open_store(database_url)
    with store.engine.connect() as connection:
        tables = set(sa.inspect(connection).get_table_names())
        assert tables == {"alembic_version", "conversations", "turns", "transcripts"}
        assert MigrationContext.configure(connection).get_current_revision() == head
        # the revision creates exactly what the models describe: autogenerate finds nothing to change
        compared = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(compared, Base.metadata) == []
    conversation = store.create_conversation()
    store.add_turn(conversation.id, make_turn(1))
    store.close()

    again = open_store(database_url)  # the second start: nothing to migrate, nothing lost
    with again.engine.connect() as connection:
        assert MigrationContext.configure(connection).get_current_revision() == head
        assert connection.scalar(sa.text("SELECT count(*) FROM alembic_version")) == 1
    assert [c.turn_count for c in again.list_conversations()] == [1]


def test_sqlite_runs_in_wal_mode_with_a_busy_timeout(tmp_path: Path) -> None:
    store = ConversationStore.open(sqlite_url(tmp_path), tmp_path / "conversations")
    try:
        assert (tmp_path / "voice-agent.db").is_file()
        with store.engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 10_000
            assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    finally:
        store.close()


# ----- nothing half-written ---------------------------------------------------------------------------------------


def test_a_turn_whose_commit_fails_leaves_no_audio_file_behind(store: ConversationStore) -> None:
    conversation = store.create_conversation()
    kept = store.add_turn(conversation.id, make_turn(1))
    before = audio_files(store)

    def refuse(connection: sa.Connection) -> None:
        raise OperationalError("COMMIT", {}, Exception("disk I/O error"))

    event.listen(store.engine, "commit", refuse)
    try:
        with pytest.raises(OperationalError, match="disk I/O error"):
            store.add_turn(conversation.id, make_turn(2))
    finally:
        event.remove(store.engine, "commit", refuse)
    assert audio_files(store) == before  # not the new turn's audio, nor its temporary files
    assert [turn.transcript for turn in store.load_turns(conversation.id)] == [make_turn(1).transcript]

    # a new conversation whose first turn fails leaves no folder either
    fresh = store.create_conversation()
    event.listen(store.engine, "commit", refuse)
    try:
        with pytest.raises(OperationalError):
            store.add_turn(fresh.id, make_turn(3))
    finally:
        event.remove(store.engine, "commit", refuse)
    assert not (store.audio_dir / fresh.id).exists()

    store.add_turn(conversation.id, make_turn(3))  # the store goes on after a failure
    assert len(store.load_turns(conversation.id)) == 2 and kept


# ----- concurrency ------------------------------------------------------------------------------------------------

TURNS_EACH = 15


def test_two_threads_adding_turns_at_once_lose_nothing(store: ConversationStore) -> None:
    """Two browser tabs (two threads of the page's process) writing to the same conversation and to their own."""
    shared = store.create_conversation()
    own = [store.create_conversation().id for _ in range(2)]
    start = threading.Barrier(2)
    errors: list[BaseException] = []

    def write(worker: int) -> None:
        try:
            start.wait()
            for number in range(TURNS_EACH):
                store.add_turn(shared.id, make_turn(100 * worker + number))
                store.add_turn(own[worker], make_turn(number))
        except BaseException as err:  # noqa: BLE001 - reported below, with the thread's traceback
            errors.append(err)

    threads = [threading.Thread(target=write, args=(worker,)) for worker in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    loaded = store.load_turns(shared.id)
    assert sorted(turn.transcript for turn in loaded) == sorted(
        make_turn(100 * worker + number).transcript for worker in range(2) for number in range(TURNS_EACH)
    )
    assert all(turn.reply_wav and turn.user_audio for turn in loaded)
    assert [len(store.load_turns(conversation)) for conversation in own] == [TURNS_EACH, TURNS_EACH]
    assert len(audio_files(store)) == 2 * 4 * TURNS_EACH  # question and reply of every turn, no temporary file


WORKER = """
import sys, time
from pathlib import Path
ready, go, url, audio_dir, shared, count, worker = sys.argv[1:]
sys.path.insert(0, {tests!r})
from test_store import make_turn
from voice_agent.store import ConversationStore
Path(ready).touch()
while not Path(go).exists():
    time.sleep(0.005)
store = ConversationStore.open(url, Path(audio_dir))  # an empty database: both processes migrate at once
if shared == "-":
    shared = store.create_conversation().id
own = store.create_conversation().id
for number in range(int(count)):
    store.add_turn(shared, make_turn(100 * int(worker) + number))
    store.add_turn(own, make_turn(number))
print(own)
"""


def run_two_processes(url: str, audio_dir: Path, tmp_path: Path, shared: str) -> list[str]:
    """Two processes started together (each waits for the other to be ready); returns the id each one made."""
    script = WORKER.format(tests=str(Path(__file__).parent))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")])}
    go = tmp_path / "go"
    arguments = [url, str(audio_dir), shared, str(TURNS_EACH)]
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", script, str(tmp_path / f"ready-{worker}"), str(go), *arguments, str(worker)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for worker in range(2)
    ]
    deadline = time.monotonic() + 60
    while not all((tmp_path / f"ready-{worker}").exists() for worker in range(2)):
        assert time.monotonic() < deadline and all(p.poll() is None for p in processes), "a worker did not start"
        time.sleep(0.01)
    go.touch()
    made = []
    for process in processes:
        out, err = process.communicate(timeout=120)
        assert process.returncode == 0, err
        made.append(out.strip())
    return made


def test_two_processes_on_an_empty_database_migrate_once_and_lose_no_turn(
    tmp_path: Path, open_store: Callable[[str], ConversationStore], database_url: str
) -> None:
    """Two page processes (two ``streamlit run``, or a page and a script) starting on the same new database at once,
    then writing to one shared conversation and to one each."""
    audio_dir = tmp_path / "conversations"
    made = run_two_processes(database_url, audio_dir, tmp_path, shared="-")
    store = open_store(database_url)
    counts = {summary.id: summary.turn_count for summary in store.list_conversations()}
    assert len(counts) == 4 and all(counts[own] == TURNS_EACH for own in made)
    # each process made a "shared" conversation of its own here; the next test shares one
    assert sorted(counts.values()) == [TURNS_EACH] * 4


def test_two_processes_adding_turns_to_one_conversation_lose_nothing(
    tmp_path: Path, open_store: Callable[[str], ConversationStore], database_url: str
) -> None:
    store = open_store(database_url)
    shared = store.create_conversation()
    made = run_two_processes(database_url, store.audio_dir, tmp_path, shared=shared.id)
    loaded = store.load_turns(shared.id)
    assert sorted(turn.transcript for turn in loaded) == sorted(
        make_turn(100 * worker + number).transcript for worker in range(2) for number in range(TURNS_EACH)
    )
    assert all(turn.reply_wav and turn.user_audio for turn in loaded)
    assert [len(store.load_turns(own)) for own in made] == [TURNS_EACH, TURNS_EACH]
    assert not [name for name in audio_files(store) if name.endswith(".tmp")]


# ----- transcripts ------------------------------------------------------------------------------------------------


def test_transcripts_are_found_by_content_searched_and_deleted(store: ConversationStore) -> None:
    meeting = b"RIFF....the meeting recording"
    segments = [{"start": 0.0, "end": 2.5, "text": "Welcome to the 100% quarterly review."}]
    saved = store.save_transcript(
        content_sha256(meeting),
        "Meeting_2024.wav",
        "Welcome to the 100% quarterly review.",
        language="en",
        duration_s=2.5,
        segments=segments,
    )
    store.save_transcript(content_sha256(b"other"), "lecture.mp3", "Photosynthesis turns light into sugar.")

    assert content_sha256(meeting) == saved.content_sha256 and len(saved.content_sha256) == 64
    found = store.find_transcript(content_sha256(meeting))
    assert found == saved
    assert found is not None and found.segments == segments and found.duration_s == 2.5 and found.language == "en"
    assert found.created_at.utcoffset() == timedelta(0)
    assert store.find_transcript(content_sha256(b"never uploaded")) is None

    def names(query: str) -> list[str]:
        return [t.file_name for t in store.search_transcripts(query)]

    assert names("QUARTERLY") == ["Meeting_2024.wav"]  # in the text, any case
    assert names("lecture") == ["lecture.mp3"]  # in the file name
    assert names("100%") == ["Meeting_2024.wav"] and names("%") == ["Meeting_2024.wav"]  # % is a character
    assert names("g_2") == ["Meeting_2024.wav"] and names("_") == ["Meeting_2024.wav"]  # and so is _
    assert names("") == ["lecture.mp3", "Meeting_2024.wav"]  # all, the newest first
    assert names("nowhere") == []

    assert store.delete_transcript(saved.id) is True
    assert store.find_transcript(content_sha256(meeting)) is None
    assert store.delete_transcript(saved.id) is False
    with pytest.raises(ValueError, match="sha256"):
        store.save_transcript("not-a-hash", "x.wav", "text")
