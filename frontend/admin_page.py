"""The Admin page: one card per service (state, model, memory, recent latency, queue, uptime, GPUs), refreshed every
few seconds, with Unload and Load buttons when ``FRONTEND_ADMIN_API_KEY`` is set.

A page of ``frontend/app.py``'s navigation; the reading and the actions are ``voice_agent.admin``'s, this file only
draws. A service that does not answer is drawn as down.
"""

from __future__ import annotations

import streamlit as st

from voice_agent.admin import (
    RECENT_WINDOW_S,
    AdminActionError,
    AdminClient,
    GpuUsage,
    LatencySummary,
    ScrapeHistory,
    Service,
    ServiceReport,
    services_from_settings,
)
from voice_agent.config import get_settings

REFRESH_S = 5.0
MIB = 1024**2
GIB = 1024**3
STATE_ICONS = {
    "ready": "🟢",
    "loading": "🟡",
    "downloading": "🟡",
    "unloaded": "⚪",
    "failed": "🔴",
    "down": "🔴",
}
MESSAGE_KEY = "admin_message"  # (kind, text) of the last Unload or Load, shown until the next one


@st.cache_resource
def scrape_history() -> ScrapeHistory:
    """Earlier scrapes of every service, shared by the page's sessions, so latency can be recent."""
    return ScrapeHistory()


def duration_text(seconds: float) -> str:
    """``42 s``, ``7 min``, ``3 h 05 min``, ``2 d 4 h``."""
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes = int(seconds // 60)
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes:02d} min"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h"


def quantile_text(value: float | None, unit: str) -> str:
    if value is None:
        return "–"
    return f"{value * 1000:.0f} ms" if unit == "s" else f"{value:.2f}"


def latency_line(summary: LatencySummary) -> str:
    """One measure: its p50 and p95, and what they were computed over."""
    measure = summary.measure
    if summary.observations == 0:
        return f"{measure.description}: no {measure.counted} yet"
    window = f"last {duration_text(summary.window_s)}" if summary.window_s is not None else "since the service started"
    return (
        f"{measure.description}: p50 **{quantile_text(summary.p50, measure.unit)}** · "
        f"p95 **{quantile_text(summary.p95, measure.unit)}** "
        f"({measure.counted}: {summary.observations}, {window})"
    )


def gpu_panel(gpus: tuple[GpuUsage, ...]) -> None:
    for gpu in gpus:
        share = gpu.memory_used_bytes / gpu.memory_total_bytes if gpu.memory_total_bytes else 0.0
        busy = f", {gpu.utilization:.0%} busy" if gpu.utilization is not None else ""
        st.progress(
            min(1.0, share),
            text=f"GPU {gpu.index} {gpu.name}: {gpu.memory_used_bytes / GIB:.1f} / "
            f"{gpu.memory_total_bytes / GIB:.1f} GiB{busy}",
        )


def act(service: Service, action: str) -> None:
    """Button callback: unload or load ``service``'s model; the outcome is kept for the next drawing."""
    settings = get_settings()
    with AdminClient.from_settings(settings, scrape_history()) as client:
        try:
            status = client.unload(service) if action == "unload" else client.load(service)
        except AdminActionError as err:
            st.session_state[MESSAGE_KEY] = ("error", str(err))  # names the service, the URL and the answer
            return
    done = "unloaded" if action == "unload" else "loaded"
    model = f" `{status.model_id}`" if status.model_id else ""
    st.session_state[MESSAGE_KEY] = ("success", f"**{service.title}**: model{model} {done}; now {status.state}.")


def service_card(report: ServiceReport, *, with_actions: bool) -> None:
    service = report.service
    with st.container(border=True):
        model = f" · `{report.model_id}`" if report.model_id else ""
        st.markdown(f"{STATE_ICONS.get(report.state, '🔴')} **{service.title}** · {report.state}{model}")
        st.caption(service.base_url)
        if report.detail:
            st.caption(report.detail)
        if report.state == "downloading" and report.progress is not None:
            st.progress(report.progress, text=f"downloading {report.progress:.0%}")
        if report.state == "down":
            return
        memory, queue, uptime = st.columns(3)
        memory.metric("Memory (RSS)", f"{report.rss_bytes / MIB:.0f} MiB" if report.rss_bytes is not None else "–")
        in_flight = "–" if report.in_flight is None else str(report.in_flight)
        if report.max_queued is not None:
            queue.metric("In flight / max queued", f"{in_flight} / {report.max_queued}")
        else:
            queue.metric("In flight", in_flight)
        uptime.metric("Uptime", duration_text(report.uptime_s) if report.uptime_s is not None else "–")
        for summary in report.latencies:
            st.markdown(latency_line(summary))
        if report.gpus:
            gpu_panel(report.gpus)
        for problem in report.problems:
            st.caption(f"⚠️ {problem}")
        if with_actions:
            unload, load = st.columns(2)
            unload.button(
                "Unload",
                key=f"admin-unload-{service.name}",
                icon="⏏️",
                disabled=report.state != "ready",
                on_click=act,
                args=(service, "unload"),
                use_container_width=True,
            )
            load.button(
                "Load",
                key=f"admin-load-{service.name}",
                icon="▶️",
                disabled=report.state not in ("unloaded", "failed"),
                on_click=act,
                args=(service, "load"),
                use_container_width=True,
                help="Loads and warms the model up; the page waits until it is ready.",
            )


@st.fragment(run_every=REFRESH_S)
def service_cards() -> None:
    """Every service's card, redrawn every REFRESH_S seconds without rerunning the rest of the page."""
    settings = get_settings()
    services = services_from_settings(settings)
    message = st.session_state.get(MESSAGE_KEY)
    if message is not None:
        kind, text = message
        (st.error if kind == "error" else st.success)(text, icon="⚠️" if kind == "error" else "✅")
    with AdminClient.from_settings(settings, scrape_history()) as client:
        reports = [client.report(service) for service in services]
    columns = st.columns(2)
    for index, report in enumerate(reports):
        with columns[index % 2]:
            service_card(report, with_actions=client.admin_key is not None)


st.set_page_config(page_title="Voice agent admin", page_icon="🛠️", layout="wide")
st.title("🛠️ Admin")
st.caption(
    f"Each service's `/ready`, `/metrics` and, with the admin key, `/admin/status`, read every {REFRESH_S:.0f} s. "
    "Latency p50 / p95 come from the services' histograms: the requests since an earlier refresh of this page "
    f"(up to {RECENT_WINDOW_S / 60:.0f} min back), or since the service started when no earlier refresh is kept. "
    "The real-time factor is transcription time / audio duration."
)
if get_settings().admin_api_key is None:
    st.caption(
        "Unload and Load appear when `FRONTEND_ADMIN_API_KEY` is set to the admin key the services were started "
        "with (`STT_ADMIN_API_KEY`, `LLM_ADMIN_API_KEY`, `TTS_ADMIN_API_KEY`, `REALTIME_ADMIN_API_KEY`)."
    )
service_cards()
