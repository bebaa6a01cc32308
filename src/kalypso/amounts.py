"""Token amounts: integers in the token's base unit everywhere, shown in token units."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation, localcontext

from kalypso.errors import ConfigError


def format_amount(base: int, decimals: int = 18, symbol: str = "KAL") -> str:
    """`1500000000000000000` → `1.5 KAL` (at most 6 decimals shown, never rounded to 0)."""
    value = Decimal(base) / (Decimal(10) ** decimals)
    text = f"{value:,.6f}".rstrip("0").rstrip(".")
    if text == "0" and base:
        text = f"{value:.{decimals}f}".rstrip("0")
    return f"{text} {symbol}"


def parse_amount(text: str | int, decimals: int = 18, symbol: str = "KAL") -> int:
    """`"1.5 KAL"` or `"1.5"` (token units) → base units; an int, or text ending in
    `base` (`"1500 base"`), is already base units."""
    if isinstance(text, int) and not isinstance(text, bool):
        return text
    raw = str(text).strip()
    if raw.lower().endswith("base"):
        digits = raw[:-4].strip().replace(",", "").replace("_", "")
        if not digits.isdigit():
            raise ConfigError(f"not a number of base units: {text!r}")
        return int(digits)
    if raw.upper().endswith(symbol.upper()):
        raw = raw[: -len(symbol)].strip()
    with localcontext() as exact:
        exact.prec = 100  # 2^256 has 78 digits: no amount is ever rounded
        try:
            value = Decimal(raw.replace(",", "").replace("_", "")) * (Decimal(10) ** decimals)
        except InvalidOperation:
            value = Decimal("NaN")
    if not value.is_finite():
        raise ConfigError(f"not an amount: {text!r} (write it like `1.5 {symbol}`)")
    if value != value.to_integral_value() or value < 0:
        raise ConfigError(f"{text!r} is not a whole number of base units, or is negative")
    return int(value)


def parse_positive(text: str | int, what: str, decimals: int = 18, symbol: str = "KAL") -> int:
    """`parse_amount` for a deposit, withdrawal or price: zero and negatives are refused."""
    base = parse_amount(text, decimals, symbol)
    if base <= 0:
        raise ConfigError(f"a {what} must be more than zero")
    return base
