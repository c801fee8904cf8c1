"""Liveness and readiness: ``GET /health`` (process up) and ``GET /ready`` (model loaded and warmed up)."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from .errors import ModelNotReady
from .schemas import HealthStatus, ModelCard, ReadyStatus

State = Literal["loading", "downloading", "ready", "unloaded", "failed"]


@dataclass
class Readiness:
    """Mutable readiness of one service's model, kept on ``app.state.readiness``.

    The lifespan moves it ``loading`` -> (``downloading`` ->) ``ready`` only after a warm-up inference,
    or to ``failed`` with a detail; ``POST /admin/model/unload`` to ``unloaded`` and ``/admin/model/load`` back
    through ``loading`` to ``ready`` (``lifecycle.ModelLife``).
    A hub download (``service_common.hub``) updates ``progress`` from huggingface_hub's
    download threads; a single float or string assignment is atomic, so ``/ready`` reads it without a lock.
    """

    model_id: str | None = None
    owned_by: str = "local"
    state: State = "loading"
    progress: float | None = None
    detail: str | None = None
    loaded_at: int = field(default_factory=lambda: int(time.time()))
    stopping: threading.Event = field(default_factory=threading.Event, repr=False, compare=False)
    """Set when the service shuts down before the model is ready: a download in progress gives up."""

    def mark_downloading(self, progress: float) -> None:
        """A hub download is under way; ``progress`` is the fraction done, 0 to 1 (of its bytes; of its files with
        huggingface_hub 0.36)."""
        self.progress = min(max(progress, 0.0), 1.0)  # before the state: a reader never sees downloading + None
        self.state = "downloading"

    def mark_loading(self) -> None:
        """Back to ``loading`` (the download is done; the model is being read and warmed up)."""
        self.state = "loading"
        self.progress = None

    def mark_ready(self, model_id: str, owned_by: str) -> None:
        self.model_id, self.owned_by = model_id, owned_by
        self.state, self.progress, self.detail = "ready", None, None
        self.loaded_at = int(time.time())

    def mark_unloaded(self) -> None:
        """The model was unloaded on purpose (admin); model routes answer 503 until it is loaded again."""
        self.state, self.progress = "unloaded", None
        self.detail = "unloaded by an admin; POST /admin/model/load loads it again"

    def mark_failed(self, detail: str) -> None:
        self.state, self.detail = "failed", detail

    @property
    def is_ready(self) -> bool:
        return self.state == "ready"

    def require_ready(self) -> None:
        """Raise ModelNotReady (503) unless the model is ready."""
        if self.state == "unloaded":
            raise ModelNotReady("the model is unloaded; an admin loads it again with POST /admin/model/load")
        if not self.is_ready:
            raise ModelNotReady(f"the model is not ready yet ({self.state})")

    def as_status(self) -> ReadyStatus:
        return ReadyStatus(status=self.state, model=self.model_id, progress=self.progress, detail=self.detail)

    def model_card(self) -> ModelCard:
        return ModelCard(id=self.model_id or "unknown", created=self.loaded_at, owned_by=self.owned_by)


def readiness_of(request: Request) -> Readiness:
    readiness: Readiness = request.app.state.readiness
    return readiness


router = APIRouter(tags=["health"])


@router.get("/health", response_model=HealthStatus, summary="Liveness: 200 while the process is up")
async def health() -> HealthStatus:
    return HealthStatus()


@router.get(
    "/ready",
    response_model=ReadyStatus,
    summary="Readiness: 200 once the model is loaded and warmed up, 503 before",
    responses={503: {"model": ReadyStatus, "description": "Model loading, downloading, unloaded or failed"}},
)
async def ready(request: Request) -> JSONResponse:
    readiness = readiness_of(request)
    status = readiness.as_status()
    headers = None if readiness.is_ready else {"Retry-After": "2"}
    return JSONResponse(status.model_dump(), status_code=200 if readiness.is_ready else 503, headers=headers)
