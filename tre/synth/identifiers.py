"""Identifiers as custodians hold them: spine ids, NHS numbers, UPNs, NINOs.

Each is derived from the person's index through a keyed permutation (a Feistel network with
cycle walking), so identifiers are unique without any lookup table, look random, and are the
same for a person whichever chunk or dataset asks for them.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from tre.synth.arrow import fixed_width_strings

_M1 = np.uint64(0x9E3779B97F4A7C15)
_M2 = np.uint64(0xBF58476D1CE4E5B9)

PERSON_ID_SPACE = 10**9
NHS_SPACE = 10**8  # the 8 digits after the leading 4 or 6
UPN_SPACE = 10**12

# NINO prefixes: no D, F, I, Q, U, V first; no D, F, I, O, Q, U, V second; a few never issued.
_NINO_FIRST = "ABCEGHJKLMNOPRSTWXYZ"
_NINO_SECOND = "ABCEGHJKLMNPRSTWXYZ"
_NINO_EXCLUDED = frozenset({"BG", "GB", "KN", "NK", "NT", "TN", "ZZ"})
NINO_PREFIXES: tuple[str, ...] = tuple(
    a + b for a in _NINO_FIRST for b in _NINO_SECOND if a + b not in _NINO_EXCLUDED
)
NINO_SPACE = len(NINO_PREFIXES) * 10**6

# UPN check letters for remainders 0..22 of the weighted digit sum modulo 23 (no I, O, S).
UPN_CHECK_LETTERS = "ABCDEFGHJKLMNPQRTUVWXYZ"


def _mix(x: np.ndarray, key: np.uint64) -> np.ndarray:
    # A splitmix-style finaliser; uint64 arithmetic wraps, which is what we want here.
    h = (x + key) * _M1
    h ^= h >> np.uint64(29)
    h *= _M2
    h ^= h >> np.uint64(32)
    return h


def _feistel(x: np.ndarray, half_bits: int, key: int, rounds: int = 4) -> np.ndarray:
    """A keyed bijection on [0, 2**(2*half_bits))."""
    mask = np.uint64((1 << half_bits) - 1)
    shift = np.uint64(half_bits)
    left = x >> shift
    right = x & mask
    for r in range(rounds):
        round_key = np.uint64((key + r * 0x632BE59BD9B4E019) % 2**64)
        left, right = right, left ^ (_mix(right, round_key) & mask)
    return (left << shift) | right


def permute_below(index: np.ndarray, modulus: int, key: int) -> np.ndarray:
    """A keyed bijection on [0, modulus): distinct indices give distinct values."""
    if modulus < 2:
        raise ValueError("modulus must be at least 2")
    bits = max(2, (modulus - 1).bit_length())
    half = (bits + 1) // 2
    x = np.asarray(index, dtype=np.uint64)
    if x.size and int(x.max()) >= modulus:
        raise ValueError("index out of range for the permutation")
    m = np.uint64(modulus)
    y = _feistel(x, half, key)
    # Cycle walking: re-encrypt values that fell outside [0, modulus) until they land inside.
    out = y >= m
    while out.any():
        y[out] = _feistel(y[out], half, key)
        out = y >= m
    return y


def ascii_digits(values: np.ndarray, width: int) -> np.ndarray:
    """(n, width) uint8 matrix of the zero-padded decimal digits of `values`, as ASCII."""
    v = np.asarray(values, dtype=np.uint64)
    powers = np.uint64(10) ** np.arange(width - 1, -1, -1, dtype=np.uint64)
    return ((v[:, None] // powers[None, :]) % np.uint64(10)).astype(np.uint8) + ord("0")


def person_ids(index: np.ndarray, key: int) -> pa.StringArray:
    """Spine ids: `P` and 9 digits."""
    n = len(index)
    chars = np.empty((n, 10), dtype=np.uint8)
    chars[:, 0] = ord("P")
    chars[:, 1:] = ascii_digits(permute_below(index, PERSON_ID_SPACE, key), 9)
    return fixed_width_strings(chars)


def nhs_check_digit(first_nine: np.ndarray) -> np.ndarray:
    """Modulus-11 check digit of (n, 9) digit rows (values 0..9); 10 means no valid number."""
    weights = np.arange(10, 1, -1, dtype=np.int64)
    remainder = (first_nine.astype(np.int64) @ weights) % 11
    check = 11 - remainder
    return np.where(check == 11, 0, check)


def nhs_numbers(index: np.ndarray, key: int) -> pa.StringArray:
    """Valid 10-digit NHS numbers in the 4xx/6xx ranges (modulus-11 check digit)."""
    n = len(index)
    digits = np.empty((n, 10), dtype=np.int64)
    digits[:, 0] = 4
    digits[:, 1:9] = ascii_digits(permute_below(index, NHS_SPACE, key), 8) - ord("0")
    check = nhs_check_digit(digits[:, :9])
    # A leading 6 instead of 4 adds 20 ≡ 9 (mod 11) to the weighted sum, so a number whose
    # check digit would be 10 (invalid) becomes valid; uniqueness rests on the other 8 digits.
    bad = check == 10
    digits[bad, 0] = 6
    check[bad] = nhs_check_digit(digits[bad, :9])
    digits[:, 9] = check
    return fixed_width_strings((digits + ord("0")).astype(np.uint8))


def upn_check_letter(twelve: np.ndarray) -> np.ndarray:
    """UPN check letters (as ASCII codes) of (n, 12) digit rows: weights 2..13, modulo 23."""
    weights = np.arange(2, 14, dtype=np.int64)
    remainder = (twelve.astype(np.int64) @ weights) % 23
    letters = np.frombuffer(UPN_CHECK_LETTERS.encode(), dtype=np.uint8)
    return letters[remainder]


def upns(index: np.ndarray, key: int) -> pa.StringArray:
    """Unique pupil numbers: a check letter and 12 digits."""
    n = len(index)
    chars = np.empty((n, 13), dtype=np.uint8)
    chars[:, 1:] = ascii_digits(permute_below(index, UPN_SPACE, key), 12)
    chars[:, 0] = upn_check_letter(chars[:, 1:] - ord("0"))
    return fixed_width_strings(chars)


def ninos(index: np.ndarray, key: int) -> pa.StringArray:
    """National-insurance-style numbers: two prefix letters, 6 digits, a suffix A-D."""
    n = len(index)
    q = permute_below(index, NINO_SPACE, key)
    prefix = (q // np.uint64(10**6)).astype(np.int64)
    number = q % np.uint64(10**6)
    prefixes = np.frombuffer("".join(NINO_PREFIXES).encode(), dtype=np.uint8).reshape(-1, 2)
    # The suffix carries no information in real NINOs; derive it from the index, keyed.
    suffix = (_mix(np.asarray(index, dtype=np.uint64), np.uint64(key)) >> np.uint64(62)).astype(
        np.uint8
    )
    chars = np.empty((n, 9), dtype=np.uint8)
    chars[:, :2] = prefixes[prefix]
    chars[:, 2:8] = ascii_digits(number, 6)
    chars[:, 8] = suffix + ord("A")
    return fixed_width_strings(chars)
