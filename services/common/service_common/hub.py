"""Models from the Hugging Face Hub: downloaded once into a cache, with progress, then loaded offline.

``fetch_snapshot`` is the one way a service gets a hub repo (faster-whisper ids, GGUF repos, Parler repos):

1. A complete snapshot already in the cache is used as is, without any network call, so a second start works with
   the network gone (and with ``HF_HUB_OFFLINE=1``). Models are not re-checked for updates: delete the repo's
   folder in the cache to fetch a newer revision.
2. Otherwise the hub lists the repo's files (``GET /api/models/<repo>/revision/<rev>``), the ones the patterns
   select and the cache lacks are downloaded with ``huggingface_hub.hf_hub_download``, one after the other, into
   the hub's cache layout, and progress is reported while they arrive: ``Readiness`` turns ``downloading`` with
   ``progress`` 0 -> 1 (what ``GET /ready`` shows), and a log line with the percentage, MB and MB/s every 10 % or
   5 s. ``refs/<revision>`` is written last, once the snapshot is whole.

How progress is measured: huggingface_hub writes every file into ``<cache>/models--<org>--<name>/blobs/`` (under a
temporary name until it is complete, then renamed), so the bytes that appeared there since the download began,
against the sizes the hub listed, are the progress (in steps of the 10 MB huggingface_hub writes at a time). It is
read on disk rather than through a ``tqdm_class`` because that hook differs between the huggingface_hub versions
the services pin: 2.x (STT, LLM) has one on ``hf_hub_download``, 0.36 (pinned by transformers 4.46 for Parler)
does not. On disk, both look the same, and so do Xet downloads. Files are fetched on a daemon thread, not through
``snapshot_download``'s thread pool, whose threads the interpreter would wait for at exit: a service stopped during
a download exits at once.

huggingface_hub is imported inside the functions: it is a download library, not a model library, but the page's
venv has no reason to install it.
"""

from __future__ import annotations

import fnmatch
import inspect
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .health import Readiness

logger = logging.getLogger(__name__)

MEGABYTE = 1_000_000
POLL_INTERVAL_S = 0.2
LOG_EVERY_FRACTION = 0.1
LOG_EVERY_S = 5.0
"""A progress line each time another 10 % has arrived, or after 5 s without one (slow links)."""
_TRUTHY = {"1", "true", "yes", "on"}


class HubDownloadError(RuntimeError):
    """A hub model is not in the cache and cannot be fetched now (unknown repo, no network, offline mode, ...).

    The message is one line that names the setting, the repo and what to do.
    """


def hub_cache_dir(cache_dir: Path) -> Path | None:
    """Where hub downloads go: the hub's own cache when ``HF_HOME`` / ``HF_HUB_CACHE`` is set (None), else
    ``<cache_dir>/huggingface`` (``cache_dir`` is the service's ``<PREFIX>_CACHE_DIR`` / ``VOICE_AGENT_CACHE``)."""
    if os.environ.get("HF_HUB_CACHE") or os.environ.get("HF_HOME"):
        return None
    return cache_dir / "huggingface"


def hub_offline() -> bool:
    """``HF_HUB_OFFLINE`` (or ``TRANSFORMERS_OFFLINE``) is set: never call the hub, use the cache only."""
    from huggingface_hub import constants

    from_environment = (os.environ.get("HF_HUB_OFFLINE") or os.environ.get("TRANSFORMERS_OFFLINE") or "").lower()
    return bool(constants.HF_HUB_OFFLINE) or from_environment in _TRUTHY


def _has_files(snapshot: Path) -> bool:
    return snapshot.is_dir() and any(snapshot.iterdir())


def fetch_snapshot(
    repo_id: str,
    *,
    cache_dir: Path | None,
    what: str,
    allow_patterns: list[str] | None = None,
    ignore_patterns: list[str] | None = None,
    complete: Callable[[Path], bool] = _has_files,
    check_files: Callable[[list[str]], None] | None = None,
    readiness: Readiness | None = None,
    revision: str = "main",
    endpoint: str | None = None,
) -> Path:
    """The local snapshot directory of ``repo_id`` (the files ``allow_patterns``/``ignore_patterns`` select).

    ``cache_dir``: the hub cache to use (None: the hub's own, ``HF_HUB_CACHE``/``HF_HOME``; see ``hub_cache_dir``).
    ``what`` names the setting in messages (``"STT_MODEL"``). ``complete(snapshot)`` says whether a cached snapshot
    holds everything the service needs (an interrupted download leaves some files out). ``check_files`` sees the
    selected repo paths before anything is downloaded and may raise ValueError to refuse them (a glob matching
    several models). ``readiness`` reports the download (``downloading`` + progress, then ``loading``); setting its
    ``stopping`` event abandons the download. ``endpoint``: the hub's URL (None: ``HF_ENDPOINT``, huggingface.co).

    Blocking (minutes for a large first download). Raises HubDownloadError, one line, when the snapshot is neither
    cached complete nor downloadable now.
    """
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    where = str(cache_dir) if cache_dir is not None else "the hub cache (HF_HOME / HF_HUB_CACHE)"
    options: dict[str, Any] = {
        "revision": revision,
        "cache_dir": str(cache_dir) if cache_dir is not None else None,
        "allow_patterns": allow_patterns,
        "ignore_patterns": ignore_patterns,
    }
    try:
        cached = Path(snapshot_download(repo_id, local_files_only=True, **options))
    except LocalEntryNotFoundError:
        cached = None
    if cached is not None and complete(cached):
        logger.info("%s %s: using the cached snapshot %s (no network)", what, repo_id, cached)
        return cached
    missing = "is not in" if cached is None else "is incomplete in"
    if hub_offline():
        raise HubDownloadError(
            f"{what} {repo_id!r} {missing} {where} and HF_HUB_OFFLINE is set: start once with network access "
            "(HF_HUB_OFFLINE unset) to download it"
        )

    files = _list_files(repo_id, revision, endpoint, what, allow_patterns, ignore_patterns)
    if check_files is not None:
        check_files(sorted(files.sizes))
    storage = _storage_folder(repo_id, cache_dir)
    snapshot_folder = storage / "snapshots" / files.commit
    to_fetch = {name: size for name, size in files.sizes.items() if not (snapshot_folder / name).exists()}
    total_bytes = sum(to_fetch.values())
    if total_bytes > 0:
        logger.info(
            "%s %s: downloading %d file(s), %.1f MB, from %s into %s (once: later starts load it from there)",
            what,
            repo_id,
            len(to_fetch),
            total_bytes / MEGABYTE,
            endpoint or _default_endpoint(),
            where,
        )
    progress = DownloadProgress(f"{what} {repo_id}", total_bytes, readiness)
    try:
        _download(repo_id, sorted(to_fetch), files.commit, cache_dir, endpoint, storage / "blobs", progress)
    except HubDownloadError:
        raise
    except Exception as err:
        raise HubDownloadError(
            f"{what} {repo_id!r}: the download into {where} failed after {progress.done_bytes / MEGABYTE:.1f} of "
            f"{total_bytes / MEGABYTE:.1f} MB: {_one_line(err)}; start again to fetch what is missing"
        ) from err
    progress.finish()
    if revision != files.commit:  # the branch points at the snapshot once it is whole: what offline starts read
        _write_ref(storage, revision, files.commit)
    if not complete(snapshot_folder):
        raise HubDownloadError(
            f"{what} {repo_id!r}: the downloaded snapshot {snapshot_folder} lacks files the service needs"
        )
    return snapshot_folder


def _download(
    repo_id: str,
    names: list[str],
    commit: str,
    cache_dir: Path | None,
    endpoint: str | None,
    blobs: Path,
    progress: DownloadProgress,
) -> None:
    """Fetch ``names`` at ``commit`` with ``hf_hub_download``; ``progress`` follows the bytes arriving in ``blobs``.

    One file after the other on a daemon thread, watched from the calling thread: snapshot_download's pool threads
    would be joined at interpreter exit, so a service stopped during a download would wait for it; a daemon thread
    is dropped, and the next start fetches what is missing. Raises HubDownloadError when ``progress.readiness`` is
    told to stop, and whatever huggingface_hub raised when a file fails.
    """
    from huggingface_hub import hf_hub_download

    outcome: dict[str, BaseException] = {}
    quiet: dict[str, Any] = {"tqdm_class": _silent_progress_bar_class()} if _accepts_tqdm_class(hf_hub_download) else {}
    folder = str(cache_dir) if cache_dir is not None else None

    def download() -> None:
        try:
            for name in names:  # at one commit, so every file comes from the same revision
                hf_hub_download(repo_id, name, revision=commit, cache_dir=folder, endpoint=endpoint, **quiet)
        except BaseException as err:  # noqa: BLE001 - handed to the watching thread, which raises it
            outcome["error"] = err

    baseline_bytes = bytes_on_disk(blobs)
    downloader = threading.Thread(target=download, name=f"hub-download-{repo_id}", daemon=True)
    downloader.start()
    readiness = progress.readiness
    while downloader.is_alive():
        downloader.join(POLL_INTERVAL_S)
        if readiness is not None and readiness.stopping.is_set():
            raise HubDownloadError(f"{progress.label}: download abandoned, the service is stopping")
        progress.update(bytes_on_disk(blobs) - baseline_bytes)
    if "error" in outcome:
        raise outcome["error"]


@dataclass(frozen=True)
class _RepoFiles:
    """The commit a revision points to, and the size in bytes of every selected file (repo path -> bytes)."""

    commit: str
    sizes: dict[str, int]


def _list_files(
    repo_id: str,
    revision: str,
    endpoint: str | None,
    what: str,
    allow_patterns: list[str] | None,
    ignore_patterns: list[str] | None,
) -> _RepoFiles:
    from huggingface_hub import HfApi
    from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError, RevisionNotFoundError
    from huggingface_hub.utils import filter_repo_objects

    url = endpoint or _default_endpoint()
    try:
        info = HfApi(endpoint=endpoint).model_info(repo_id, revision=revision, files_metadata=True)
    except GatedRepoError as err:
        raise HubDownloadError(
            f"{what} {repo_id!r} is gated on {url}: accept its terms there and set HF_TOKEN"
        ) from err
    except RepositoryNotFoundError as err:
        raise HubDownloadError(
            f"{what} {repo_id!r}: no such model repo on {url} (a typo? a private repo needs HF_TOKEN)"
        ) from err
    except RevisionNotFoundError as err:
        raise HubDownloadError(f"{what} {repo_id!r}: no revision {revision!r} on {url}") from err
    except Exception as err:
        raise HubDownloadError(
            f"{what} {repo_id!r} is not in the cache and {url} cannot be reached ({_one_line(err)}): start once with "
            "network access, or point the setting at a local model"
        ) from err
    siblings = list(info.siblings or [])
    selected = list(
        filter_repo_objects(
            siblings, allow_patterns=allow_patterns, ignore_patterns=ignore_patterns, key=lambda s: s.rfilename
        )
    )
    if info.sha is None:
        raise HubDownloadError(f"{what} {repo_id!r}: {url} did not say which commit {revision!r} is")
    if not selected:
        names = ", ".join(sibling.rfilename for sibling in siblings[:20]) + (", ..." if len(siblings) > 20 else "")
        patterns = allow_patterns or ["*"]
        raise HubDownloadError(f"{what} {repo_id!r}: no file matches {patterns} (the repo has: {names or 'nothing'})")
    return _RepoFiles(info.sha, {sibling.rfilename: int(sibling.size or 0) for sibling in selected})


def _storage_folder(repo_id: str, cache_dir: Path | None) -> Path:
    from huggingface_hub import constants
    from huggingface_hub.file_download import repo_folder_name

    root = Path(cache_dir) if cache_dir is not None else Path(constants.HF_HUB_CACHE)
    return root.expanduser().resolve() / repo_folder_name(repo_id=repo_id, repo_type="model")


def _default_endpoint() -> str:
    from huggingface_hub import constants

    return str(constants.ENDPOINT)


def _write_ref(storage: Path, revision: str, commit: str) -> None:
    """``refs/<revision>`` holds the commit it points to (the hub cache's layout), written atomically."""
    ref = storage / "refs" / revision
    ref.parent.mkdir(parents=True, exist_ok=True)
    temporary = ref.with_name(f".{ref.name}.{os.getpid()}.tmp")
    temporary.write_text(commit)
    os.replace(temporary, ref)


def _accepts_tqdm_class(function: Callable[..., Any]) -> bool:
    """huggingface_hub 2.x's ``hf_hub_download`` takes a ``tqdm_class``; 0.36's does not."""
    return "tqdm_class" in inspect.signature(function).parameters


def _silent_progress_bar_class() -> type:
    """huggingface_hub's tqdm, always disabled: progress goes to the log and to ``/ready`` instead of the terminal."""
    from huggingface_hub.utils import tqdm as hub_tqdm

    class SilentProgressBar(hub_tqdm):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs["disable"] = True
            super().__init__(*args, **kwargs)

    return SilentProgressBar


def _one_line(err: BaseException, max_chars: int = 300) -> str:
    text = f"{type(err).__name__}: {' '.join(str(err).split())}"
    return text if len(text) <= max_chars else text[: max_chars - 3] + "..."


def bytes_on_disk(folder: Path) -> int:
    """Total size in bytes of the regular files directly in ``folder`` (0 when it does not exist)."""
    total = 0
    try:
        entries = list(os.scandir(folder))
    except FileNotFoundError:
        return 0
    for entry in entries:
        try:
            if entry.is_file(follow_symlinks=False):
                total += entry.stat(follow_symlinks=False).st_size
        except FileNotFoundError:  # renamed from its temporary name between the listing and the stat
            continue
    return total


class DownloadProgress:
    """Turns bytes received into ``Readiness`` progress and throttled log lines (percent, MB, MB/s, time left).

    Readings only rise: a file renamed between two looks at the folder must not make progress go back.
    """

    def __init__(self, label: str, total_bytes: int, readiness: Readiness | None) -> None:
        self.label = label
        self.total_bytes = total_bytes
        self.readiness = readiness
        self.done_bytes = 0
        self._started = time.monotonic()
        self._last_log = self._started
        self._next_log_fraction = LOG_EVERY_FRACTION
        if readiness is not None and total_bytes > 0:
            readiness.mark_downloading(0.0)

    @property
    def fraction(self) -> float:
        return min(self.done_bytes / self.total_bytes, 1.0) if self.total_bytes else 1.0

    def update(self, done_bytes: int) -> None:
        """``done_bytes`` received so far (clamped to the total; never less than an earlier reading)."""
        if self.total_bytes <= 0:
            return
        self.done_bytes = max(self.done_bytes, min(done_bytes, self.total_bytes))
        fraction = self.fraction
        if self.readiness is not None:
            self.readiness.mark_downloading(fraction)
        now = time.monotonic()
        if fraction >= self._next_log_fraction or now - self._last_log >= LOG_EVERY_S:
            self._log(now)
            self._last_log = now
            while self._next_log_fraction <= fraction:
                self._next_log_fraction += LOG_EVERY_FRACTION

    def finish(self) -> None:
        """Everything arrived: 100 %, a summary line, and ``Readiness`` back to ``loading``."""
        elapsed_s = time.monotonic() - self._started
        if self.total_bytes > 0:
            if self.done_bytes < self.total_bytes:
                self.done_bytes = self.total_bytes
                self._log(time.monotonic())
            logger.info(
                "%s: downloaded %.1f MB in %.1f s (%.1f MB/s)",
                self.label,
                self.total_bytes / MEGABYTE,
                elapsed_s,
                self.total_bytes / MEGABYTE / max(elapsed_s, 1e-3),
            )
        if self.readiness is not None and self.total_bytes > 0:
            self.readiness.mark_downloading(1.0)
            self.readiness.mark_loading()

    def _log(self, now: float) -> None:
        elapsed_s = max(now - self._started, 1e-3)
        rate = self.done_bytes / elapsed_s
        left_s = (self.total_bytes - self.done_bytes) / rate if rate > 0 else float("inf")
        logger.info(
            "%s: %3.0f%% (%.1f of %.1f MB) at %.1f MB/s, %s left",
            self.label,
            self.fraction * 100,
            self.done_bytes / MEGABYTE,
            self.total_bytes / MEGABYTE,
            rate / MEGABYTE,
            f"{left_s:.0f} s" if left_s != float("inf") else "unknown time",
        )


def matching_files(snapshot: Path, pattern: str) -> list[Path]:
    """Files under ``snapshot`` whose repo path (``sub/name.gguf``) matches ``pattern`` as the hub's filters do."""
    found = [path for path in snapshot.rglob("*") if path.is_file()]
    return sorted(path for path in found if fnmatch.fnmatch(path.relative_to(snapshot).as_posix(), pattern))
