"""app/subjects.py: reading a seized panel's subscriber records (CSV)."""

import csv
import io
import json

import pytest
from hypothesis import given, settings, strategies as st

from app.subjects import millis, normalise_account, parse_subjects_csv

PROPERTY = settings(deadline=None, database=None)


def attributes(records):
    return {account: json.loads(attrs) for account, attrs in records}


def test_accounts_and_attributes():
    records = parse_subjects_csv('Account,email,payment_ref\nbob,"bob, jr@example.org",PAY-2\nalice,alice@example.org,PAY-1\n'
                                 "00:1a:79:aa:bb:cc,mag@example.org,PAY-3\n")
    assert [account for account, _ in records] == ["00:1A:79:AA:BB:CC", "alice", "bob"]  # sorted, MACs upper-cased
    assert attributes(records)["bob"] == {"email": "bob, jr@example.org", "payment_ref": "PAY-2"}
    assert records[1][1] == '{"email": "alice@example.org", "payment_ref": "PAY-1"}'  # sorted keys: stable for re-imports


@pytest.mark.parametrize("text", ["account\r\nalice\r\n", "account\nalice", " ACCOUNT \n alice \n", "\ufeffaccount\nalice\n",
                                  "\ufeffAccount\r\nalice\r\n", "account\n\nalice\n\n"])
def test_header_case_bom_line_ends_and_blank_lines(text):
    assert parse_subjects_csv(text) == [("alice", "{}")]


def test_a_bom_inside_the_file_is_data():
    assert parse_subjects_csv("account,note\nalice,\ufeffx\n") == [("alice", '{"note": "\ufeffx"}')]


@pytest.mark.parametrize("text", ["", "\ufeff", "user,email\nx,y\n", "\n\naccount\nalice\n", "accounts\nalice\n"])
def test_a_file_without_an_account_column(text):
    with pytest.raises(ValueError, match="needs an 'account' column"):
        parse_subjects_csv(text)


@pytest.mark.parametrize("text, line", [
    ("account,email\n,a@x\n", 2), ("account,email\nalice,a@x\n  ,b@x\n", 3), ("account,email\nalice,a@x\n\n\n,b@x\n", 5),
    ('account,email\nalice,"a\nb\nc"\n,d@x\n', 5), ("email,account\nb@x\n", 2), ("account\n\ufeff\n", None),
])
def test_an_empty_account_names_its_line(text, line):
    if line is None:  # a BOM that is not at the start is a character: the account is not empty
        assert parse_subjects_csv(text) == [("\ufeff", "{}")]
        return
    with pytest.raises(ValueError, match=f"^line {line}: empty account$"):
        parse_subjects_csv(text)


@pytest.mark.parametrize("text, message", [
    ("account,email\nalice,first@x\nalice,second@x\n", "line 3: account 'alice' is also on line 2"),
    ("account,email\nalice,first@x\nbob,b@x\n alice ,second@x\n", "line 4: account 'alice' is also on line 2"),
    ("account\n00:1a:79:aa:bb:cc\n00:1A:79:AA:BB:CC\n", "line 3: account '00:1A:79:AA:BB:CC' is also on line 2"),
    ('\ufeffaccount,note\nalice,"two\nlines"\n\nalice,x\n', "line 5: account 'alice' is also on line 2"),
])
def test_two_rows_for_one_account_are_an_error_naming_both_lines(text, message):
    """Before, the last row silently replaced the first: one of two seized records was lost."""
    with pytest.raises(ValueError) as error:
        parse_subjects_csv(text)
    assert str(error.value) == message


def test_usernames_differing_in_case_are_different_accounts():
    assert [a for a, _ in parse_subjects_csv("account\nAlice\nalice\n")] == ["Alice", "alice"]


def test_short_and_long_rows():
    """As csv.DictReader had it: a missing value is null, a surplus value is dropped."""
    assert attributes(parse_subjects_csv("account,email,ref\nalice,a@x\nbob,b@x,R,extra\n")) == {
        "alice": {"email": "a@x", "ref": None}, "bob": {"email": "b@x", "ref": "R"}}


def test_column_names_are_stripped_in_attributes():
    assert attributes(parse_subjects_csv("account, email \nalice,a@x\n")) == {"alice": {"email": "a@x"}}


# no lone CR: csv.writer leaves it unquoted when the line end is "\n", and then cannot read its own output
TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\r"), max_size=12)


@PROPERTY
@given(rows=st.dictionaries(st.from_regex(r"\A[A-Za-z0-9@._-]{1,12}\Z"), st.tuples(TEXT, TEXT), max_size=8),
       line_end=st.sampled_from(["\n", "\r\n"]), bom=st.booleans())
def test_any_file_the_csv_module_writes_reads_back(rows, line_end, bom):
    rows = {normalise_account(a): v for a, v in rows.items()}
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator=line_end)
    writer.writerow(["account", "email", "note"])
    writer.writerows([account, *values] for account, values in rows.items())
    records = parse_subjects_csv(("\ufeff" if bom else "") + buffer.getvalue())
    assert [a for a, _ in records] == sorted(rows)
    assert attributes(records) == {a: {"email": e, "note": n} for a, (e, n) in rows.items()}


@pytest.mark.parametrize("account, expected", [("00:1a:79:aa:bb:cc", "00:1A:79:AA:BB:CC"), (" 00-1a-79-aa-bb-cc ", "00-1A-79-AA-BB-CC"),
                                               ("alice", "alice"), (" Alice ", "Alice"), ("00:1a:79:aa:bb", "00:1a:79:aa:bb")])
def test_normalise_account(account, expected):
    assert normalise_account(account) == expected


def test_millis():
    assert millis("2026-11-23T06:00:25.123456Z") == "2026-11-23T06:00:25.123Z" and millis(None) is None
