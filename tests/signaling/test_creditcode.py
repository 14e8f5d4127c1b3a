"""Unit tests of :mod:`signaling.creditcode`: the unified social credit code of GB 32100-2015."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from signaling.creditcode import (
    ALPHABET,
    AUTHORITIES,
    ENTITY_TYPES,
    WEIGHTS,
    CreditCodeError,
    check_character,
    is_valid_credit_code,
    normalize_credit_code,
    organization_check_digit,
    validate_credit_code,
)

# Published codes. Each was checked with this module, with the independent computation
# below and with python-stdnum 2.2 (stdnum.cn.uscc); each also satisfies the GB 11714
# digit of its organization-code part.
VALID_CODES = [
    "91350100M000100Y43",  # enterprise, Fuzhou: the standard's commonly cited example
    "91110000802100433B",  # enterprise, Beijing: commonly cited example
    "91110000600037341L",  # enterprise, Beijing: python-stdnum's doctest example
    "12440600MB2C07549J",  # public institution (事业单位), Foshan: cited in xbeginagain/generator#2
    "92141127MA0KD1Y64A",  # individual business (个体工商户), Shanxi: cited in jaywcjlove/regexp-example#23
    "92440300MA5DJJG80F",  # individual business, Shenzhen
    "92440300MA5EEY5XXT",  # individual business, Shenzhen (organization check digit 'X')
]


def reference_check(first17: str) -> str:
    """An independent formulation of the check: Horner's rule with radix 3 modulo 31.

    sum(v_i * 3**(i-1)) mod 31 is computed from the last character backwards; the check
    value is the additive inverse of that sum modulo 31.
    """
    acc = 0
    for ch in reversed(first17):
        acc = (acc * 3 + ALPHABET.index(ch)) % 31
    return ALPHABET[-acc % 31]


def with_check(first17: str) -> str:
    return first17 + reference_check(first17)


# -- valid codes ------------------------------------------------------------------------


@pytest.mark.parametrize("code", VALID_CODES)
def test_published_codes_are_valid(code: str) -> None:
    assert validate_credit_code(code) == code
    assert is_valid_credit_code(code)
    assert validate_credit_code(code, check_organization_code=True) == code
    assert check_character(code[:17]) == code[17] == reference_check(code[:17])


@pytest.mark.parametrize("code", [c for c in VALID_CODES if c.startswith("92")])
def test_individual_business_codes(code: str) -> None:
    assert ENTITY_TYPES[code[0]][code[1]].startswith("individual business")
    assert validate_credit_code(code) == code


def test_normalization_strips_spaces_upper_cases_and_folds_full_width() -> None:
    assert validate_credit_code(" 9135 0100 m000 100y 43\n") == "91350100M000100Y43"
    assert validate_credit_code("91110000802100433b") == "91110000802100433B"
    # Full-width characters as typed with a Chinese input method, and an ideographic space.
    assert validate_credit_code("９１３５０１００Ｍ０００１００Ｙ４３\u3000") == "91350100M000100Y43"
    assert normalize_credit_code("ab c") == "ABC"


def test_every_authority_and_entity_type_in_the_table_is_accepted() -> None:
    assert set(AUTHORITIES) == set(ENTITY_TYPES)
    for authority, types in ENTITY_TYPES.items():
        for entity_type in types:
            code = with_check(f"{authority}{entity_type}110000MA01ABCD4")
            assert validate_credit_code(code) == code


def test_the_main_authorities_have_the_expected_entity_types() -> None:
    assert set(ENTITY_TYPES["1"]) == {"1", "2", "3", "9"}  # institutional establishment
    assert set(ENTITY_TYPES["5"]) == {"1", "2", "3", "9"}  # civil affairs
    assert set(ENTITY_TYPES["9"]) == {"1", "2", "3"}  # industry and commerce
    assert set(ENTITY_TYPES["Y"]) == {"1"}  # other


# -- invalid codes ----------------------------------------------------------------------


def error_of(code: str, **kwargs: bool) -> CreditCodeError:
    with pytest.raises(CreditCodeError) as info:
        validate_credit_code(code, **kwargs)
    assert not is_valid_credit_code(code, **kwargs)
    return info.value


def test_changed_check_character() -> None:
    err = error_of("91350100M000100Y44")
    assert str(err) == ("bad check character at position 18: expected '3', got '4' (a character is probably mistyped)")
    assert err.position == 18
    assert err.code == "91350100M000100Y44"


def test_changed_body_character_is_reported_through_the_check_character() -> None:
    err = error_of("91110000802100434B")  # position 17: 3 -> 4
    assert "bad check character at position 18" in str(err)
    assert "got 'B'" in str(err)


@pytest.mark.parametrize(
    ("code", "length"),
    [("91350100M000100Y4", 17), ("91350100M000100Y433", 19), ("9", 1)],
)
def test_wrong_length(code: str, length: int) -> None:
    err = error_of(code)
    assert str(err) == f"a credit code has 18 characters, got {length}"
    assert err.position is None


def test_empty() -> None:
    assert str(error_of("")) == "the credit code is empty"
    assert str(error_of("   ")) == "the credit code is empty"


@pytest.mark.parametrize(
    ("code", "char", "position"),
    [
        ("91350100M000I00Y43", "I", 13),
        ("9135010OM000100Y43", "O", 8),
        ("91350100M000100Z43", "Z", 16),
        ("91350100S000100Y43", "S", 9),
        ("V1350100M000100Y43", "V", 1),
    ],
)
def test_letters_never_used(code: str, char: str, position: int) -> None:
    err = error_of(code)
    never_used = "(the letters I, O, Z, S and V are never used)"
    assert str(err) == f"illegal character '{char}' at position {position} {never_used}"
    assert err.position == position


def test_punctuation_is_illegal() -> None:
    err = error_of("91350100-M000100Y4")
    assert str(err) == "illegal character '-' at position 9"


def test_unknown_registration_authority() -> None:
    code = with_check("B1350100M000100Y4")
    err = error_of(code)
    assert str(err).startswith("unknown registration authority 'B' at position 1 (known: 1, 2, 3, 4, 5, 6, 7, 8, 9, A")
    assert err.position == 1
    assert not is_valid_credit_code(with_check("01350100M000100Y4"))


@pytest.mark.parametrize(
    ("prefix", "allowed"),
    [("94", "1, 2, 3"), ("99", "1, 2, 3"), ("54", "1, 2, 3, 9"), ("Y2", "1")],
)
def test_entity_type_must_belong_to_the_authority(prefix: str, allowed: str) -> None:
    code = with_check(prefix + "350100M000100Y4")
    err = error_of(code)
    authority, entity_type = prefix[0], prefix[1]
    assert f"entity type {entity_type!r} at position 2 is not defined for registration authority {authority!r}" in str(
        err
    )
    assert str(err).endswith(f"allowed: {allowed}")
    assert err.position == 2


def test_division_code_must_be_digits() -> None:
    code = with_check("9135A100M000100Y4")
    err = error_of(code)
    assert str(err) == ("position 5 must be a digit (positions 3-8 are the administrative division code), got 'A'")
    assert err.position == 5


def test_a_genuine_but_irregular_code_is_rejected() -> None:
    # 91350203M0001QKT19 is a real Xiamen company's code (chinabugotech/hutool#4119) that does
    # not satisfy GB 32100-2015's own check character; some Xiamen codes issued before 2016
    # are like that. The validator follows the standard, so the clerk sees why it is refused.
    err = error_of("91350203M0001QKT19")
    assert "expected 'F', got '9'" in str(err)


# -- the organization-code (GB 11714) digit -----------------------------------------------


def test_organization_check_digit_of_published_codes() -> None:
    for code in VALID_CODES:
        assert organization_check_digit(code[8:16]) == code[16]
    assert organization_check_digit("MA5EEY5X") == "X"


def test_organization_check_digit_is_not_enforced_by_default() -> None:
    # A correct position 18 over an organization code whose own digit is wrong (Y4 -> Y5).
    code = with_check("91350100M000100Y5")
    assert validate_credit_code(code) == code
    err = error_of(code, check_organization_code=True)
    assert str(err) == "bad organization code check digit at position 17: expected '4', got '5'"
    assert err.position == 17


def test_organization_check_digit_rejects_bad_input() -> None:
    with pytest.raises(CreditCodeError, match="8 characters"):
        organization_check_digit("1234567")
    with pytest.raises(CreditCodeError, match="illegal character '-' at position 3"):
        organization_check_digit("12-45678")


# -- check_character ----------------------------------------------------------------------


def test_check_character_validates_its_input() -> None:
    assert check_character("91350100m000100y4") == "3"
    with pytest.raises(CreditCodeError, match="17 characters, got 18"):
        check_character("91350100M000100Y43")
    with pytest.raises(CreditCodeError, match="illegal character 'I' at position 2"):
        check_character("9I350100M000100Y4")


def test_weights_are_powers_of_three_and_never_zero_modulo_31() -> None:
    assert len(WEIGHTS) == 17
    assert list(WEIGHTS) == [pow(3, i, 31) for i in range(17)]
    assert all(w % 31 != 0 for w in WEIGHTS)
    assert len(ALPHABET) == 31
    assert not set(ALPHABET) & set("IOZSV")


# -- properties -----------------------------------------------------------------------------

_pairs = [a + t for a, types in ENTITY_TYPES.items() for t in types]
_digits = st.text(alphabet="0123456789", min_size=6, max_size=6)
_chars = st.text(alphabet=ALPHABET, min_size=9, max_size=9)


def _structured_prefixes() -> st.SearchStrategy[str]:
    """17-character prefixes that pass every check but the check character's."""
    return st.builds("".join, st.tuples(st.sampled_from(_pairs), _digits, _chars))


@settings(max_examples=150)
@given(_structured_prefixes())
def test_any_prefix_with_its_check_character_validates(prefix: str) -> None:
    code = prefix + check_character(prefix)
    assert code[17] == reference_check(prefix)
    assert validate_credit_code(code) == code


@settings(max_examples=60)
@given(_structured_prefixes())
def test_every_single_substitution_is_detected(prefix: str) -> None:
    code = prefix + check_character(prefix)
    for i in range(18):
        for ch in ALPHABET + "IOZSV":
            if ch == code[i]:
                continue
            changed = code[:i] + ch + code[i + 1 :]
            assert not is_valid_credit_code(changed), (code, changed)


@settings(max_examples=60)
@given(st.sampled_from(_pairs), _digits, st.text(alphabet=ALPHABET, min_size=8, max_size=8))
def test_strict_mode_accepts_consistent_codes_and_detects_substitutions(pair: str, division: str, body: str) -> None:
    prefix = pair + division + body + organization_check_digit(body)
    code = prefix + check_character(prefix)
    assert validate_credit_code(code, check_organization_code=True) == code
    for i in range(18):
        for ch in ALPHABET:
            if ch != code[i]:
                changed = code[:i] + ch + code[i + 1 :]
                assert not is_valid_credit_code(changed, check_organization_code=True)


@given(st.text(alphabet=ALPHABET, min_size=17, max_size=17))
def test_check_character_agrees_with_the_reference_on_any_prefix(prefix: str) -> None:
    assert check_character(prefix) == reference_check(prefix)
