"""What an ended call means for its contact (DESIGN §5): pure functions."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from dialer.money import call_cost
from dialer.recall import next_recall_due

MACHINE_ANSWERS = frozenset(
    {"machine_start", "machine_end_beep", "machine_end_silence", "machine_end_other", "fax"}
)
Outcome = Literal["delivered", "voicemail", "failed", "skipped", "recall"]


def answered_by_human(state: str, answered_by: str | None) -> bool:
    return state == "completed" and (answered_by or "human") not in MACHINE_ANSWERS


def left_voicemail(state: str, answered_by: str | None, amd: str) -> bool:
    """With ``amd: voicemail`` a machine's answer is a left message (Twilio waited for the beep)."""
    return amd == "voicemail" and state == "completed" and (answered_by or "") in MACHINE_ANSWERS


def retryable(state: str, answered_by: str | None, recall_on_machine: bool, permanent: bool) -> bool:
    """Retried on no-answer, busy, retryable failure and (optionally) machine; never after a human answer
    or a permanent error."""
    if permanent:
        return False
    if state == "completed":
        return recall_on_machine and (answered_by or "") in MACHINE_ANSWERS
    return state in ("busy", "no-answer", "failed")


def decide(
    state: str,
    answered_by: str | None,
    *,
    permanent: bool,
    recall: Sequence[float],
    recall_on_machine: bool,
    attempt: int,
    first_at_ms: int | None,
    ended_at_ms: int,
) -> tuple[Outcome, int | None]:
    """(outcome, due time of the recall attempt or None). A left voicemail is final: no recall."""
    if state == "skipped":
        return "skipped", None
    if state == "voicemail":
        return "voicemail", None
    if retryable(state, answered_by, recall_on_machine, permanent):
        due = next_recall_due(
            recall, attempt, first_at_ms if first_at_ms is not None else ended_at_ms, ended_at_ms
        )
        if due is not None:
            return "recall", due
    return ("delivered" if answered_by_human(state, answered_by) else "failed"), None


def call_duration_cost(duration_s: int, price_per_minute: int, state: str) -> int:
    return call_cost(duration_s, price_per_minute) if state == "completed" else 0
