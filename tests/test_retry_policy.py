"""One retry policy for every request: the sender's rows and the calls listed follow the same settings.

Against the emulator over loopback, with its faults turned on: the number of
requests the emulator received is what a user would check (how hard did it
try?), and the message says when it gave up.
"""

from __future__ import annotations

import pytest

from uploader import find_calls, upload_rows
from uploader.config import Settings
from uploader.errors import ApiUnavailable
from uploader.pacing import RETRYABLE_STATUS, RetryPolicy
from uploader.targets import TARGETS

from conftest import TOKEN

ORG = {"organization_type": "Advertiser", "organization_id": "1234"}
ROW = {"Transaction ID": "00000000-00000001", "Name": "Sale", "Partner Unique ID": "r-1", "Sale Amount": "10"}


def upload(emulator, tmp_path, **options):
    return upload_rows(
        [ROW],
        source="retry-policy",
        base_url=emulator.base_url,
        token=TOKEN,
        timezone="UTC",
        state_dir=tmp_path / "state",
        **options,
    )


@pytest.mark.parametrize("attempts", [1, 3])
def test_rows_and_listings_try_as_often_as_the_setting_says(emulator, tmp_path, attempts):
    emulator.control("faults", {"fail_rate": 1.0})  # every answer a 503
    before = emulator.requests
    result = upload(emulator, tmp_path, max_attempts=attempts)
    assert result.rows.loc[0, "status"] == "failed" and result.rows.loc[0, "http_status"] == "503"
    assert emulator.requests - before == attempts
    if attempts > 1:
        assert f"gave up after {attempts} attempts" in result.rows.loc[0, "error"]

    before = emulator.requests
    with pytest.raises(ApiUnavailable, match=f"gave up after {attempts} attempts"):
        find_calls(base_url=emulator.base_url, token=TOKEN, max_attempts=attempts, **ORG)
    assert emulator.requests - before == attempts  # the same count, from the same setting


def test_a_long_retry_after_gives_up_at_once_for_rows_and_listings(emulator, tmp_path):
    # A 429 asking for more than the policy waits (120 s) is given up on its first answer, by both.
    emulator.control("faults", {"rate_limit_rate": 1.0, "retry_after": 600})
    before = emulator.requests
    result = upload(emulator, tmp_path, max_attempts=5)
    assert result.rows.loc[0, "error_class"] == "RetryAfterTooLong"
    assert emulator.requests - before == 1
    before = emulator.requests
    with pytest.raises(ApiUnavailable, match="asked to wait 600 s"):
        find_calls(base_url=emulator.base_url, token=TOKEN, max_attempts=5, **ORG)
    assert emulator.requests - before == 1


def test_the_policy_comes_from_the_settings_and_the_target():
    settings = Settings(api="calls_in_progress", max_attempts=4)
    assert settings.retry == RetryPolicy(
        max_attempts=4, statuses=frozenset(TARGETS["calls_in_progress"].retry_statuses)
    )
    assert settings.retry.statuses == RETRYABLE_STATUS  # this target keeps the default statuses
