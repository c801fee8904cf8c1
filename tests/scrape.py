"""Reading a service's ``GET /metrics`` in tests, with prometheus_client's own parser."""

from __future__ import annotations

from typing import Any

from prometheus_client.parser import text_string_to_metric_families


class Scrape:
    """One scrape of ``/metrics``: ``value("stt_audio_seconds_total")``, ``value("x_total", reason="error")``."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.families = {family.name: family for family in text_string_to_metric_families(text)}
        self.samples = [sample for family in self.families.values() for sample in family.samples]

    def value(self, name: str, **labels: str) -> float:
        """The sum of the samples named ``name`` whose labels include ``labels``; 0 when there is none."""
        return sum(
            sample.value
            for sample in self.samples
            if sample.name == name and all(sample.labels.get(key) == wanted for key, wanted in labels.items())
        )

    def type_of(self, family: str) -> str:
        return str(self.families[family].type)


def scrape(client: Any) -> Scrape:
    """``GET /metrics`` through ``client`` (a TestClient or an httpx.Client with a base URL), checked and parsed."""
    response = client.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=")
    return Scrape(response.text)
