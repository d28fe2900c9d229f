"""Request and answer examples for the OpenAPI document, taken from the seed documents (DESIGN seeds)."""

from __future__ import annotations

from typing import Any

# seed 003, example 5.4 (with a `say` message: this dialer speaks it; `playbook_id` is stored and reported)
SEED_003_CAMPAIGN: dict[str, Any] = {
    "playbook_id": "550e8400-e29b-41d4-a716-446655440000",
    "say": "Hello {{first_name|there}}, this is a reminder about your appointment.",
    "contacts": [
        {"phone": "+34600123456", "first_name": "Juan"},
        {"phone": "+34600987654", "first_name": "María"},
    ],
    "launch_at": "2027-03-01T10:00:00",
    "recall": "[30,120]",
}
# seed 003, 6.2 (plus `status`)
SEED_003_ACCEPTED: dict[str, Any] = {
    "success": True,
    "message": "Scheduled 2 calls for 01/03/2027 10:00",
    "campaign_id": "a1b2c3d4e5f6",
    "status": "scheduled",
    "scheduled": True,
    "launch_at": "2027-03-01T10:00:00.000Z",
    "total_contacts": 2,
    "scheduled_calls": 2,
    "error_calls": 0,
}
# seed 004, the scheduled answer
SEED_004_STARTED: dict[str, Any] = {
    "success": True,
    "message": "Campaign scheduled for 2027-02-15 09:00:00 UTC",
    "task_id": "a1b2c3d4e5f6@1802682000000",
    "campaign_id": "a1b2c3d4e5f6",
    "status": "scheduled",
    "scheduled_time": "2027-02-15T09:00:00.000Z",
}
# seed 000's provider name
PROVIDER: dict[str, Any] = {
    "name": "twilio_primary",
    "kind": "simulator",
    "from": ["+34911234567"],
    "cps": 1,
    "max_concurrent": 10,
    "hourly_quota": 500,
    "price_per_minute": "0.0135",
}
