"""Operator settings from ``LLMROUTE_*`` variables: a Prometheus URL carrying credentials stops the operator
at start without quoting them (the URL is logged at start and sits in the pod spec in plain text)."""

from __future__ import annotations

import pytest

from llmroute.controller.settings import OperatorSettings, SettingsError


@pytest.mark.parametrize(
    "url",
    [
        "https://llmroute:hunter2@prometheus.example",
        "http://hunter2@prometheus-server.monitoring.svc:80/",
        "HTTPS://llmroute:hunter2@prometheus.example/select/0/prometheus",
    ],
)
def test_a_prometheus_url_with_credentials_is_refused_without_quoting_them(
    monkeypatch: pytest.MonkeyPatch, url: str
) -> None:
    monkeypatch.setenv("LLMROUTE_PROMETHEUS_URL", url)
    with pytest.raises(SettingsError) as refused:
        OperatorSettings()
    message = str(refused.value)
    assert "LLMROUTE_PROMETHEUS_URL" in message and "must not carry credentials" in message
    assert "hunter2" not in message
    assert refused.value.__cause__ is None and refused.value.__suppress_context__


@pytest.mark.parametrize(
    "url",
    ["http://prometheus-server.monitoring.svc:80", "https://prometheus.example/select/@tenant?a=b@c"],
)
def test_a_prometheus_url_without_credentials_is_read(monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    monkeypatch.setenv("LLMROUTE_PROMETHEUS_URL", url)
    assert OperatorSettings().prometheus_url == url
