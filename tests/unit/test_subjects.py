"""app/subjects.py: reading a seized panel's subscriber records (CSV and JSON), MAC addresses in any notation."""

import csv
import io
import json

import pytest
from hypothesis import given, settings, strategies as st

from app.subjects import MAX_FIELD, SubjectsFileError, normalise_account, parse_subjects, parse_subjects_csv

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


@pytest.mark.parametrize("text", ["user,email\nx,y\n", "\n\naccount\nalice\n", "accounts\nalice\n"])
def test_a_file_without_an_account_column(text):
    with pytest.raises(ValueError, match="needs an 'account' column"):
        parse_subjects_csv(text)


@pytest.mark.parametrize("text, line", [
    ("account,email\n,a@x\n", 2), ("account,email\nalice,a@x\n  ,b@x\n", 3), ("account,email\nalice,a@x\n\n\n,b@x\n", 5),
    ('account,email\nalice,"a\nb\nc"\n,d@x\n', 5), ("email,account\nb@x,\n", 2), ("account\n\ufeff\n", None),
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
    ("account,n\n00:1a:79:aa:bb:cc,1\n001A.79AA.BBCC,2\n", "line 3: account '00:1A:79:AA:BB:CC' is also on line 2"),
    ('\ufeffaccount,note\nalice,"two\nlines"\n\nalice,x\n', "line 5: account 'alice' is also on line 2"),
])
def test_two_rows_for_one_account_are_an_error_naming_both_lines(text, message):
    """Before, the last row silently replaced the first: one of two seized records was lost."""
    with pytest.raises(ValueError) as error:
        parse_subjects_csv(text)
    assert str(error.value) == message + ", with other values; nothing imported"


def test_every_repeated_account_is_listed():
    with pytest.raises(SubjectsFileError) as error:
        parse_subjects_csv("account,n\na,1\nb,1\na,2\nb,2\nc,1\n")
    assert str(error.value) == ("2 accounts repeated with other values: line 4 ('a', also on line 2), "
                                "line 5 ('b', also on line 3); nothing imported")


def test_a_row_repeated_exactly_is_imported_once_and_reported():
    parsed = parse_subjects(b"account,n\nalice,1\nbob,2\nALICE,1\nalice,1\n00-1a-79-aa-bb-cc,3\n001a79aabbcc,3\n", "x.csv")
    assert parsed.records == [("00:1A:79:AA:BB:CC", '{"n": "3"}'), ("ALICE", '{"n": "1"}'), ("alice", '{"n": "1"}'),
                              ("bob", '{"n": "2"}')]
    assert parsed.identical_duplicates == [(5, 2), (7, 6)]


def test_usernames_differing_in_case_are_different_accounts():
    assert [a for a, _ in parse_subjects_csv("account\nAlice\nalice\n")] == ["Alice", "alice"]


def test_short_and_long_rows_are_refused_with_their_lines():
    """Before: a missing value became null and a surplus value was dropped, silently."""
    with pytest.raises(SubjectsFileError) as error:
        parse_subjects_csv("account,email,ref\nalice,a@x\nbob,b@x,R,extra\ncarol,c@x,R\ndave\n")
    assert str(error.value) == ("2 short rows (fewer values than the header's 3) on line 2 (2 values), 5 (1 value); "
                                "1 row with more values than the header's 3 on line 3 (4 values); nothing imported")


def test_a_long_list_of_problems_is_cut_with_a_count():
    text = "account,email\n" + "".join(f"user{i}\n" for i in range(25))
    with pytest.raises(SubjectsFileError, match=r"^25 short rows .* on line 2 \(1 value\), 3 .* 21 \(1 value\) and 5 more; nothing"):
        parse_subjects_csv(text)


def test_unnamed_columns_are_kept_by_position():
    assert attributes(parse_subjects_csv("account,,email,\nalice,x,a@x,\n")) == {
        "alice": {"column 2": "x", "email": "a@x", "column 4": ""}}


@pytest.mark.parametrize("header", ["account,email,Email", "account,Account", "account, email,email "])
def test_two_columns_of_one_name_are_refused(header):
    with pytest.raises(SubjectsFileError, match="^line 1: column . .* has the same name as column"):
        parse_subjects_csv(header + "\n" + ",".join("x" * len(header.split(","))) + "\n")


@pytest.mark.parametrize("data, name, message", [
    (b"", "x.csv", "the file is empty"),
    (b" \r\n\n", "x.csv", "the file is empty"),
    (b"\xef\xbb\xbf\r\n", "x.csv", "the file is empty"),
    (b"account,email\r\n", "x.csv", "no records in the CSV file"),
    (b"[]", "x.json", "no records in the JSON file"),
    ("account\nalice\n".encode("utf-16"), "x.csv", "the file is UTF-16 text; save it as UTF-8 (CSV UTF-8 or JSON)"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "x.csv", "the file is binary (a NUL byte at offset 8), not CSV or JSON text"),
    (b"account,name\nalice,Andr\xe9\n", "x.csv", "line 2: not UTF-8 (byte 0xe9); save the file as UTF-8"),
    (b'account,note\nalice,"never closed\nbob,x\n', "x.csv", "line 2: not readable as CSV (unexpected end of data)"),
    (b'account,note\nalice,"x"y\n', "x.csv", "line 2: not readable as CSV (',' expected after '\"')"),
    (b"account,note\nalice," + b"x" * 1_000_000 + b"\n", "x.csv",
     "line 2: a value over 131,072 characters long (at most 65,536); is this the right file?"),
    (b"account,note\nalice," + b"x" * (MAX_FIELD + 1) + b"\n", "x.csv",
     "line 2: the value of 'note' is 65,537 characters long (at most 65,536); is this the right file?"),
    (b'[{"account": "a", "note": "' + b"x" * 1_000_000 + b'"}]', "x.json",
     "line 1: the value of 'note' is 1,000,000 characters long (at most 65,536); is this the right file?"),
    (b'{"account": "a"}', "x.json", 'line 1: a JSON import is an array of objects ([{"account": ...}, ...])'),
    (b'[{"account": "a"},\n {"account": "b"', "x.json", "line 2: not valid JSON (Expecting ',' delimiter)"),
    (b'[{"account": "a"},\n {"name": "b"}]', "x.json", "line 2: an object without an 'account'"),
    (b'[{"account": "a"},\n "b"]', "x.json", "line 2: each element must be an object with an 'account', not \"b\""),
    (b'[{"account": "a", "n": 1, "n": 2}]', "x.json",
     "line 1: the key 'n' appears twice in one object; which value is meant cannot be told"),
    (b'[{"account": "a", "Account": "b"}]', "x.json", "line 1: an object with 2 account keys ('account', 'Account')"),
    (b'[{"account": null}]', "x.json", "line 1: the account must be text, not null"),
    (b'[{"account": " "}]', "x.json", "line 1: empty account"),
    (b'[{"account": "a"}] [', "x.json", "line 1: text after the end of the JSON array"),
    (b'[{"account": "a"}]', "x.csv", "the CSV needs an 'account' column"),  # the suffix decides
])
def test_a_file_that_cannot_be_read_as_it_is_gets_one_line_saying_why(data, name, message):
    with pytest.raises(SubjectsFileError) as error:
        parse_subjects(data, name)
    assert str(error.value) == message and "\n" not in str(error.value)


def test_json_records():
    parsed = parse_subjects('[{"account": "alice", "email": "a@x", "plan": null},\n'
                            ' {"Account": 12345, "paid": 12.5, "tags": ["x", "é"], "vip": true},\n'
                            ' {"account": "00-1a-79-aa-bb-cc"}, {"account": "alice", "plan": null, "email": "a@x"}]'.encode(), "panel.json")
    assert parsed.format == "json" and parsed.identical_duplicates == [(3, 1)]
    assert attributes(parsed.records) == {"00:1A:79:AA:BB:CC": {}, "12345": {"paid": "12.5", "tags": '["x", "é"]', "vip": "true"},
                                          "alice": {"email": "a@x", "plan": None}}


@pytest.mark.parametrize("name, data, kind", [
    ("panel.json", b'[{"account": "a"}]', "json"), ("PANEL.JSON", b'[{"account": "a"}]', "json"),
    ("panel.txt", b' \n[{"account": "a"}]', "json"), ("panel", b'[{"account": "a"}]', "json"),
    ("panel.txt", b"account\na\n", "csv"), ("panel", b"account\na\n", "csv"), ("panel.CSV", b"account\na\n", "csv"),
])
def test_the_format_is_the_suffix_else_the_content(name, data, kind):
    parsed = parse_subjects(data, name)
    assert parsed.format == kind and parsed.records == [("a", "{}")]


def test_column_names_are_stripped_in_attributes():
    assert attributes(parse_subjects_csv("account, email \nalice,a@x\n")) == {"alice": {"email": "a@x"}}


# no lone CR: csv.writer leaves it unquoted when the line end is "\n", and then cannot read its own output
# no NUL either: a file holding one is refused as binary
TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\x00"), max_size=12)


@PROPERTY
@given(rows=st.dictionaries(st.from_regex(r"\A[A-Za-z0-9@._-]{1,12}\Z"), st.tuples(TEXT, TEXT), min_size=1, max_size=8),
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


@pytest.mark.parametrize("account, expected", [
    ("00:1a:79:aa:bb:cc", "00:1A:79:AA:BB:CC"), (" 00-1a-79-aa-bb-cc ", "00:1A:79:AA:BB:CC"), ("001A7901C30F", "00:1A:79:01:C3:0F"),
    ("001a.7901.c30f", "00:1A:79:01:C3:0F"), ("00-1A-79-01-C3-0F", "00:1A:79:01:C3:0F"),
    ("alice", "alice"), (" Alice ", "Alice"), ("00:1a:79:aa:bb", "00:1a:79:aa:bb"), ("00:1a-79:aa:bb:cc", "00:1a-79:aa:bb:cc"),
    ("001a7901c30", "001a7901c30"), ("001a7901c30fa", "001a7901c30fa"), ("001a.7901c30f", "001a.7901c30f"), ("00:1a:79:aa:bb:cg", "00:1a:79:aa:bb:cg"),
])
def test_normalise_account(account, expected):
    assert normalise_account(account) == expected

