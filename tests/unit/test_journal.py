"""app/journal.py: record framing, and reading a segment back through torn, corrupt and foreign bytes."""

import marshal
import struct
import zlib

import pytest
from hypothesis import given, settings, strategies as st

from app.journal import (HEADER, MAGIC, MAX_RECORD, Gap, decode, encode, frame, pack_headers, read, unpack_headers)

PROPERTY = settings(deadline=None, database=None)


def records_and_gaps(data, offset=0, sealed=True):
    return list(read(data, offset, sealed))


def payloads(items):
    return [item for _, _, item in items if not isinstance(item, Gap)]


def gaps(items):
    return [item for _, _, item in items if isinstance(item, Gap)]


def test_frame_layout():
    data = frame(b"hello")
    assert data[:4] == MAGIC == b"SZJ1" and HEADER.size == 12
    assert struct.unpack("<I", data[4:8])[0] == 5
    assert struct.unpack("<I", data[8:12])[0] == zlib.crc32(struct.pack("<I", 5) + b"hello")  # CRC of length and payload
    assert data[12:] == b"hello" and len(frame(b"")) == 12


def test_encode_is_a_framed_marshal_and_decode_reads_it():
    record = ("src", 1, 1_795_413_625_000_000_000, "node-1", b"host", None, "http", "GET", b"/", b"", "1.1", "1.2.3.4", 5,
              None, None, 80, pack_headers(((b"host", b"h"),)), 0, None, None, 451, 0.25, None)
    data = encode(record)
    assert data == frame(marshal.dumps(record, 4))
    [(start, end, payload)] = records_and_gaps(data)
    assert (start, end) == (0, len(data)) and decode(payload) == record


@pytest.mark.parametrize("payload", [marshal.dumps([1, 2]), marshal.dumps("x"), b"", b"\xff\xff", marshal.dumps((1,))[:-1]])
def test_decode_refuses_what_is_not_a_tuple(payload):
    with pytest.raises((ValueError, EOFError, TypeError)):  # what ingest.py catches as an undecodable record
        decode(payload)


def test_headers_round_trip_and_refusals():
    headers = ((b"host", b"x"), (b"user-agent", b"\xff\x00"), (b"host", b"dup"))
    assert unpack_headers(pack_headers(headers)) == headers and unpack_headers(pack_headers(())) == ()
    for bad in (marshal.dumps([(b"a", b"b")]), marshal.dumps(((b"a",),)), marshal.dumps(((b"a", b"b", b"c"),)), marshal.dumps("x")):
        with pytest.raises(ValueError, match="not \\(name, value\\) pairs"):
            unpack_headers(bad)
    for garbage in (b"", b"\x00", b"\xff\xfe\xfd"):
        with pytest.raises((ValueError, EOFError, TypeError)):
            unpack_headers(garbage)


A, B, C = frame(b"first record"), frame(b"second"), frame(b"third, the last")


def test_intact_records_with_their_offsets():
    data = A + B + C
    assert records_and_gaps(data) == [(0, len(A), b"first record"), (len(A), len(A + B), b"second"),
                                      (len(A + B), len(data), b"third, the last")]
    assert records_and_gaps(data, len(A)) == records_and_gaps(data)[1:]  # resuming where ingest left off
    assert records_and_gaps(b"") == [] and records_and_gaps(data, len(data)) == []


@pytest.mark.parametrize("sealed", [True, False])
def test_a_corrupt_payload_is_a_gap_and_the_next_record_is_found(sealed):
    bad = bytearray(B)
    bad[-1] ^= 0x01
    data = A + bytes(bad) + C
    items = records_and_gaps(data, sealed=sealed)
    assert payloads(items) == [b"first record", b"third, the last"]
    assert gaps(items) == [Gap(len(A), len(B), "checksum mismatch")]


@pytest.mark.parametrize("sealed", [True, False])
def test_garbage_between_records_is_a_gap(sealed):
    garbage = b"\x00" * 7 + b"SZJ" + b"noise SZJ1 more noise"
    items = records_and_gaps(A + garbage + B, sealed=sealed)
    assert payloads(items) == [b"first record", b"second"]
    assert gaps(items) == [Gap(len(A), len(garbage), "no record header")]


def test_a_corrupt_length_in_a_sealed_segment_does_not_swallow_what_follows():
    bad = bytearray(B)
    bad[4:8] = struct.pack("<I", 1000)  # longer than the rest of the segment: looks torn
    items = records_and_gaps(A + bytes(bad) + C, sealed=True)
    assert payloads(items) == [b"first record", b"third, the last"]
    assert gaps(items) == [Gap(len(A), len(B), "torn record")]
    bad[4:8] = struct.pack("<I", MAX_RECORD + 1)  # impossible length: not a header at all
    assert gaps(records_and_gaps(A + bytes(bad) + C)) == [Gap(len(A), len(B), "no record header")]


def test_a_corrupt_length_in_an_unsealed_segment_waits_for_the_rest():
    bad = bytearray(B)
    bad[4:8] = struct.pack("<I", 1000)
    assert records_and_gaps(A + bytes(bad) + C, sealed=False) == [(0, len(A), b"first record")]


@pytest.mark.parametrize("cut", range(1, len(B)))
def test_an_incomplete_tail(cut):
    data = A + B[:cut]
    # unsealed: perhaps still being written, so not a gap; reading stops after the last whole record
    assert records_and_gaps(data, sealed=False) == [(0, len(A), b"first record")]
    # sealed: the writer is gone, so it is torn for good
    reason = "torn record at the end of the segment" if cut < HEADER.size else "torn record"
    assert records_and_gaps(data, sealed=True) == [(0, len(A), b"first record"), (len(A), len(data), Gap(len(A), cut, reason))]


def test_a_record_cut_short_and_then_written_again():
    """A torn record followed by intact ones (a worker killed mid-write, a new one appending)."""
    data = A + B[:9] + C
    assert payloads(records_and_gaps(data, sealed=False)) == [b"first record", b"third, the last"]
    assert gaps(records_and_gaps(data, sealed=False))[0].offset == len(A)


def test_a_record_inside_a_payload_is_not_mistaken_for_one():
    nested = frame(b"outer " + frame(b"inner") + b" tail")
    assert payloads(records_and_gaps(nested + A)) == [b"outer " + frame(b"inner") + b" tail", b"first record"]


PAYLOADS = st.lists(st.binary(max_size=40) | st.builds(marshal.dumps, st.tuples(st.integers(), st.text(max_size=8))),
                    min_size=1, max_size=8)


@st.composite
def damaged_segments(draw):
    """Intact records with some of them damaged (a flipped byte, cut short, or replaced by noise)
    and foreign bytes between some of them. Returns (data, [(offset, payload) of each record left intact])."""
    data, intact = b"", []
    for payload in draw(PAYLOADS):
        record = frame(payload)
        damage = draw(st.sampled_from(["none", "none", "flip", "cut", "noise"]))
        if damage == "flip":
            position = draw(st.integers(0, len(record) - 1))
            record = record[:position] + bytes([record[position] ^ draw(st.integers(1, 255))]) + record[position + 1:]
        elif damage == "cut":
            record = record[:draw(st.integers(0, len(record) - 1))]
        elif damage == "noise":
            record = draw(st.binary(max_size=30))
        else:
            intact.append((len(data), payload))
        data += record + draw(st.sampled_from([b"", b"", b"SZJ1", b"\x00" * 5, b"SZJ1\xff\xff\xff\x00", b"garbage SZ"]))
    return data, intact


@PROPERTY
@given(damaged_segments())
def test_every_intact_record_after_a_bad_one_is_still_found(segment):
    data, intact = segment
    items = records_and_gaps(data, sealed=True)
    found = {(start, end, item) for start, end, item in items if not isinstance(item, Gap)}
    for offset, payload in intact:
        # found where it was written; unless the damage before it happened to complete a valid record
        # reaching over its start (a cut record whose missing bytes the following ones supply), which
        # no reader could tell from a real one
        assert (offset, offset + HEADER.size + len(payload), payload) in found or \
            any(start < offset < end for start, end, _ in found)
    for start, end, payload in found:
        assert data[start:end] == frame(payload)  # nothing but whole, valid records is ever taken as one
    # the records and gaps tile the segment: every byte is accounted for, once
    position = 0
    for start, end, item in items:
        assert start == position and end > start
        if isinstance(item, Gap):
            assert (item.offset, item.length) == (start, end - start)
        position = end
    assert position == len(data)


def test_a_cut_record_completed_by_the_bytes_after_it_is_a_record():
    """What the property above allows for: the reader cannot know those bytes were not written together."""
    whole = frame(b"\x00" * 9)
    data = frame(b"") + whole[:16] + b"\x00" * 5
    assert payloads(records_and_gaps(data)) == [b"", b"\x00" * 9]


@PROPERTY
@given(st.lists(st.binary(max_size=40), min_size=1, max_size=6), st.data())
def test_any_prefix_of_an_unsealed_segment_yields_only_whole_records_and_no_gap(payload_list, data):
    segment = b"".join(frame(p) for p in payload_list)
    cut = data.draw(st.integers(0, len(segment)))
    items = records_and_gaps(segment[:cut], sealed=False)
    assert not gaps(items)
    assert payloads(items) == payload_list[:len(items)]
    ends = [0]
    for p in payload_list:
        ends.append(ends[-1] + HEADER.size + len(p))
    assert len(items) == max(i for i, e in enumerate(ends) if e <= cut)  # every whole record before the cut
    # reading on from where the last one ended, once the rest is there, gives the rest
    resume = items[-1][1] if items else 0
    assert payloads(records_and_gaps(segment, resume, sealed=False)) == payload_list[len(items):]


def test_ingest_decodes_this_versions_records_and_the_older_ones_without_server_ip():
    from app.capture import JOURNAL_FIELDS, JOURNAL_FIELDS_WITHOUT_SERVER_IP
    from app.ingest import HitDecoder

    values = {"source": "0dd0dd00", "sequence": 7, "received_at_ns": 1_795_413_625_123_456_789, "node": "n", "host": b"h",
              "domain": None, "scheme": "http", "method": "GET", "raw_path": b"/x", "query": b"", "http_version": "1.1",
              "client_ip": "192.0.2.1", "client_port": 40000, "peer_ip": "192.0.2.1", "peer_port": 40000,
              "server_ip": "2001:db8::80", "server_port": 8080, "headers": pack_headers(((b"host", b"h"),)), "body_size": 0,
              "body_sha256": None, "form_body": None, "status": 451, "duration_ms": 0.5, "error": None}
    decoder = HitDecoder()
    new = decoder.hit(tuple(values[name] for name in JOURNAL_FIELDS))
    old = decoder.hit(tuple(values[name] for name in JOURNAL_FIELDS_WITHOUT_SERVER_IP))
    assert (new.server_ip, new.server_port) == ("2001:db8::80", 8080)
    assert (old.server_ip, old.server_port) == (None, 8080)
    assert {**vars_of(old), "server_ip": "2001:db8::80"} == vars_of(new)
    assert len(JOURNAL_FIELDS_WITHOUT_SERVER_IP) == len(JOURNAL_FIELDS) - 1
    with pytest.raises(ValueError, match="fields"):
        decoder.hit(tuple(values[name] for name in JOURNAL_FIELDS)[:-2])


def vars_of(hit) -> dict:
    return {name: getattr(hit, name) for name in hit.__slots__}
