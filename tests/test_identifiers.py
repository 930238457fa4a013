"""National identifiers: the NIR (I1) and the RPPS (I2)."""

import pytest
from django import forms
from django.core.exceptions import ValidationError
from hypothesis import given
from hypothesis import strategies as st

from records.identifiers import (
    NIRField,
    make_nir,
    nir_key,
    nir_validator,
    normalize_nir,
    validate_nir,
    validate_rpps,
)


def _code(exc_info) -> str:
    return exc_info.value.code


def test_published_key_vectors__I1():
    assert nir_key("1370476243484") == "15"
    assert nir_key("2620875032039") == "77"
    assert validate_nir("137047624348415") == "137047624348415"
    assert validate_nir("262087503203977") == "262087503203977"


def test_spaces_dots_and_lower_case_are_normalised__I1():
    assert normalize_nir(" 1 37 04.76 243 484 15 ") == "137047624348415"
    assert validate_nir("2 53 07 2a 073 004 43") == "253072A07300443"


@given(st.text(alphabet="0123456789ABab2 .-\u00a0\uff11\u2013", max_size=20))
def test_normalising_skips_the_library_only_for_what_it_leaves_as_is__I1(value):
    from stdnum.util import clean

    assert normalize_nir(value) == clean(value, " .-\u00a0").strip().upper()


def test_corsica_departments_count_as_19_and_18__I1():
    # 2A is computed as 19 and 2B as 18 before the mod-97 key (stdnum's own test vectors).
    assert nir_key("253072A073004") == "43"
    assert nir_key("253072B073004") == "70"
    assert make_nir("253072A073004") == "253072A07300443"
    assert nir_key("253072A073004") == nir_key("2530719073004")
    assert nir_key("253072B073004") == nir_key("2530718073004")
    with pytest.raises(ValidationError) as exc_info:
        validate_nir("253072A07300470")  # the 2B key on a 2A number
    assert _code(exc_info) == "nir_key"


@pytest.mark.parametrize("month", ["01", "12", "20", "30", "42", "50", "63", "99"])
def test_real_and_fictitious_months_are_accepted__I1(month):
    assert validate_nir(make_nir(f"180{month}75123456"))[3:5] == month


@pytest.mark.parametrize("month", ["00", "13", "19", "43", "49"])
def test_impossible_months_are_rejected__I1(month):
    body = f"180{month}75123456"
    with pytest.raises(ValidationError) as exc_info:
        validate_nir(body + nir_key(body))
    assert _code(exc_info) == "nir_month"


@pytest.mark.parametrize("sex", ["1", "2", "3", "4", "7", "8"])
def test_sex_digit_includes_temporary_numbers__I1(sex):
    assert validate_nir(make_nir(f"{sex}800175123456"))


@pytest.mark.parametrize("sex", ["0", "5", "6", "9"])
def test_other_sex_digits_are_rejected__I1(sex):
    body = f"{sex}800175123456"
    with pytest.raises(ValidationError) as exc_info:
        validate_nir(body + nir_key(body))
    assert _code(exc_info) == "nir_sex"


def test_wrong_key_is_rejected_with_a_clear_message__I1():
    with pytest.raises(ValidationError) as exc_info:
        validate_nir("137047624348416")
    assert _code(exc_info) == "nir_key"
    assert "clé du NIR" in exc_info.value.messages[0]


@pytest.mark.parametrize("value", ["1370476243484", "1370476243484150", "13704762434"])
def test_wrong_length_is_rejected_with_the_count__I1(value):
    with pytest.raises(ValidationError) as exc_info:
        validate_nir(value)
    assert _code(exc_info) == "nir_length"
    assert f"{len(value)} ont été saisis" in exc_info.value.messages[0]


@pytest.mark.parametrize(
    "value",
    [
        "A37047624348415",  # a letter outside the department
        "13704762434841X",  # a letter that is not A or B
        "253072C07300443",  # 2C is no department
        "2530720A7300443",  # A at the wrong position
        "1370476-2434815",  # hyphens are removed, so this is too short (length reported first)
    ],
)
def test_letters_and_misplaced_characters_are_rejected__I1(value):
    with pytest.raises(ValidationError) as exc_info:
        validate_nir(value)
    assert _code(exc_info) in {"nir_format", "nir_length"}


def test_letters_outside_a_and_b_give_the_format_message__I1():
    with pytest.raises(ValidationError) as exc_info:
        validate_nir("13704762434841X")
    assert _code(exc_info) == "nir_format"
    assert "chiffres" in exc_info.value.messages[0]


def test_empty_nir_is_required__I1():
    with pytest.raises(ValidationError) as exc_info:
        validate_nir("  ")
    assert _code(exc_info) == "nir_required"


@given(
    st.sampled_from("123478"),
    st.integers(0, 99),
    st.sampled_from([*range(1, 13), *range(20, 43), *range(50, 100)]),
    st.sampled_from(["75", "2A", "2B", "97", "99", "01"]),
    st.integers(0, 999_999),
)
def test_made_nirs_validate_and_any_other_key_fails__I1(sex, year, month, department, rest):
    nir = make_nir(f"{sex}{year:02d}{month:02d}{department}{rest:06d}")
    assert validate_nir(nir) == nir
    wrong_key = f"{(int(nir[13:]) + 1) % 100:02d}"
    with pytest.raises(ValidationError):
        validate_nir(nir[:13] + wrong_key)


def test_form_field_cleans_to_the_stored_form__I1():
    class Form(forms.Form):
        nir = NIRField()

    form = Form(data={"nir": "1 37 04 76 243 484 15"})
    assert form.is_valid()
    assert form.cleaned_data["nir"] == "137047624348415"
    form = Form(data={"nir": "1 37 04 76 243 484 16"})
    assert not form.is_valid()
    assert "clé du NIR" in form.errors["nir"][0]


def test_model_validator_wants_the_normalised_form__I1():
    nir_validator("137047624348415")
    with pytest.raises(ValidationError):
        nir_validator("1 37 04 76 243 484 15")


@pytest.mark.parametrize("rpps", ["10005173140", "10100534436"])
def test_public_rpps_samples_pass_without_warning__I2(rpps):
    assert validate_rpps(rpps) == (rpps, [])


def test_full_width_digits_are_read_as_digits__I1_I2():
    assert validate_rpps("１０００５１７３１４０") == ("10005173140", [])
    assert validate_nir("１３７０４７６２４３４８４１５") == "137047624348415"


def test_rpps_luhn_failure_is_only_a_warning__I2():
    rpps, warnings = validate_rpps("100 0517 3141")
    assert rpps == "10005173141"
    assert len(warnings) == 1
    assert "Luhn" in warnings[0]


@pytest.mark.parametrize("value", ["1000517314", "100051731400", "1000517314A", "", "1000517314O"])
def test_rpps_must_have_eleven_digits__I2(value):
    with pytest.raises(ValidationError) as exc_info:
        validate_rpps(value)
    assert _code(exc_info) == "rpps_format"
    assert "11 chiffres" in exc_info.value.messages[0]
