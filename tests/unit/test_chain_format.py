"""app/chain_format.py: format 2's canonical bytes, from a record and from an ingest row alike, and
the published test vectors (tests/vectors/chain-v2.json) still computed exactly."""

import json
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

from app.chain_format import GENESIS, V2_FIELDS, canonical_row, canonical_v2, leaf_v2, link_v2
from app.evidence import checkpoint_message, signature_valid
from app.record import COLUMNS

VECTORS = json.loads((Path(__file__).parents[1] / "vectors" / "chain-v2.json").read_text("utf-8"))
PROPERTY = settings(deadline=None, database=None, max_examples=300)
TEXT = st.one_of(st.text(max_size=10), st.text(min_size=40, max_size=120),  # long strings take the remembered path
                 st.text(st.characters(max_codepoint=0x20), max_size=20), st.sampled_from(["\u2028\u2029", "\U0010ffff", "é€📺"]))
OPTIONAL_TEXT = st.one_of(st.none(), TEXT)
INTEGER = st.integers(0, 2**53 - 1)


@st.composite
def rows(draw):
    """An ingest row (COLUMNS order) as record.py makes them: headers and device as compact JSON text."""
    values = {name: draw(OPTIONAL_TEXT) for name in COLUMNS}
    for name in ("client_port", "peer_port", "server_port", "asn"):
        values[name] = draw(st.one_of(st.none(), INTEGER))
    values.update(body_size=draw(INTEGER), status=draw(st.integers(100, 599)),
                  duration_ms=round(draw(st.integers(0, 10**12)) / 1000, 3))
    headers = draw(st.lists(st.tuples(TEXT, TEXT), max_size=4))
    values["headers"] = json.dumps([list(h) for h in headers], ensure_ascii=False, separators=(",", ":"))
    device = draw(st.one_of(st.none(), st.dictionaries(TEXT, TEXT, min_size=1, max_size=3)))
    values["device"] = None if device is None else json.dumps(device, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return tuple(values[name] for name in COLUMNS)


@PROPERTY
@given(rows())
def test_an_ingest_row_and_its_record_give_the_same_bytes(row):
    record = dict(zip(COLUMNS, row))
    assert canonical_row(row) == canonical_v2(record) == canonical_row(row)  # the second time remembered
    # as readers get it too: headers and device as JSON values
    parsed = {**record, "headers": json.loads(record["headers"]),
              "device": None if record["device"] is None else json.loads(record["device"])}
    assert canonical_v2(parsed) == canonical_v2(record)


def test_the_canonical_form_is_an_array_of_integers_and_strings():
    record = VECTORS["hits"][1]["record"]
    text = canonical_v2(record).decode()
    assert text.startswith('[2,"0000018f2b3c4d5f') and ",12000," in text  # 12.0 ms: 12000 µs, never 12.0
    assert '"device"' not in text and '{"mac":"00:1a:79:01:c3:0f","model":"MAG250","serial":"SNé"}' in text
    for bad in (1.5, True):
        with pytest.raises(ValueError):
            canonical_v2({**record, "asn": bad})


def test_the_published_vectors():
    assert VECTORS["fields"] == list(V2_FIELDS) and VECTORS["genesis"] == GENESIS
    prev = GENESIS
    for hit in VECTORS["hits"]:
        assert canonical_v2(hit["record"]).decode() == hit["canonical"]
        assert leaf_v2(hit["record"]) == hit["leaf"] and hit["prev_hash"] == prev
        prev = link_v2(prev, hit["leaf"])
        assert prev == hit["hash"]
    cp = VECTORS["checkpoint"]
    message = checkpoint_message(cp["node"], cp["count"], cp["last_id"], cp["head"], cp["at"], cp["clock"])
    assert message.decode() == cp["message"] and cp["head"] == prev
    assert signature_valid(cp["public_key"], message, cp["signature"])
