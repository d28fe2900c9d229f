"""Logs: structlog key-value events; secrets never reach them, phone numbers show only the last 4 digits."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
import structlog

from config import Settings
from config.logging import configure_logging, redact_processor


def test_redaction_masks_phones_and_drops_secrets() -> None:
    event = redact_processor(
        None,
        "info",
        {
            "event": "dialed +34600123456",
            "to": "+34600123456",
            "auth_token": "s3cr3t-token",
            "provider": {"account_sid": "AC1", "api_key": "k"},
            "numbers": ["+34 600 123 457"],
            "attempt": "c1:0:1",
            "launch_at": "2026-11-23T05:00:00.000Z",
            "campaign_id": "1234567890ab",
            "phone": "600123458",
            "detail": "POST To=%2B34600123459",
            "duration_s": 42,
        },
    )
    assert event["event"] == "dialed ***3456"
    assert event["to"] == "***3456"
    assert event["auth_token"] == "[redacted]"
    assert event["provider"]["api_key"] == "[redacted]"
    assert event["numbers"] == ["***3457"]
    assert event["attempt"] == "c1:0:1" and event["duration_s"] == 42
    assert event["launch_at"] == "2026-11-23T05:00:00.000Z" and event["campaign_id"] == "1234567890ab"
    assert event["phone"] == "***3458"
    assert event["detail"] == "POST To=***3459"
    assert "s3cr3t" not in json.dumps(event)


def test_configured_logging_writes_json_events_to_stderr_masked(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(Settings(log_format="json", log_level="INFO"))
    try:
        structlog.get_logger("t").bind(campaign_id="c1").info("dialed", to="+34600123456", token="abc")
        logging.getLogger("dramatiq").warning("failed calling +34600123456")
        captured = capsys.readouterr()
        lines = [json.loads(line) for line in captured.err.strip().splitlines()]
        assert captured.out == ""
        first: dict[str, Any] = lines[0]
        assert first["event"] == "dialed" and first["campaign_id"] == "c1" and first["to"] == "***3456"
        assert first["token"] == "[redacted]"
        assert lines[1]["event"] == "failed calling ***3456"
    finally:
        structlog.reset_defaults()
        logging.getLogger().handlers.clear()


def test_an_exception_logged_as_json_carries_its_traceback_masked(capsys: pytest.CaptureFixture[str]) -> None:
    """A 500's log line is what an operator debugs from: the exception and where it was raised, as text, with
    numbers in the message masked like everywhere else."""
    configure_logging(Settings(log_format="json", log_level="INFO"))
    try:
        try:
            raise ValueError("cannot dial +34600123456")
        except ValueError:
            structlog.get_logger("t").exception("request_failed", error_id="e1")
        event = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
        assert event["event"] == "request_failed" and event["error_id"] == "e1"
        assert "Traceback" in event["exception"] and "ValueError: cannot dial ***3456" in event["exception"]
        assert "+34600123456" not in json.dumps(event)
    finally:
        structlog.reset_defaults()
        logging.getLogger().handlers.clear()
