"""app/clock.py: steps of the wall clock, seen against the monotonic clock."""

import time

from app import clock


def test_a_step_of_the_wall_clock_is_seen_once_and_slewing_is_not(monkeypatch):
    wall = [1_000_000.0]
    monkeypatch.setattr(time, "time", lambda: wall[0] + time.monotonic())
    watch = clock.StepWatch()
    assert clock.clock_state(watch)["stepped_s"] == 0.0
    wall[0] -= 3 * 86_400  # set back three days
    assert clock.clock_state(watch)["stepped_s"] == -259_200.0
    assert clock.clock_state(watch)["stepped_s"] == 0.0  # reported with the checkpoint after it only
    wall[0] += 0.5  # within STEP_S: slewing or jitter, not a step
    assert clock.clock_state(watch)["stepped_s"] == 0.0


def test_the_kernel_clock_reading_has_every_field():
    reading = clock.kernel_clock()
    assert set(reading) == {"synchronised", "est_error_us", "max_error_us", "offset_us"}
    assert reading["synchronised"] in (True, False, None)
