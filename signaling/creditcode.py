"""The unified social credit code (统一社会信用代码) of GB 32100-2015.

Every legal entity and other organization in mainland China (companies, individual
businesses, cooperatives, public institutions, social organizations, ...) carries one
18-character code, printed on its business licence. Clerks type it when they log a matter;
this module tells them at once when it cannot be right.

Layout (positions are 1-based, as in the standard)::

    9 1 350100 M000100Y4 3
    | | |      |         +-- 18     check character (ISO 7064 MOD 31-3 style, see below)
    | | |      +------------ 9-17   subject identifier: the organization code of GB 11714
    | | +------------------- 3-8    administrative division code of the registering office (GB/T 2260)
    | +--------------------- 2      entity type code, defined per registration authority
    +----------------------- 1      registration authority code

The alphabet is ``0123456789ABCDEFGHJKLMNPQRTUWXY`` (31 characters: the letters I, O, Z,
S and V are never used); a character's value is its index in that string (A = 10, ..., Y = 30).

The check character: with the weights ``3**(i-1) mod 31`` = 1, 3, 9, 27, 19, 26, 16, 17, 20,
29, 25, 13, 8, 24, 10, 30, 28 over positions 1-17, ``C18 = 31 - (sum mod 31)``, where 31
becomes 0. Every weight is non-zero modulo the prime 31, so any single wrong character
(in positions 1-18) changes the sum modulo 31 and is detected.

What :func:`validate_credit_code` checks:

* the length (18 after normalization) and the alphabet, naming the first illegal character;
* position 1 against the table of registration authorities, and position 2 against the
  entity types defined for that authority (:data:`ENTITY_TYPES`). The table is the one of
  GB 32100-2015 as amended (authorities A and N were added after the 2015 edition), as
  reproduced by several public write-ups of the standard; the standard's own text was not
  available to us. A new authority or type code would be rejected until added here;
* positions 3-8 are six digits. They are *not* looked up in the GB/T 2260 list of
  administrative divisions: the list changes every year and old codes stay valid;
* the check character at position 18.

What it does *not* check by default: the GB 11714 check digit of the organization code at
position 17 (weights 3, 7, 9, 10, 5, 8, 4, 2 over positions 9-16, ``11 - sum mod 11``, with
10 -> ``X`` and 11 -> ``0``; letters valued A = 10 ... Z = 35). GB 32100-2015 defines only
the check character of position 18 itself and refers to GB 11714 for how positions 9-17 are
assigned. Every genuine code we could find does satisfy the GB 11714 digit, but codes issued
outside the usual path exist (for example, codes of some Xiamen companies registered before
2016 do not even satisfy the position-18 check), and a clerk must never be blocked by a
stricter rule than the standard states. So the organization-code digit is checked only when
asked (``check_organization_code=True``), and :func:`organization_check_digit` is exposed for
callers that want to show a warning instead.

Input is normalized before checking: Unicode NFKC (so full-width ``９１３５...`` typed with a
Chinese input method becomes ASCII), all whitespace removed, letters upper-cased.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

__all__ = [
    "ALPHABET",
    "AUTHORITIES",
    "ENTITY_TYPES",
    "WEIGHTS",
    "CreditCodeError",
    "check_character",
    "is_valid_credit_code",
    "normalize_credit_code",
    "organization_check_digit",
    "validate_credit_code",
]

ALPHABET: Final = "0123456789ABCDEFGHJKLMNPQRTUWXY"
LENGTH: Final = 18
WEIGHTS: Final = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
ORGANIZATION_WEIGHTS: Final = (3, 7, 9, 10, 5, 8, 4, 2)

_VALUES: Final[Mapping[str, int]] = MappingProxyType({c: i for i, c in enumerate(ALPHABET)})
_NEVER_USED: Final = frozenset("IOZSV")

# Registration authority (position 1) -> English name (Chinese name).
AUTHORITIES: Final[Mapping[str, str]] = MappingProxyType(
    {
        "1": "institutional establishment (机构编制)",
        "2": "foreign affairs (外交)",
        "3": "judicial administration (司法行政)",
        "4": "culture (文化)",
        "5": "civil affairs (民政)",
        "6": "tourism (旅游)",
        "7": "religious affairs (宗教)",
        "8": "trade unions (工会)",
        "9": "industry and commerce / market regulation (工商)",
        "A": "CMC reform and establishment office (中央军委改革和编制办公室)",
        "N": "agriculture (农业)",
        "Y": "other authorities (其他)",
    }
)

# Registration authority (position 1) -> entity type (position 2) -> what it is.
ENTITY_TYPES: Final[Mapping[str, Mapping[str, str]]] = MappingProxyType(
    {
        "1": MappingProxyType(
            {
                "1": "government body (机关)",
                "2": "public institution (事业单位)",
                "3": "mass organization under the central establishment office (群众团体)",
                "9": "other (其他)",
            }
        ),
        "2": MappingProxyType({"1": "resident foreign news agency (外国常驻新闻机构)", "9": "other (其他)"}),
        "3": MappingProxyType(
            {
                "1": "law firm (律师执业机构)",
                "2": "notary office (公证处)",
                "3": "grassroots legal service office (基层法律服务所)",
                "4": "forensic appraisal institution (司法鉴定机构)",
                "5": "arbitration commission (仲裁委员会)",
                "9": "other (其他)",
            }
        ),
        "4": MappingProxyType({"1": "foreign cultural centre in China (外国在华文化中心)", "9": "other (其他)"}),
        "5": MappingProxyType(
            {
                "1": "social organization (社会团体)",
                "2": "private non-enterprise unit (民办非企业单位)",
                "3": "foundation (基金会)",
                "9": "other (其他)",
            }
        ),
        "6": MappingProxyType(
            {
                "1": "representative office of a foreign tourism authority (外国旅游部门常驻代表机构)",
                "2": "office of a Hong Kong, Macao or Taiwan tourism authority (港澳台旅游部门常驻代表机构)",
                "9": "other (其他)",
            }
        ),
        "7": MappingProxyType(
            {
                "1": "venue for religious activities (宗教活动场所)",
                "2": "religious school (宗教院校)",
                "9": "other (其他)",
            }
        ),
        "8": MappingProxyType({"1": "grassroots trade union (基层工会)", "9": "other (其他)"}),
        "9": MappingProxyType(
            {
                "1": "enterprise (企业)",
                "2": "individual business (个体工商户)",
                "3": "farmers' specialized cooperative (农民专业合作社)",
            }
        ),
        "A": MappingProxyType({"1": "military public institution (军队事业单位)", "9": "other (其他)"}),
        "N": MappingProxyType(
            {
                "1": "group-level collective economic organization (组级集体经济组织)",
                "2": "village-level collective economic organization (村级集体经济组织)",
                "3": "township-level collective economic organization (乡镇级集体经济组织)",
                "9": "other (其他)",
            }
        ),
        "Y": MappingProxyType({"1": "other (其他; no further classification)"}),
    }
)


class CreditCodeError(ValueError):
    """A unified social credit code that cannot be valid.

    ``position`` is the 1-based position of the offending character, or None when the
    problem is not one character (empty input, wrong length).
    """

    def __init__(self, message: str, *, code: str = "", position: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.position = position


def normalize_credit_code(code: str) -> str:
    """NFKC-normalize, drop all whitespace, upper-case. Does not validate."""
    text = unicodedata.normalize("NFKC", code)
    return "".join(text.split()).upper()


def _describe(ch: str) -> str:
    """A character for an error message: 'A', or its code point when it would not print."""
    if ch.isprintable():
        return repr(ch)
    return f"U+{ord(ch):04X}"


def _check_alphabet(code: str, first_position: int = 1) -> None:
    for i, ch in enumerate(code, start=first_position):
        if ch not in _VALUES:
            hint = " (the letters I, O, Z, S and V are never used)" if ch in _NEVER_USED else ""
            raise CreditCodeError(f"illegal character {_describe(ch)} at position {i}{hint}", code=code, position=i)


def _weighted_check(first17: str) -> str:
    total = sum(_VALUES[ch] * w for ch, w in zip(first17, WEIGHTS, strict=True))
    return ALPHABET[(31 - total % 31) % 31]


def check_character(first17: str) -> str:
    """The check character (position 18) for the first 17 characters of a code.

    The input is normalized like a code; it must then be 17 characters of :data:`ALPHABET`.
    Only the alphabet is checked, not the registration authority or the division code.
    """
    body = normalize_credit_code(first17)
    if len(body) != LENGTH - 1:
        raise CreditCodeError(f"the check character is computed from 17 characters, got {len(body)}", code=body)
    _check_alphabet(body)
    return _weighted_check(body)


def organization_check_digit(body8: str) -> str:
    """The GB 11714 check digit for the first 8 characters of an organization code.

    Returns '0'-'9' or 'X'. Letters count A = 10 ... Z = 35 (the full Latin alphabet, as in
    GB 11714, not the 31-character alphabet of the credit code).
    """
    if len(body8) != len(ORGANIZATION_WEIGHTS):
        raise CreditCodeError(f"an organization code body has 8 characters, got {len(body8)}", code=body8)
    total = 0
    for i, (ch, w) in enumerate(zip(body8, ORGANIZATION_WEIGHTS, strict=True), start=1):
        if "0" <= ch <= "9":
            value = ord(ch) - ord("0")
        elif "A" <= ch <= "Z":
            value = ord(ch) - ord("A") + 10
        else:
            raise CreditCodeError(
                f"illegal character {_describe(ch)} at position {i} of the organization code",
                code=body8,
                position=i,
            )
        total += value * w
    digit = 11 - total % 11
    if digit == 10:
        return "X"
    if digit == 11:
        return "0"
    return str(digit)


def validate_credit_code(code: str, *, check_organization_code: bool = False) -> str:
    """Return the normalized code, or raise :class:`CreditCodeError` saying what is wrong.

    With ``check_organization_code`` the GB 11714 check digit of positions 9-17 is checked
    too (see the module docstring for why that is off by default).
    """
    if not isinstance(code, str):
        raise CreditCodeError(f"a credit code must be text, got {type(code).__name__}")
    normalized = normalize_credit_code(code)
    if not normalized:
        raise CreditCodeError("the credit code is empty", code=normalized)
    if len(normalized) != LENGTH:
        raise CreditCodeError(f"a credit code has {LENGTH} characters, got {len(normalized)}", code=normalized)
    _check_alphabet(normalized)

    authority, entity_type = normalized[0], normalized[1]
    types = ENTITY_TYPES.get(authority)
    if types is None:
        known = ", ".join(AUTHORITIES)
        raise CreditCodeError(
            f"unknown registration authority {authority!r} at position 1 (known: {known})",
            code=normalized,
            position=1,
        )
    if entity_type not in types:
        allowed = ", ".join(types)
        raise CreditCodeError(
            f"entity type {entity_type!r} at position 2 is not defined for registration authority"
            f" {authority!r}, {AUTHORITIES[authority]}; allowed: {allowed}",
            code=normalized,
            position=2,
        )

    for i in range(2, 8):
        if not normalized[i].isdigit():
            raise CreditCodeError(
                f"position {i + 1} must be a digit (positions 3-8 are the administrative division code),"
                f" got {normalized[i]!r}",
                code=normalized,
                position=i + 1,
            )

    if check_organization_code:
        expected_org = organization_check_digit(normalized[8:16])
        if normalized[16] != expected_org:
            raise CreditCodeError(
                f"bad organization code check digit at position 17: expected {expected_org!r}, got {normalized[16]!r}",
                code=normalized,
                position=17,
            )

    expected = _weighted_check(normalized[:17])
    if normalized[17] != expected:
        raise CreditCodeError(
            f"bad check character at position 18: expected {expected!r}, got {normalized[17]!r}"
            " (a character is probably mistyped)",
            code=normalized,
            position=18,
        )
    return normalized


def is_valid_credit_code(code: str, *, check_organization_code: bool = False) -> bool:
    """Whether :func:`validate_credit_code` accepts ``code``."""
    try:
        validate_credit_code(code, check_organization_code=check_organization_code)
    except CreditCodeError:
        return False
    return True
