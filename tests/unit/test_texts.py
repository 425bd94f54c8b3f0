"""app/notice/texts.py: the language of the notice, from Accept-Language (RFC 9110 12.5.4)."""

import pytest
from hypothesis import assume, given, settings, strategies as st

from app.notice.texts import choose_language, load_languages

PROPERTY = settings(deadline=None, database=None)
AVAILABLE = {"en": {}, "it": {}, "fr": {}}


@pytest.mark.parametrize("header, default, expected", [
    ("", "it", "it"), ("", "de", "en"), ("de", "de", "en"), ("*", "fr", "fr"), ("de, *;q=0.5", "it", "it"),
    ("it", "en", "it"), ("IT", "en", "it"), ("it-IT", "en", "it"), ("it_IT", "en", "en"), ("  it  ", "en", "it"),
    ("fr, it;q=0.8, en;q=0.9", "it", "fr"), ("de-DE, it;q=0.8, en;q=0.9", "it", "en"),
    ("en;q=0.5, it;q=0.5", "fr", "en"), ("it;q=0.5, en;q=0.5", "fr", "it"),  # equal q: the first listed
    ("it ; q=0.3 , en ; q=0.2", "fr", "it"),  # optional whitespace around `;`
    ("it;Q=0.3, en;q=0.2", "fr", "it"),  # parameter names are case-insensitive
    ("it;q=1.000, en;q=0.999", "fr", "it"), ("it;q=1., en;q=0.9", "fr", "it"), ("it;q=0.001", "fr", "it"),
    ("it;level=1, en;q=0.9", "fr", "it"),  # another parameter, no q: q is 1
    # the bugs: q was only read when it was the first parameter, and any float was taken
    ("it;level=1;q=0.1, en;q=0.9", "fr", "en"),
    ("it;q=5, en;q=0.2", "fr", "en"), ("it;q=1.5, en;q=0.2", "fr", "en"), ("it;q=1.001, en;q=0.2", "fr", "en"),
    ("it;q=inf, en;q=0.2", "fr", "en"), ("it;q=1e0, en;q=0.2", "fr", "en"), ("it;q=0.5e1, en;q=0.2", "fr", "en"),
    ("it;q=0.0001, en;q=0.2", "fr", "en"), ("it;q=.5, en;q=0.2", "fr", "en"), ("it;q=+1, en;q=0.2", "fr", "en"),
    ("it;q=1_0, en;q=0.2", "fr", "en"), ("it;q=\u0661, en;q=0.2", "fr", "en"),  # ARABIC-INDIC DIGIT ONE
    ("it;q=0.5;q=1, en;q=0.6", "fr", "en"),  # q given twice: malformed, ignored
    ("it;q=, en;q=0.2", "fr", "en"), ("it;q, en;q=0.2", "fr", "en"), ("it;q=-1, en;q=0.2", "fr", "en"),
    ("it;q=nan, en;q=0.2", "fr", "en"), ("it;q=\"0.5\", en;q=0.2", "fr", "en"),
    # q=0 is "not acceptable": never chosen, whatever its place
    ("it;q=0", "fr", "fr"), ("it;q=0.000, en", "fr", "en"), ("it;q=0., fr;q=0.001", "en", "fr"), ("it;level=1;q=0", "fr", "fr"),
    ("en;q=0, it;q=0", "en", "en"),  # nothing acceptable: the default, as RFC 9110 12.1 allows
])
def test_choose_language(header, default, expected):
    assert choose_language(header, AVAILABLE, default) == expected


def test_only_the_first_32_entries_are_read():
    assert choose_language(", ".join([f"x{i}" for i in range(32)] + ["it"]), AVAILABLE, "fr") == "fr"
    assert choose_language(", ".join([f"x{i}" for i in range(31)] + ["it"]), AVAILABLE, "fr") == "it"


QVALUE = st.one_of(st.just("1"), st.just("1.0"), st.just("1.000"), st.just("0"),
                   st.integers(0, 999).flatmap(lambda n: st.sampled_from([f"0.{n:03d}", f"0.{n:03d}".rstrip("0")])))


@PROPERTY
@given(q_it=QVALUE, q_en=QVALUE, it_first=st.booleans(), extra=st.sampled_from(["", ";level=1", ";a=b;c=d"]))
def test_the_highest_valid_q_wins(q_it, q_en, it_first, extra):
    entries = [f"it{extra};q={q_it}", f"en;q={q_en}{extra}"]
    header = ", ".join(entries if it_first else entries[::-1])
    a, b = float(q_it), float(q_en)
    if a == b == 0:
        expected = "fr"
    elif a == b:
        expected = "it" if it_first else "en"
    else:
        expected = "it" if a > b else "en"
    assert choose_language(header, AVAILABLE, "fr") == expected


@PROPERTY
@given(q=st.text(max_size=8) | st.from_regex(r"\A[0-9.eE+_ -]{1,7}\Z"))
def test_an_invalid_q_voids_its_entry(q):
    import re
    assume(not re.fullmatch(r"\s*(0(\.[0-9]{0,3})?|1(\.0{0,3})?)\s*", q) and "," not in q and ";" not in q)
    assert choose_language(f"it;q={q}, en;q=0.1", AVAILABLE, "fr") == "en"


@PROPERTY
@given(header=st.text(max_size=200), default=st.sampled_from(["en", "it", "xx"]))
def test_never_raises_and_always_names_an_available_language(header, default):
    assert choose_language(header, AVAILABLE, default) in AVAILABLE


def test_the_shipped_languages_load():
    languages = load_languages()
    assert {"en", "it"} <= set(languages) and set(languages["it"]) == set(languages["en"])


def test_a_language_file_missing_a_key_is_refused(tmp_path):
    (tmp_path / "en.toml").write_text('title = "Seized"\nbody = "x"\n')
    (tmp_path / "De.toml").write_text('title = "Beschlagnahmt"\n')
    with pytest.raises(RuntimeError, match=r"de\.toml lacks \['body'\]"):
        load_languages(tmp_path)


def test_english_is_required(tmp_path):
    (tmp_path / "it.toml").write_text('title = "Sequestrato"\n')
    with pytest.raises(RuntimeError, match="en.toml"):
        load_languages(tmp_path)
