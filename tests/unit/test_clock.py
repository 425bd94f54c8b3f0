"""app/clock.py: steps of the wall clock, seen against the monotonic clock; the kernel's view; and
the NTP daemon's source, from chronyc or timedatectl (here: fakes of them first on PATH)."""

import json
import os
import time

import pytest

from app import clock

# `chronyc -c tracking` for the example in chronyc(1) ("Reference ID : CB00710F (foo.example.net)",
# stratum 3, ref time Fri Jan 27 09:49:17 2017, system time 0.000006523 seconds slow of NTP time,
# frequency 3.225 ppm slow, ... Leap status : Normal), as chronyc's CSV mode prints it: no DNS
# (the address, not the name), times in seconds since the epoch, signed values, no units.
CHRONY_SYNCED = ("CB00710F,203.0.113.15,3,1485510557.000000000,0.000006523,-0.000006747,0.000035822,"
                 "-3.225,-0.000,0.129,0.013639022,0.001100737,64.2,Normal\n")
# chronyd running with no source selected yet.
CHRONY_UNSYNCED = ("00000000,,0,0.000000000,0.000000000,0.000000000,0.000000000,0.000,0.000,0.000,"
                   "1.000000000,1.000000000,0.0,Not synchronised\n")
# A reference clock: its reference ID as text in place of an address.
CHRONY_REFCLOCK = ("50505300,PPS,1,1700000000.250000000,-0.000000120,-0.000000080,0.000000200,"
                   "12.345,0.001,0.010,0.000000001,0.000010000,16.0,Normal\n")

# `timedatectl show-timesync --all` (systemd's timedatectl.c prints NTPMessage this way, once a
# packet was received; LC_ALL=C spans).
TIMESYNCD_SYNCED = """LinkNTPServers=
SystemNTPServers=
RuntimeNTPServers=
FallbackNTPServers=ntp.example
ServerName=ntp.example
ServerAddress=192.0.2.123
RootDistanceMaxUSec=5s
PollIntervalMinUSec=32s
PollIntervalMaxUSec=34min 8s
PollIntervalUSec=2min 8s
NTPMessage={ Leap=0, Version=4, Mode=4, Stratum=2, Precision=-25, RootDelay=1.678ms, RootDispersion=30.518us, Reference=C944588A, OriginateTimestamp=Mon 2024-03-04 10:15:02 UTC, ReceiveTimestamp=Mon 2024-03-04 10:15:02 UTC, TransmitTimestamp=Mon 2024-03-04 10:15:02 UTC, DestinationTimestamp=Mon 2024-03-04 10:15:02 UTC, Ignored=no, PacketCount=3, Jitter=1.011ms }
Frequency=-1066917
"""
# timesyncd before it has picked a server or heard from one: no NTPMessage at all.
TIMESYNCD_WAITING = """LinkNTPServers=
SystemNTPServers=
RuntimeNTPServers=
FallbackNTPServers=ntp.example
ServerName=
ServerAddress=
RootDistanceMaxUSec=5s
PollIntervalMinUSec=32s
PollIntervalMaxUSec=34min 8s
PollIntervalUSec=0
Frequency=0
"""


def test_a_step_of_the_wall_clock_is_seen_once_and_slewing_is_not(monkeypatch):
    monkeypatch.setattr(clock, "ntp_source", lambda: {"ntp": None, "ntp_problem": "not asked here"})
    wall = [1_000_000.0]
    monkeypatch.setattr(time, "time", lambda: wall[0] + time.monotonic())
    watch = clock.StepWatch()
    assert clock.clock_state(watch)["stepped_s"] == 0.0
    wall[0] -= 3 * 86_400  # set back three days
    # (the fake wall clock reads the monotonic one again: a microsecond may pass between the two reads)
    assert clock.clock_state(watch)["stepped_s"] == pytest.approx(-259_200.0, abs=0.001)
    assert clock.clock_state(watch)["stepped_s"] == 0.0  # reported with the checkpoint after it only
    wall[0] += 0.5  # within STEP_S: slewing or jitter, not a step
    assert clock.clock_state(watch)["stepped_s"] == 0.0


def test_the_kernel_clock_reading_has_every_field():
    reading = clock.kernel_clock()
    assert set(reading) == {"synchronised", "est_error_us", "max_error_us", "offset_us"}
    assert reading["synchronised"] in (True, False, None)


# Parsing the tools' documented output.

def test_chronyc_tracking_csv_gives_source_stratum_offset_and_leap():
    assert clock.parse_chronyc_tracking(CHRONY_SYNCED) == {
        "daemon": "chrony", "source": "203.0.113.15", "server_name": None, "ref_id": "CB00710F",
        "stratum": 3, "ref_time": 1485510557.0, "offset_s": 0.000006523,  # slow: NTP time minus ours > 0
        "root_delay_s": 0.013639022, "root_dispersion_s": 0.001100737, "leap": "Normal"}


def test_chronyc_unsynchronised_and_reference_clock():
    unsynced = clock.parse_chronyc_tracking(CHRONY_UNSYNCED)
    assert (unsynced["source"], unsynced["stratum"], unsynced["ref_time"], unsynced["leap"]) == \
        (None, 0, None, "Not synchronised")
    refclock = clock.parse_chronyc_tracking(CHRONY_REFCLOCK)
    assert (refclock["source"], refclock["ref_id"], refclock["stratum"], refclock["offset_s"]) == \
        ("PPS", "50505300", 1, -0.00000012)


@pytest.mark.parametrize("text", [
    "",
    "506 Cannot talk to daemon\n",
    "Reference ID    : CB00710F (foo.example.net)\nStratum         : 3\n",  # not the CSV form
    CHRONY_SYNCED.replace(",Normal", ""),  # a field short
    CHRONY_SYNCED.replace("CB00710F", "0xB00710F"),
    CHRONY_SYNCED.replace(",3,", ",three,"),
    CHRONY_SYNCED.replace("0.000006523", "nan"),
    CHRONY_SYNCED.replace("Normal", "Sideways"),
    CHRONY_SYNCED + CHRONY_SYNCED,
])
def test_chronyc_output_not_of_the_documented_form_is_refused(text):
    with pytest.raises(ValueError):
        clock.parse_chronyc_tracking(text)


def test_timedatectl_show_timesync_gives_server_stratum_and_leap_but_no_offset():
    assert clock.parse_timedatectl_timesync(TIMESYNCD_SYNCED) == {
        "daemon": "systemd-timesyncd", "source": "192.0.2.123", "server_name": "ntp.example",
        "ref_id": "C944588A", "stratum": 2, "ref_time": None, "offset_s": None,  # not in this output
        "root_delay_s": pytest.approx(0.001678), "root_dispersion_s": pytest.approx(0.000030518),
        "leap": "Normal"}


def test_timedatectl_before_any_server_answered_claims_nothing():
    assert clock.parse_timedatectl_timesync(TIMESYNCD_WAITING) == {
        "daemon": "systemd-timesyncd", "source": None, "server_name": None, "ref_id": None,
        "stratum": None, "ref_time": None, "offset_s": None, "root_delay_s": None,
        "root_dispersion_s": None, "leap": None}


def test_timedatectl_leap_alarm_and_odd_spans():
    text = TIMESYNCD_SYNCED.replace("Leap=0", "Leap=3").replace("RootDelay=1.678ms", "RootDelay=soon")
    parsed = clock.parse_timedatectl_timesync(text)
    assert (parsed["leap"], parsed["root_delay_s"]) == ("Not synchronised", None)


@pytest.mark.parametrize("text", ["", "Failed to connect to bus\n", "ServerName=x\nNTPMessage=Leap=0\n",
                                  "ServerName=x\nNTPMessage={ Stratum=two }\n"])
def test_timedatectl_output_not_of_the_documented_form_is_refused(text):
    with pytest.raises(ValueError):
        clock.parse_timedatectl_timesync(text)


# The subprocess path, end to end, with fakes of the tools first (and alone) on PATH.

@pytest.fixture
def fake_bin(tmp_path, monkeypatch):
    """A directory that is the whole PATH; `put(name, body)` adds a shell script there."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    monkeypatch.setenv("PATH", str(bin_dir))

    def put(name: str, body: str):
        path = bin_dir / name
        path.write_text("#!/bin/sh\n" + body)
        path.chmod(0o755)
    return put


def test_chrony_answering_through_the_subprocess(fake_bin, tmp_path):
    (tmp_path / "out").write_text(CHRONY_SYNCED)
    fake_bin("chronyc", f'[ "$*" = "-c tracking" ] || exit 2\n[ "$LC_ALL" = C ] || exit 3\n'
                        f'/bin/cat {tmp_path / "out"}\n')
    fake_bin("timedatectl", "exit 99\n")  # not asked: chrony answered
    state = clock.ntp_source()
    assert state["ntp_problem"] is None
    assert state["ntp"]["daemon"] == "chrony" and state["ntp"]["source"] == "203.0.113.15"


def test_timesyncd_is_asked_when_chronyc_fails(fake_bin, tmp_path):
    (tmp_path / "out").write_text(TIMESYNCD_SYNCED)
    fake_bin("chronyc", 'echo "506 Cannot talk to daemon"\nexit 1\n')
    fake_bin("timedatectl", f'[ "$*" = "show-timesync --all" ] || exit 2\n/bin/cat {tmp_path / "out"}\n')
    state = clock.ntp_source()
    assert state["ntp_problem"] is None
    assert (state["ntp"]["daemon"], state["ntp"]["server_name"], state["ntp"]["stratum"]) == \
        ("systemd-timesyncd", "ntp.example", 2)


def test_both_failing_gives_no_source_and_each_reason(fake_bin):
    fake_bin("chronyc", 'echo "506 Cannot talk to daemon"\nexit 1\n')
    fake_bin("timedatectl", 'echo "Failed to connect to bus: No such file or directory" >&2\nexit 1\n')
    assert clock.ntp_source() == {"ntp": None, "ntp_problem":
                                  "chronyc: exit 1: 506 Cannot talk to daemon; "
                                  "timedatectl: exit 1: Failed to connect to bus: No such file or directory"}


def test_odd_output_with_exit_0_gives_no_source(fake_bin):
    fake_bin("chronyc", 'echo "hello, world"\n')
    state = clock.ntp_source()
    assert state["ntp"] is None
    assert state["ntp_problem"].startswith("chronyc: unexpected output (")
    assert state["ntp_problem"].endswith("; timedatectl: not found on PATH")


def test_no_daemon_at_all(fake_bin):
    assert clock.ntp_source() == {"ntp": None,
                                  "ntp_problem": "chronyc: not found on PATH; timedatectl: not found on PATH"}


def _gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] == "Z"  # a zombie awaiting its reaper
    except FileNotFoundError:
        return True


def test_a_hanging_chronyc_is_cut_at_the_timeout_with_its_children(fake_bin, tmp_path):
    pid_file = tmp_path / "sleep.pid"
    fake_bin("chronyc", f"/bin/sleep 10 &\necho $! > {pid_file}\nwait\n")
    fake_bin("timedatectl", "echo should not be asked; exit 1\n")
    started = time.monotonic()
    state = clock.clock_state(clock.StepWatch())  # the default budget, NTP_TIMEOUT_S = 2 s
    took = time.monotonic() - started
    assert clock.NTP_TIMEOUT_S <= took < clock.NTP_TIMEOUT_S + 1.5
    assert state["ntp"] is None
    assert state["ntp_problem"] == "chronyc: no answer within 2.0 s; timedatectl: not asked: no time left"
    pid = int(pid_file.read_text())
    deadline = time.monotonic() + 2
    while not _gone(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _gone(pid), "the hanging tool's child was left running"


def test_the_budget_is_shared_by_both_tools(fake_bin):
    fake_bin("chronyc", "exit 1\n")
    fake_bin("timedatectl", "exec /bin/sleep 10\n")
    started = time.monotonic()
    state = clock.ntp_source(timeout=0.5)
    assert time.monotonic() - started < 1.5
    assert state["ntp"] is None
    assert state["ntp_problem"].startswith("chronyc: exit 1; timedatectl: no answer within 0.")


def test_the_clock_record_is_json_with_the_ntp_keys(fake_bin, tmp_path):
    (tmp_path / "out").write_text(CHRONY_SYNCED)
    fake_bin("chronyc", f"/bin/cat {tmp_path / 'out'}\n")
    record = json.loads(json.dumps(clock.clock_state(clock.StepWatch()), sort_keys=True, allow_nan=False))
    assert {"synchronised", "est_error_us", "max_error_us", "offset_us", "stepped_s", "ntp", "ntp_problem"} <= set(record)
    assert record["ntp"]["leap"] == "Normal" and record["ntp_problem"] is None
