"""Hub models: ``huggingface_hub.snapshot_download`` fetches them into a cache; its progress hook reports.

The library filters (``allow_patterns``), downloads in parallel, resumes, writes ``refs/<revision>`` and answers
offline from the cache. Ours is its ``tqdm_class``: a bar never drawn that turns what the library reports into
``Readiness`` (``downloading``, ``progress`` 0 -> 1: ``GET /ready``), a log line every 10 % or 5 s, and the end
of the download when the service stops. huggingface_hub 2.x (STT, LLM) reports bytes; the Parler venv's 0.36 (the
last below 1.0, which transformers 4.46.1, pinned by parler-tts 0.2.3, refuses at import) reports files done, so
there progress counts files and a stop waits for the file in flight.
"""

from __future__ import annotations

import inspect
import logging
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .health import Readiness

logger = logging.getLogger(__name__)
MEGABYTE = 1_000_000
LOG_EVERY_S = 5.0
_TRANSFER_BAR = "huggingface_hub.snapshot_download.transfer"  # 2.x's network bar; its other byte bar counts writes


class HubDownloadError(RuntimeError):
    """A hub model is neither in the cache nor downloadable now; the message is one line naming the setting."""


class _Abandoned(Exception):
    """Raised by the progress hook, inside huggingface_hub's threads, once the service is stopping."""


def hub_cache_dir(cache_dir: Path) -> Path | None:
    """``<cache_dir>/huggingface``, or None (the hub's own cache) when ``HF_HOME`` / ``HF_HUB_CACHE`` is set."""
    return None if os.environ.get("HF_HUB_CACHE") or os.environ.get("HF_HOME") else cache_dir / "huggingface"


def fetch_snapshot(
    repo_id: str,
    *,
    cache_dir: Path | None,
    what: str,
    allow_patterns: list[str] | None = None,
    ignore_patterns: list[str] | None = None,
    complete: Callable[[Path], bool] = lambda folder: any(folder.iterdir()),
    check_files: Callable[[list[str]], None] | None = None,
    readiness: Readiness | None = None,
    endpoint: str | None = None,
) -> Path:
    """The local snapshot folder of ``repo_id`` holding the files the patterns select; blocking (minutes at first).

    A cached snapshot that is ``complete`` (an interrupted download leaves files out) is used with no network call,
    so a later start works offline. ``cache_dir`` None: the hub's own cache. ``what`` names the setting in messages.
    ``check_files`` sees the repo paths about to be fetched (huggingface_hub 2.x) and may raise ValueError to refuse
    them. ``readiness`` shows the download, then goes back to ``loading``. ``endpoint`` None: ``HF_ENDPOINT``.
    Raises HubDownloadError (one line) when the snapshot is neither cached nor downloadable, or the service stops.
    """
    from huggingface_hub import snapshot_download

    options: dict[str, Any] = {"allow_patterns": allow_patterns, "ignore_patterns": ignore_patterns}
    options |= {"cache_dir": str(cache_dir) if cache_dir else None, "endpoint": endpoint}
    try:
        cached = Path(snapshot_download(repo_id, local_files_only=True, **options))
        if cached.is_dir() and complete(cached):
            logger.info("%s %s: using the cached snapshot %s (no network)", what, repo_id, cached)
            return cached
    except Exception:  # noqa: BLE001 - not (wholly) cached: the download below reports its own errors
        pass
    progress = _Progress(f"{what} {repo_id}", readiness)
    if "dry_run" in inspect.signature(snapshot_download).parameters:  # 2.x: what will come, before it comes
        with _one_line_errors(progress.label, cache_dir):
            planned = snapshot_download(repo_id, dry_run=True, tqdm_class=_Progress("", None).bar_class(), **options)
        if check_files is not None:
            check_files(sorted(file.filename for file in planned))
        progress.total = sum(file.file_size or 0 for file in planned if file.will_download)
    with _one_line_errors(progress.label, cache_dir):
        folder = Path(snapshot_download(repo_id, tqdm_class=progress.bar_class(), **options))
    progress.finish()
    if not folder.is_dir() or not complete(folder):  # offline, huggingface_hub 0.36 returns a partial snapshot
        raise HubDownloadError(f"{what} {repo_id!r}: {folder} lacks files the service needs ({allow_patterns})")
    return folder


@contextmanager
def _one_line_errors(label: str, cache_dir: Path | None) -> Iterator[None]:
    """What huggingface_hub raises, as a one-line HubDownloadError: its own message, not the wrapper's."""
    try:
        yield
    except _Abandoned as err:
        raise HubDownloadError(f"{label}: download abandoned, the service is stopping") from err
    except Exception as err:
        cause: BaseException = err
        while type(cause).__name__ in {"DryRunError", "LocalEntryNotFoundError"} and cause.__cause__ is not None:
            cause = cause.__cause__
        text = " ".join(f"{type(cause).__name__}: {cause}".split())[:400]
        where = cache_dir or "the hub cache"
        raise HubDownloadError(f"{label}: neither in {where} nor downloadable: {text}") from err


class _Progress:
    """huggingface_hub's progress, for ``Readiness`` and the log: the bar of bytes written when the library has one,
    against the total its dry run announced (the bar's own total grows as files start), else the bar of files done.
    """

    def __init__(self, label: str, readiness: Readiness | None) -> None:
        self.label, self.readiness = label, readiness
        self.counted: object = None
        self.unit, self.total, self.done, self.fraction, self.logged = "B", 0.0, 0.0, 0.0, 0.0
        self.started = self.last_log = time.monotonic()
        if readiness is not None:
            readiness.mark_downloading(0.0)

    def bar_class(self) -> type:
        from huggingface_hub.utils import tqdm as hub_tqdm

        progress = self

        class ProgressBar(hub_tqdm):
            def __init__(self, *args: Any, **kwargs: Any) -> None:
                name, unit = kwargs.get("name"), kwargs.get("unit", "it")
                super().__init__(*args, **{**kwargs, "disable": True})
                if name != _TRANSFER_BAR and progress.counted is None:
                    progress.counted, progress.unit = self, unit

            def update(self, n: float | None = 1) -> bool | None:
                progress.advance(self, n or 0, self.total or 0)
                return None

            def __iter__(self) -> Any:  # 0.36 counts files by iterating tqdm's thread_map
                for item in self.iterable:
                    yield item
                    self.update(1)

        return ProgressBar

    def advance(self, bar: object, amount: float, bar_total: float) -> None:
        if self.readiness is not None and self.readiness.stopping.is_set():
            raise _Abandoned(self.label)
        total = max(bar_total, self.total)
        if bar is not self.counted or not total:
            return
        self.done += amount
        self.fraction = max(self.fraction, min(self.done / total, 1.0))
        if self.readiness is not None:
            self.readiness.mark_downloading(self.fraction)
        if (
            self.fraction >= min(self.logged + 0.1, 1.0) > self.logged
            or time.monotonic() - self.last_log >= LOG_EVERY_S
        ):
            self.logged, self.last_log = self.fraction, time.monotonic()
            logger.info("%s: %3.0f%% (%s)", self.label, self.fraction * 100, self.amount(total))

    def amount(self, total: float) -> str:
        if self.unit != "B":
            return f"{self.done:.0f} of {total:.0f} files"
        rate = self.done / MEGABYTE / max(time.monotonic() - self.started, 1e-3)
        return f"{self.done / MEGABYTE:.1f} of {total / MEGABYTE:.1f} MB at {rate:.1f} MB/s"

    def finish(self) -> None:
        """The download is whole: a summary line if anything came, ``Readiness`` back to ``loading``."""
        if self.done:
            logger.info("%s: downloaded %s", self.label, self.amount(self.done))
        if self.readiness is not None:
            self.readiness.mark_loading()
