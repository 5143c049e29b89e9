"""Sustain, scale, right-size or drop: cost, utilization, evidence and the funding cliff.

Budget teams decide which tools bought with one-time money (ESSER) move to ongoing funds, usually
months before spring scores exist (``methods.md`` §5). This module turns a products file (costs,
seats, funding source, renewal date, privacy agreement), the per-student usage of each product
(``rce.dosage``) and, when there is one, the ``results.json`` of an ``rce analyze`` run into one
recommendation per product, with the figures and the rule that produced it.

Definitions (stated in every report, from the study plan):

- *activated*: the student appears in the product's usage export (a roster row with no session
  counts: LearnPlatform's "activated");
- *active*: at least one session in the export's window;
- *habitual*: at least ``plan.dosage.min_habitual_months`` calendar months with
  ``plan.dosage.min_sessions_per_month`` or more sessions (the project's treatment definition).

Money is held as :class:`decimal.Decimal` and rounded half-up to the cent only when a report is
written (:func:`cents`). The decision thresholds live in one frozen :class:`SustainRules`.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields, replace
from datetime import date, datetime
from decimal import ROUND_CEILING, ROUND_HALF_UP, Decimal, InvalidOperation
from pathlib import Path
from typing import Any, NamedTuple

import pandas as pd

from rce.config import Plan
from rce.errors import DataError, InputFileError, LayoutError, PlanError, RceError

__all__ = [
    "FUND_DEADLINES",
    "RECOMMENDATIONS",
    "SCHEMA_VERSION",
    "SUPPRESSION_KEYS",
    "CliffRow",
    "Evidence",
    "Product",
    "ProductAssessment",
    "SustainResult",
    "SustainRules",
    "SustainRun",
    "cents",
    "compute_sustain",
    "evidence_from_results",
    "funnel_suppression",
    "load_evidence",
    "read_products",
    "rules_from_mapping",
    "run_sustain_report",
]

SCHEMA_VERSION = "1"

#: The six recommendations, in the order reports list them.
RECOMMENDATIONS = (
    "sustain",
    "scale",
    "right-size",
    "improve-implementation",
    "sunset",
    "insufficient-evidence",
)

#: ESSER obligation and liquidation dates (methods.md §5.1). Standard liquidation is ~120 days
#: after the obligation deadline; ``latest`` adds the up-to-14-month late liquidation that could
#: be requested for contracted services (shortened for many states in spring 2025), so it is the
#: most generous date any district could have had, not a promise.
FUND_DEADLINES: dict[str, dict[str, date]] = {
    "ESSER I": {
        "obligate_by": date(2022, 9, 30),
        "liquidate_by": date(2023, 1, 28),
        "latest": date(2023, 1, 28),
    },
    "ESSER II": {
        "obligate_by": date(2023, 9, 30),
        "liquidate_by": date(2024, 1, 28),
        "latest": date(2024, 1, 28),
    },
    "ESSER III": {
        "obligate_by": date(2024, 9, 30),
        "liquidate_by": date(2025, 1, 28),
        "latest": date(2026, 3, 28),
    },
}

_CENT = Decimal("0.01")
_TENTH_SD = Decimal("0.1")

_PRIVACY_VALUES = ("signed", "expired", "none", "")
_USE_LEVELS = ("activated", "active", "habitual")


def cents(value: Decimal | None) -> Decimal | None:
    """Round money half-up to the cent (only ever done at output).

    Examples
    --------
    >>> cents(Decimal("10.005"))
    Decimal('10.01')
    >>> cents(Decimal("2.675"))
    Decimal('2.68')
    """
    if value is None:
        return None
    return value.quantize(_CENT, rounding=ROUND_HALF_UP)


def _money_out(value: Decimal | None) -> float | None:
    """A JSON number for money: the half-up cent rounding, exactly representable as text."""
    rounded = cents(value)
    return None if rounded is None else float(rounded)


# --- decision rules ------------------------------------------------------------------------------


@dataclass(frozen=True)
class SustainRules:
    """Thresholds of the sustain/cut decision rules (the district's choice; documented defaults).

    The rules are applied in a fixed order (see :func:`compute_sustain`); each reason a report
    gives names the rule and the figures that made it fire. The effect verdict itself
    (pass / fail / inconclusive) uses the plan's pre-registered decision rule
    (``plan.decision``: meaningful effect, pass and fail probabilities), not a second default.

    Attributes
    ----------
    adoption_floor
        Share of purchased seats ever activated below which a product without passing evidence
        is sunset. 0.10: districts report retiring apps under 10% adoption (methods.md §5.2).
    right_size_buffer
        Seats kept above the habitual users when right-sizing (0.10 = 10% headroom for new
        enrolment and students who become habitual users).
    right_size_min_cut
        Right-size when the right-sized seat count is at least this share below the seats
        purchased (0.25: a cut smaller than a quarter is within normal enrolment swings).
    scale_min_active_utilization
        A product with passing evidence is recommended for scaling when at least this share of
        its seats had an active user (demand at or near capacity).
    improve_max_habitual_share
        When fewer than this share of active users are habitual, the product is not used at the
        dose its effect depends on: recommend improving implementation before judging it.
    improve_min_active_utilization
        ... but only when at least this share of seats had an active user (students have access
        and log in); below it the seats, not the implementation, are the problem (right-size).
    redundancy_min_overlap
        Share of a product's active users who also actively use another product for the same
        subject above which the two are reported as overlapping; a product without passing
        evidence that overlaps this much with one that passes is sunset.
    price_index_level
        Which seats count as *used* in the EdTech Price Index: "activated", "active" or
        "habitual" (LearnPlatform leaves it to the district; methods.md §2.4).
    renewal_notice_days
        Renewals within this many days of the decision date are flagged (60-90 days is common).
    outcome_month, outcome_day
        Date by which spring outcome data are expected each year (default 15 June); a renewal
        before it, without final evidence, is flagged as decided on interim evidence.
    interim_evidence_decides
        When False, a pass or fail from interim (e.g. winter) evidence is treated as
        inconclusive for the recommendation (the reasons still report it).
    max_cost_per_tenth_sd
        Optional ceiling on the annual cost per habitual student per 0.1 SD of effect; a product
        with passing evidence above it is recommended for right-sizing / renegotiation. None
        (default) applies no ceiling.
    one_time_fund_words
        Words that mark a funding source as one-time money (matched as whole words, any case).
    approved_statuses
        Approval statuses that count as approved (any case).
    """

    adoption_floor: float = 0.10
    right_size_buffer: float = 0.10
    right_size_min_cut: float = 0.25
    scale_min_active_utilization: float = 0.90
    improve_max_habitual_share: float = 0.50
    improve_min_active_utilization: float = 0.50
    redundancy_min_overlap: float = 0.50
    price_index_level: str = "active"
    renewal_notice_days: int = 90
    outcome_month: int = 6
    outcome_day: int = 15
    interim_evidence_decides: bool = True
    max_cost_per_tenth_sd: Decimal | None = None
    one_time_fund_words: tuple[str, ...] = (
        "esser",
        "geer",
        "cares",
        "crrsa",
        "arp",
        "one-time",
        "onetime",
    )
    approved_statuses: tuple[str, ...] = ("approved",)

    def __post_init__(self) -> None:
        shares = {
            "adoption_floor": self.adoption_floor,
            "right_size_buffer": self.right_size_buffer,
            "right_size_min_cut": self.right_size_min_cut,
            "scale_min_active_utilization": self.scale_min_active_utilization,
            "improve_max_habitual_share": self.improve_max_habitual_share,
            "improve_min_active_utilization": self.improve_min_active_utilization,
            "redundancy_min_overlap": self.redundancy_min_overlap,
        }
        for name, value in shares.items():
            if not (isinstance(value, int | float) and 0 <= value <= 1):
                raise PlanError(
                    f"sustain rule {name} must be a share between 0 and 1",
                    where=f"sustain.{name}",
                    hint="Write shares as fractions, e.g. 0.10 for 10%.",
                )
        if self.price_index_level not in _USE_LEVELS:
            raise PlanError(
                f"sustain rule price_index_level must be one of {', '.join(_USE_LEVELS)}",
                where="sustain.price_index_level",
                hint='Use "active" unless the district defines used seats otherwise.',
            )
        if self.renewal_notice_days < 0:
            raise PlanError(
                "sustain rule renewal_notice_days must be 0 or more",
                where="sustain.renewal_notice_days",
                hint="90 days is common.",
            )
        try:
            date(2024, self.outcome_month, self.outcome_day)
        except (ValueError, TypeError):
            raise PlanError(
                "sustain rules outcome_month / outcome_day are not a calendar date",
                where="sustain.outcome_month",
                hint="E.g. outcome_month = 6, outcome_day = 15.",
            ) from None
        if self.max_cost_per_tenth_sd is not None and self.max_cost_per_tenth_sd <= 0:
            raise PlanError(
                "sustain rule max_cost_per_tenth_sd must be positive when set",
                where="sustain.max_cost_per_tenth_sd",
                hint="Leave it unset for no ceiling.",
            )

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form (recorded in every report)."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, Decimal):
                value = float(value)
            elif isinstance(value, tuple):
                value = list(value)
            out[f.name] = value
        return out

    def is_one_time(self, funding_source: str) -> bool:
        """Whether a funding source is one-time money.

        Examples
        --------
        >>> SustainRules().is_one_time("ARP ESSER III")
        True
        >>> SustainRules().is_one_time("General Fund")
        False
        """
        text = funding_source.lower()
        words = set(re.findall(r"[a-z0-9]+(?:-[a-z0-9]+)*", text))
        words |= {w for part in words for w in part.split("-")}
        return any(word.lower() in words for word in self.one_time_fund_words)


def rules_from_mapping(raw: Mapping[str, Any], *, where: str = "sustain") -> SustainRules:
    """Build :class:`SustainRules` from a parsed TOML table (e.g. a ``[sustain]`` plan section).

    Only the keys given change; the defaults stay in :class:`SustainRules`. An unknown key or a
    value of the wrong type is a :class:`~rce.errors.PlanError` naming the key.

    Examples
    --------
    >>> rules_from_mapping({"adoption_floor": 0.2}).adoption_floor
    0.2
    """
    if not isinstance(raw, Mapping):
        raise PlanError("[sustain] must be a table of keys", where=where, hint="Write [sustain].")
    known = {f.name: f for f in fields(SustainRules)}
    defaults = SustainRules()
    kwargs: dict[str, Any] = {}
    for key, value in raw.items():
        if key not in known:
            raise PlanError(
                f"unknown sustain rule {key}",
                where=f"{where}.{key}",
                hint=f"Known rules: {', '.join(sorted(known))}.",
            )
        default = getattr(defaults, key)
        bad = PlanError(
            f"sustain rule {key} has the wrong type ({type(value).__name__})",
            where=f"{where}.{key}",
            hint="See the rules table in the sustain report for the expected values.",
        )
        if key == "max_cost_per_tenth_sd":
            if value is None or value == "":
                kwargs[key] = None
                continue
            if isinstance(value, bool) or not isinstance(value, int | float | str):
                raise bad
            try:
                kwargs[key] = Decimal(repr(value) if isinstance(value, float) else str(value))
            except InvalidOperation:
                raise bad from None
        elif isinstance(default, tuple):
            if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
                raise bad
            kwargs[key] = tuple(str(v).lower() for v in value)
        elif isinstance(default, bool):
            if not isinstance(value, bool):
                raise bad
            kwargs[key] = value
        elif isinstance(default, int):
            if isinstance(value, bool) or not isinstance(value, int):
                raise bad
            kwargs[key] = value
        elif isinstance(default, float):
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise bad
            kwargs[key] = float(value)
        else:
            if not isinstance(value, str):
                raise bad
            kwargs[key] = value
    return SustainRules(**kwargs)


def esser_round(funding_source: str) -> str | None:
    """The ESSER round a funding source names, if any ("ESSER I", "ESSER II", "ESSER III").

    A source that says only "ESSER" is taken as ESSER III, the last round (its dates are the
    latest, so flags built on them are the most lenient).

    Examples
    --------
    >>> esser_round("ARP ESSER")
    'ESSER III'
    >>> esser_round("ESSER II (CRRSA)")
    'ESSER II'
    >>> esser_round("Title I") is None
    True
    """
    text = funding_source.lower()
    words = re.findall(r"[a-z0-9]+", text)
    if "cares" in words or re.search(r"esser\s*(i|1)\b", text):
        return "ESSER I"
    if "crrsa" in words or re.search(r"esser\s*(ii|2)\b", text):
        return "ESSER II"
    if "esser" in words or "arp" in words:
        return "ESSER III"
    return None


# --- products file ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Product:
    """One licensed product as the products file describes it.

    Attributes
    ----------
    product
        Name used in every output; must match the product name of its usage data.
    annual_cost
        Total annual cost (Decimal dollars): ``annual_cost``, or ``price_per_seat`` x
        ``seats_purchased``.
    price_per_seat
        Per-seat price when the contract has one; savings from removing seats use it. Otherwise
        savings assume the cost scales with seats (``annual_cost / seats_purchased``).
    seats_purchased
        Licensed seats; None for a site licence without a seat count.
    where
        Location in the products file, for messages (never student data).
    """

    product: str
    subject: str = ""
    annual_cost: Decimal = Decimal(0)
    price_per_seat: Decimal | None = None
    seats_purchased: int | None = None
    funding_source: str = ""
    renewal_date: date | None = None
    usage: tuple[str, ...] = ()
    layout: str = "auto"
    recommended_minutes_per_week: float | None = None
    evidence: str = ""
    scores: tuple[str, ...] = ()
    privacy_agreement: str = ""
    privacy_agreement_expires: date | None = None
    approval_status: str = ""
    notes: str = ""
    where: str = ""

    @property
    def seat_price(self) -> Decimal | None:
        """Price of one seat: the contract's, or the annual cost spread over the seats."""
        if self.price_per_seat is not None:
            return self.price_per_seat
        if self.seats_purchased:
            return self.annual_cost / Decimal(self.seats_purchased)
        return None


_PRODUCT_KEYS = {
    "product",
    "subject",
    "annual_cost",
    "price_per_seat",
    "seats_purchased",
    "funding_source",
    "renewal_date",
    "contract_end",
    "usage",
    "layout",
    "recommended_minutes_per_week",
    "evidence",
    "scores",
    "privacy_agreement",
    "privacy_agreement_expires",
    "approval_status",
    "notes",
}


def read_products(path: Path | str) -> tuple[Product, ...]:
    """Read a products file (TOML with ``[[product]]`` tables, or CSV with the same columns).

    Parameters
    ----------
    path
        ``products.toml`` or ``products.csv``. Keys / columns: ``product`` (required),
        ``subject``, ``annual_cost`` or ``price_per_seat`` (with ``seats_purchased``),
        ``seats_purchased``, ``funding_source``, ``renewal_date`` (or ``contract_end``),
        ``usage`` (path(s); several separated by ``;`` in CSV), ``layout``,
        ``recommended_minutes_per_week``, ``evidence`` (a results.json path), ``scores``,
        ``privacy_agreement`` (signed / expired / none), ``privacy_agreement_expires``,
        ``approval_status``, ``notes``. Money may be written ``12500``, ``12,500.00`` or
        ``$12,500``; dates as ``2025-06-30`` or ``6/30/2025``.

    Returns
    -------
    tuple of Product
        In file order.

    Raises
    ------
    InputFileError
        The file is missing, unreadable or not valid TOML/CSV.
    LayoutError
        A required key/column is missing or unknown.
    DataError
        A value is invalid; the message names the file, the row (CSV: spreadsheet row; TOML:
        the n-th ``[[product]]`` table), the column and how to fix it.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise InputFileError(
            "products file not found",
            where=str(path),
            hint="Set inputs.products in the plan or pass --products.",
        ) from None
    except IsADirectoryError:
        raise InputFileError(
            "the products path is a folder", where=str(path), hint="Pass products.toml itself."
        ) from None
    except OSError as exc:
        raise InputFileError(
            f"products file cannot be read ({exc.strerror})", where=str(path), hint=None
        ) from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        try:
            text = raw.decode("cp1252")
        except UnicodeDecodeError:
            raise InputFileError(
                "products file is not text", where=str(path), hint="Save it as UTF-8."
            ) from None
    if path.suffix.lower() == ".toml":
        records = _toml_records(text, path)
    elif path.suffix.lower() in (".csv", ".tsv", ".txt"):
        records = _csv_records(text, path)
    else:
        raise InputFileError(
            f"products file must be .toml or .csv, not {path.suffix or 'no extension'}",
            where=str(path),
            hint="Rename it or save it as CSV.",
        )
    if not records:
        raise DataError(
            "products file lists no products",
            where=str(path),
            hint="Add one [[product]] table (TOML) or one row (CSV) per product.",
        )
    products = tuple(_product(values, where, path) for where, values in records)
    seen: dict[str, str] = {}
    for p in products:
        key = p.product.casefold()
        if key in seen:
            raise DataError(
                f"product {p.product!r} is listed twice",
                where=f"{p.where} and {seen[key]}",
                hint="Give each product one entry; add seats and costs together.",
            )
        seen[key] = p.where
    return products


def _toml_records(text: str, path: Path) -> list[tuple[str, dict[str, Any]]]:
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InputFileError(
            f"products file is not valid TOML: {exc}",
            where=str(path),
            hint="Check quotes, brackets and '=' signs on the line named.",
        ) from None
    tables = doc.get("product", doc.get("products"))
    extra = set(doc) - {"product", "products"}
    if extra:
        raise LayoutError(
            f"unknown top-level key(s) in products file: {', '.join(sorted(extra))}",
            where=str(path),
            hint="Describe each product in its own [[product]] table.",
        )
    if tables is None:
        raise LayoutError(
            "products file has no [[product]] tables",
            where=str(path),
            hint='Start each product with [[product]] and a line product = "Name".',
        )
    if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
        raise LayoutError(
            "product must be an array of tables ([[product]])",
            where=str(path),
            hint="Write [[product]] (double brackets) before each product.",
        )
    return [(f"{path.name}, [[product]] #{i}", dict(t)) for i, t in enumerate(tables, start=1)]


def _csv_records(text: str, path: Path) -> list[tuple[str, dict[str, Any]]]:
    sample = text[:4096]
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    if delimiter == "," and sample.count(";") > sample.count(",") and "\n" in sample:
        delimiter = ";"
    try:
        rows = list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))
    except csv.Error as exc:
        raise InputFileError(
            f"products file is not valid CSV: {exc}", where=str(path), hint=None
        ) from None
    if not rows:
        return []
    header = [h.strip().lower().replace(" ", "_") for h in rows[0]]
    out: list[tuple[str, dict[str, Any]]] = []
    for index, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) > len(header):
            raise DataError(
                f"row has {len(row)} fields but the header has {len(header)}",
                where=f"{path.name}, row {index}",
                hint="Quote values that contain the delimiter.",
            )
        values: dict[str, Any] = {}
        for name, cell in zip(header, row, strict=False):
            cell = cell.strip()
            if cell == "":
                continue
            if name in ("usage", "scores"):
                values[name] = [part.strip() for part in cell.split(";") if part.strip()]
            else:
                values[name] = cell
        out.append((f"{path.name}, row {index}", values))
    unknown = [h for h in header if h and h not in _PRODUCT_KEYS]
    if unknown:
        raise LayoutError(
            f"unknown column(s) in products file: {', '.join(unknown)}",
            where=f"{path.name}, row 1",
            hint=f"Known columns: {', '.join(sorted(_PRODUCT_KEYS))}.",
        )
    return out


def _bad(where: str, column: str, message: str, hint: str) -> DataError:
    return DataError(message, where=f"{where}, column {column}", hint=hint)


def _text(values: Mapping[str, Any], key: str, where: str) -> str:
    value = values.get(key, "")
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise _bad(where, key, f"{key} must be text", f'Write it in quotes: {key} = "...".')
    return str(value).strip()


def _parse_money(value: Any, key: str, where: str) -> Decimal:
    hint = "Write an amount in dollars such as 12500 or 12,500.00 (no text)."
    if isinstance(value, bool):
        raise _bad(where, key, f"{key} must be an amount of money", hint)
    if isinstance(value, int):
        amount = Decimal(value)
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise _bad(where, key, f"{key} must be a finite amount", hint)
        # repr gives the shortest decimal that reads back as this float: 19.99 stays 19.99.
        amount = Decimal(repr(value))
    elif isinstance(value, str):
        cleaned = value.strip().replace("$", "").replace(",", "").replace(" ", "")
        negative = cleaned.startswith("(") and cleaned.endswith(")")
        cleaned = cleaned.strip("()")
        try:
            amount = Decimal(cleaned)
        except InvalidOperation:
            raise _bad(where, key, f"{key} is not an amount of money", hint) from None
        if not amount.is_finite():
            raise _bad(where, key, f"{key} must be a finite amount", hint)
        if negative:
            amount = -amount
    else:
        raise _bad(where, key, f"{key} must be an amount of money", hint)
    if amount < 0:
        raise _bad(where, key, f"{key} cannot be negative", "Enter the cost as a positive amount.")
    return amount


def _parse_int(value: Any, key: str, where: str) -> int:
    hint = "Write a whole number such as 500."
    if isinstance(value, bool):
        raise _bad(where, key, f"{key} must be a whole number", hint)
    if isinstance(value, int):
        number = value
    elif isinstance(value, float) and value.is_integer():
        number = int(value)
    elif isinstance(value, str):
        cleaned = value.strip().replace(",", "")
        try:
            as_decimal = Decimal(cleaned)
        except InvalidOperation:
            raise _bad(where, key, f"{key} is not a whole number", hint) from None
        if not as_decimal.is_finite() or as_decimal != as_decimal.to_integral_value():
            raise _bad(where, key, f"{key} is not a whole number", hint)
        number = int(as_decimal)
    else:
        raise _bad(where, key, f"{key} must be a whole number", hint)
    if number < 0:
        raise _bad(where, key, f"{key} cannot be negative", hint)
    return number


def _parse_float(value: Any, key: str, where: str) -> float:
    if isinstance(value, bool):
        raise _bad(where, key, f"{key} must be a number", "Write a number such as 45.")
    try:
        number = float(str(value).strip()) if isinstance(value, str) else float(value)
    except (TypeError, ValueError):
        raise _bad(where, key, f"{key} is not a number", "Write a number such as 45.") from None
    if not math.isfinite(number) or number < 0:
        raise _bad(where, key, f"{key} must be 0 or more", "Write a number such as 45.")
    return number


def _parse_date(value: Any, key: str, where: str) -> date:
    hint = "Write the date as YYYY-MM-DD (e.g. 2025-06-30) or M/D/YYYY."
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        text = value.strip()
        for fmt in ("%Y-%m-%d", "%m/%d/%Y", "%m-%d-%Y", "%m/%d/%y"):
            try:
                return datetime.strptime(text, fmt).date()
            except ValueError:
                continue
    raise _bad(where, key, f"{key} is not a date", hint)


def _paths(value: Any, key: str, where: str) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value.strip(),) if value.strip() else ()
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(v.strip() for v in value if v.strip())
    raise _bad(
        where, key, f"{key} must be a path or a list of paths", 'E.g. usage = "usage/x.csv".'
    )


def _product(values: dict[str, Any], where: str, path: Path) -> Product:
    unknown = sorted(set(values) - _PRODUCT_KEYS)
    if unknown:
        raise LayoutError(
            f"unknown key(s) {', '.join(unknown)}",
            where=f"{path}: {where}",
            hint=f"Known keys: {', '.join(sorted(_PRODUCT_KEYS))}.",
        )
    name = _text(values, "product", where)
    if not name:
        raise _bad(where, "product", "product name is missing", 'Add product = "Name".')
    seats = (
        _parse_int(values["seats_purchased"], "seats_purchased", where)
        if "seats_purchased" in values
        else None
    )
    price = (
        _parse_money(values["price_per_seat"], "price_per_seat", where)
        if "price_per_seat" in values
        else None
    )
    if "annual_cost" in values:
        annual = _parse_money(values["annual_cost"], "annual_cost", where)
    elif price is not None:
        if seats is None:
            raise _bad(
                where,
                "seats_purchased",
                "price_per_seat is given without seats_purchased",
                "Add seats_purchased, or give annual_cost instead.",
            )
        annual = price * seats
    else:
        raise _bad(
            where,
            "annual_cost",
            "no cost: neither annual_cost nor price_per_seat is given",
            "Add annual_cost (dollars per year) or price_per_seat with seats_purchased.",
        )
    if seats == 0 and annual > 0:
        raise _bad(
            where,
            "seats_purchased",
            "seats_purchased is 0 for a product that costs money",
            "Enter the number of licences bought, or leave it blank for a site licence.",
        )
    renewal_key = "renewal_date" if "renewal_date" in values else "contract_end"
    renewal = (
        _parse_date(values[renewal_key], renewal_key, where) if renewal_key in values else None
    )
    privacy = _text(values, "privacy_agreement", where).lower()
    if privacy not in _PRIVACY_VALUES:
        raise _bad(
            where,
            "privacy_agreement",
            f"privacy_agreement must be signed, expired or none, not {privacy!r}",
            "Record the student-data-privacy agreement status as signed, expired or none.",
        )
    expires = (
        _parse_date(values["privacy_agreement_expires"], "privacy_agreement_expires", where)
        if "privacy_agreement_expires" in values
        else None
    )
    minutes = (
        _parse_float(values["recommended_minutes_per_week"], "recommended_minutes_per_week", where)
        if "recommended_minutes_per_week" in values
        else None
    )
    return Product(
        product=name,
        subject=_text(values, "subject", where).lower(),
        annual_cost=annual,
        price_per_seat=price,
        seats_purchased=seats,
        funding_source=_text(values, "funding_source", where),
        renewal_date=renewal,
        usage=_paths(values.get("usage", ()), "usage", where) if "usage" in values else (),
        layout=_text(values, "layout", where) or "auto",
        recommended_minutes_per_week=minutes,
        evidence=_text(values, "evidence", where),
        scores=_paths(values["scores"], "scores", where) if "scores" in values else (),
        privacy_agreement=privacy,
        privacy_agreement_expires=expires,
        approval_status=_text(values, "approval_status", where),
        notes=_text(values, "notes", where),
        where=where,
    )


# --- evidence ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Evidence:
    """Outcome evidence for one product, taken from a ``results.json`` of ``rce analyze``.

    ``estimate`` / ``ci_low`` / ``ci_high`` are in outcome units (e.g. scale-score points);
    ``hedges_g`` in standard deviations; ``improvement_index`` in percentile points.
    """

    product: str
    estimate: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    probability_positive: float | None = None
    probability_meaningful: float | None = None
    hedges_g: float | None = None
    improvement_index: float | None = None
    evidence_tier: str | None = None
    design: str = ""
    n_treatment: int | None = None
    outcome: str = ""
    outcome_window: str = ""
    interim: bool = False
    #: Dose-response per habitual month {estimate, ci_low, ci_high}, when reported.
    dose_per_month: tuple[float | None, float | None, float | None] | None = None
    no_impact_reason: str = ""
    source: str = ""
    #: School year of the outcome test ("2024-2025"), when the results say.
    academic_year: str = ""

    @property
    def has_effect(self) -> bool:
        """True when an impact estimate with a CI exists."""
        return self.estimate is not None and self.ci_low is not None and self.ci_high is not None

    def to_dict(self) -> dict[str, Any]:
        """The ``effect`` object of sustain.json (plus provenance keys)."""
        return {
            "estimate": self.estimate,
            "ci_low": self.ci_low,
            "ci_high": self.ci_high,
            "probability_positive": self.probability_positive,
            "probability_meaningful": self.probability_meaningful,
            "evidence_tier": self.evidence_tier,
            "hedges_g": self.hedges_g,
            "improvement_index": self.improvement_index,
            "design": self.design or None,
            "n_treatment": self.n_treatment,
            "outcome_window": self.outcome_window or None,
            "interim": self.interim,
            "source": self.source or None,
        }


def _num(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def evidence_from_results(results: Mapping[str, Any], *, source: str = "") -> Evidence:
    """Read the evidence a ``results.json`` dict holds (``impact``, ``evidence``, ``study``).

    Parameters
    ----------
    results
        The parsed results.json of an ``rce analyze`` run (design.md keys).
    source
        Where it came from (a path), recorded in the report.

    Raises
    ------
    DataError
        The dict names no product (``study.product``) or has no impact or dose-response section.
    """
    if not isinstance(results, Mapping):
        raise DataError("results.json is not a JSON object", where=source or None, hint=None)
    study = results.get("study") or {}
    product = str(study.get("product") or "").strip() if isinstance(study, Mapping) else ""
    impact = results.get("impact")
    impact = impact if isinstance(impact, Mapping) else {}
    ev = results.get("evidence")
    ev = ev if isinstance(ev, Mapping) else {}
    tier = ev.get("essa_tier")
    outcome_window = str(study.get("outcome_window") or "") if isinstance(study, Mapping) else ""
    interim = bool(study.get("interim")) if isinstance(study, Mapping) else False
    if outcome_window and outcome_window != "spring":
        interim = True
    dose = None
    doses = results.get("dose_response")
    if isinstance(doses, list) and doses and isinstance(doses[0], Mapping):
        per_month = doses[0].get("per_month")
        if isinstance(per_month, Mapping):
            dose = (
                _num(per_month.get("estimate")),
                _num(per_month.get("ci_low")),
                _num(per_month.get("ci_high")),
            )
    n_t = impact.get("n_treatment")
    p_meaningful = _num(impact.get("probability_meaningful"))
    regions = impact.get("regions")
    if p_meaningful is None and isinstance(regions, Mapping):
        # P(meaningfully better) of the three-region view is the same quantity.
        p_meaningful = _num(regions.get("better"))
    tier_text = None if tier in (None, "") else re.sub(r"(?i)^\s*tier\s*", "", str(tier))
    return Evidence(
        product=product,
        estimate=_num(impact.get("estimate")),
        ci_low=_num(impact.get("ci_low")),
        ci_high=_num(impact.get("ci_high")),
        probability_positive=_num(impact.get("probability_positive")),
        probability_meaningful=p_meaningful,
        hedges_g=_num(impact.get("hedges_g")),
        improvement_index=_num(impact.get("improvement_index")),
        evidence_tier=tier_text or None,
        design=str(impact.get("design") or ""),
        n_treatment=(
            int(n_t) if isinstance(n_t, int | float) and not isinstance(n_t, bool) else None
        ),
        outcome=str(impact.get("outcome") or ""),
        outcome_window=outcome_window,
        interim=interim,
        dose_per_month=dose,
        no_impact_reason=str(results.get("impact_reason") or impact.get("reason") or ""),
        source=source,
        academic_year=str(study.get("academic_year") or "") if isinstance(study, Mapping) else "",
    )


def load_evidence(path: Path | str) -> Evidence:
    """Read a ``results.json`` file (or a folder holding one) into :class:`Evidence`."""
    path = Path(path)
    if path.is_dir():
        path = path / "results.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputFileError(
            "evidence file not found",
            where=str(path),
            hint="Point evidence at the results.json written by `rce analyze`.",
        ) from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise InputFileError(
            f"evidence file is not a readable results.json ({type(exc).__name__})",
            where=str(path),
            hint="Re-run `rce analyze` to write it again.",
        ) from None
    return evidence_from_results(data, source=str(path))


# --- per-product assessment -------------------------------------------------------------------


@dataclass(frozen=True)
class ProductAssessment:
    """Figures, flags and the recommendation for one product. Money in Decimal, unrounded."""

    product: Product
    students_activated: int | None
    students_active: int | None
    students_habitual: int | None
    students_fidelity: int | None
    cost_per_seat: Decimal | None
    cost_per_activated_user: Decimal | None
    cost_per_active_user: Decimal | None
    cost_per_habitual_user: Decimal | None
    price_index: float | None
    evidence: Evidence | None
    verdict: str
    cost_per_habitual_per_tenth_sd: Decimal | None
    cost_per_tenth_sd_high: Decimal | None
    cost_per_percentile_point: Decimal | None
    right_sized_seats: int | None
    recommendation: str
    reasons: tuple[str, ...]
    rules_fired: tuple[str, ...]
    flags: tuple[str, ...]
    seats_recommended: int | None
    projected_savings: Decimal
    overlaps: tuple[dict[str, Any], ...]
    one_time_funded: bool
    days_to_renewal: int | None
    #: Keys of :meth:`to_dict` hidden by small-cell suppression (:func:`funnel_suppression`):
    #: the attributes above keep the true counts (the rules use them), outputs never show them.
    suppressed: tuple[str, ...] = ()

    def _share(self, count: int | None) -> float | None:
        seats = self.product.seats_purchased
        if count is None or not seats:
            return None
        return count / seats

    @property
    def utilization_activated(self) -> float | None:
        """Activated students / seats purchased."""
        return self._share(self.students_activated)

    @property
    def utilization_active(self) -> float | None:
        """Active students / seats purchased."""
        return self._share(self.students_active)

    @property
    def utilization_habitual(self) -> float | None:
        """Habitual students / seats purchased."""
        return self._share(self.students_habitual)

    def to_dict(self) -> dict[str, Any]:
        """The ``products[]`` entry of sustain.json (money rounded half-up to the cent).

        Figures listed in ``suppressed`` (a count of 1 to min_cell_size - 1 students, what is
        computed from it, and complementary counts) are None, never the hidden value.
        """
        p = self.product
        out = {
            "product": p.product,
            "subject": p.subject,
            "funding_source": p.funding_source,
            "one_time_funded": self.one_time_funded,
            "renewal_date": p.renewal_date.isoformat() if p.renewal_date else None,
            "days_to_renewal": self.days_to_renewal,
            "annual_cost": _money_out(p.annual_cost),
            "price_per_seat": _money_out(p.price_per_seat),
            "seats_purchased": p.seats_purchased,
            "students_activated": self.students_activated,
            "students_active": self.students_active,
            "students_habitual": self.students_habitual,
            "students_fidelity": self.students_fidelity,
            "utilization_activated": self.utilization_activated,
            "utilization_active": self.utilization_active,
            "utilization_habitual": self.utilization_habitual,
            "cost_per_seat": _money_out(self.cost_per_seat),
            "cost_per_activated_user": _money_out(self.cost_per_activated_user),
            "cost_per_active_user": _money_out(self.cost_per_active_user),
            "cost_per_habitual_user": _money_out(self.cost_per_habitual_user),
            "price_index": self.price_index,
            "effect": (
                self.evidence.to_dict() if self.evidence and self.evidence.has_effect else None
            ),
            "evidence_verdict": self.verdict,
            "cost_per_habitual_user_per_tenth_sd": _money_out(self.cost_per_habitual_per_tenth_sd),
            "cost_per_habitual_user_per_tenth_sd_upper": _money_out(self.cost_per_tenth_sd_high),
            "cost_per_habitual_user_per_percentile_point": _money_out(
                self.cost_per_percentile_point
            ),
            "right_sized_seats": self.right_sized_seats,
            "recommendation": self.recommendation,
            "reasons": list(self.reasons),
            "rules_fired": list(self.rules_fired),
            "flags": list(self.flags),
            "seats_recommended": self.seats_recommended,
            "projected_savings": _money_out(self.projected_savings),
            "overlaps": [dict(o) for o in self.overlaps],
            "privacy_agreement": p.privacy_agreement or None,
            "privacy_agreement_expires": (
                p.privacy_agreement_expires.isoformat() if p.privacy_agreement_expires else None
            ),
            "approval_status": p.approval_status or None,
        }
        for key in self.suppressed:
            if key == "n_treatment":
                if out["effect"] is not None:
                    out["effect"]["n_treatment"] = None
            else:
                out[key] = None
        out["suppressed"] = list(self.suppressed)
        return out


@dataclass(frozen=True)
class CliffRow:
    """One product in the funding-cliff view."""

    product: str
    funding_source: str
    esser_round: str | None
    renewal_date: date | None
    annual_cost: Decimal
    recommendation: str
    ongoing_cost: Decimal
    fund_ends: date | None

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe row."""
        return {
            "product": self.product,
            "funding_source": self.funding_source,
            "esser_round": self.esser_round,
            "renewal_date": self.renewal_date.isoformat() if self.renewal_date else None,
            "annual_cost": _money_out(self.annual_cost),
            "recommendation": self.recommendation,
            "ongoing_cost_if_recommendation_followed": _money_out(self.ongoing_cost),
            "one_time_fund_ends": self.fund_ends.isoformat() if self.fund_ends else None,
        }


def _fmt_money(value: Decimal | None) -> str:
    if value is None:
        return "n/a"
    return f"${cents(value):,.2f}"


@dataclass(frozen=True)
class SustainResult:
    """Everything ``rce sustain-report`` reports. Build with :func:`compute_sustain`."""

    products: tuple[ProductAssessment, ...]
    funding_cliff: tuple[CliffRow, ...]
    rules: SustainRules
    as_of: date
    definitions: dict[str, str]
    decision: dict[str, float]
    notes: tuple[str, ...] = ()
    outcome_data_expected: date | None = None
    #: ``plan.privacy.min_cell_size`` the figures were suppressed with.
    min_cell_size: int | None = None

    # -- totals (Decimal, unrounded) --
    @property
    def total_annual_cost(self) -> Decimal:
        """Sum of annual costs."""
        return sum((a.product.annual_cost for a in self.products), Decimal(0))

    @property
    def one_time_funded_cost(self) -> Decimal:
        """Annual cost of products paid from one-time funds."""
        return sum(
            (a.product.annual_cost for a in self.products if a.one_time_funded), Decimal(0)
        )

    @property
    def total_projected_savings(self) -> Decimal:
        """Savings if every recommendation is followed."""
        return sum((a.projected_savings for a in self.products), Decimal(0))

    def cliff_by_month(self) -> list[dict[str, Any]]:
        """One-time-funded cost grouped by renewal month, with running totals."""
        groups: dict[str, list[CliffRow]] = {}
        for row in self.funding_cliff:
            key = row.renewal_date.strftime("%Y-%m") if row.renewal_date else "no date"
            groups.setdefault(key, []).append(row)
        out: list[dict[str, Any]] = []
        running = Decimal(0)
        running_ongoing = Decimal(0)
        for key in sorted(groups, key=lambda k: (k == "no date", k)):
            rows = groups[key]
            cost = sum((r.annual_cost for r in rows), Decimal(0))
            ongoing = sum((r.ongoing_cost for r in rows), Decimal(0))
            running += cost
            running_ongoing += ongoing
            out.append(
                {
                    "renewal_month": key,
                    "products": len(rows),
                    "annual_cost": _money_out(cost),
                    "ongoing_cost_if_recommendations_followed": _money_out(ongoing),
                    "cumulative_annual_cost": _money_out(running),
                    "cumulative_ongoing_cost": _money_out(running_ongoing),
                }
            )
        return out

    def to_frame(self) -> pd.DataFrame:
        """One row per product: the figures of sustain.json (money rounded to the cent)."""
        rows = []
        for a in self.products:
            d = a.to_dict()
            effect = d.pop("effect") or {}
            d.pop("overlaps")
            d["reasons"] = " ".join(d["reasons"])
            d["rules_fired"] = ", ".join(d["rules_fired"])
            d["flags"] = ", ".join(d["flags"])
            d["suppressed"] = ", ".join(d["suppressed"])
            for key in (
                "estimate",
                "ci_low",
                "ci_high",
                "probability_positive",
                "probability_meaningful",
                "evidence_tier",
                "hedges_g",
            ):
                d[f"effect_{key}"] = effect.get(key)
            rows.append(d)
        return pd.DataFrame(rows)

    def to_dict(self) -> dict[str, Any]:
        """sustain.json (schema_version "1"): products[], totals, funding_cliff, rules, notes."""
        one_time_ongoing = sum(
            (r.ongoing_cost for r in self.funding_cliff), Decimal(0)
        )
        return {
            "schema_version": SCHEMA_VERSION,
            "as_of": self.as_of.isoformat(),
            "outcome_data_expected": (
                self.outcome_data_expected.isoformat() if self.outcome_data_expected else None
            ),
            "definitions": dict(self.definitions),
            "privacy": {"min_cell_size": self.min_cell_size},
            "decision_rule": dict(self.decision),
            "rules": self.rules.to_dict(),
            "products": [a.to_dict() for a in self.products],
            "totals": {
                "annual_cost": _money_out(self.total_annual_cost),
                "one_time_funded_cost": _money_out(self.one_time_funded_cost),
                "one_time_funded_ongoing_cost_if_recommendations_followed": _money_out(
                    one_time_ongoing
                ),
                "projected_savings": _money_out(self.total_projected_savings),
                "products": len(self.products),
                "by_recommendation": {
                    rec: sum(1 for a in self.products if a.recommendation == rec)
                    for rec in RECOMMENDATIONS
                },
            },
            "funding_cliff": {
                "rows": [r.to_dict() for r in self.funding_cliff],
                "by_month": self.cliff_by_month(),
                "fund_deadlines": {
                    name: {k: v.isoformat() for k, v in dates.items()}
                    for name, dates in FUND_DEADLINES.items()
                },
            },
            "notes": list(self.notes),
        }

    def summary(self) -> str:
        """Plain-text summary: one line per product and the totals."""
        lines = [f"Sustain report as of {self.as_of.isoformat()} ({len(self.products)} products)"]
        for a in self.products:
            p = a.product
            # Only what sustain.json may show: a hidden count prints as "suppressed".
            if "students_habitual" in a.suppressed:
                habitual, per_user = "suppressed", "suppressed"
            else:
                habitual = "n/a" if a.students_habitual is None else str(a.students_habitual)
                per_user = _fmt_money(a.cost_per_habitual_user)
            lines.append(
                f"- {p.product}: {a.recommendation.upper()} -- {_fmt_money(p.annual_cost)}/yr, "
                f"{habitual} habitual of "
                f"{p.seats_purchased if p.seats_purchased is not None else 'n/a'} seats, "
                f"{per_user} per habitual user"
            )
            for reason in a.reasons:
                lines.append(f"    * {reason}")
        lines.append(
            f"Total {_fmt_money(self.total_annual_cost)}/yr, of which "
            f"{_fmt_money(self.one_time_funded_cost)} from one-time funds; projected savings "
            f"{_fmt_money(self.total_projected_savings)} if the recommendations are followed."
        )
        lines.extend(f"Note: {n}" for n in self.notes)
        return "\n".join(lines)

    def __repr__(self) -> str:
        counts = ", ".join(
            f"{rec} {n}"
            for rec in RECOMMENDATIONS
            if (n := sum(1 for a in self.products if a.recommendation == rec))
        )
        return f"<SustainResult {len(self.products)} products as of {self.as_of}: {counts}>"


# --- the computation --------------------------------------------------------------------------


def _definitions(plan: Plan, rules: SustainRules) -> dict[str, str]:
    d = plan.dosage
    month_word = "month" if d.min_habitual_months == 1 else "months"
    return {
        "activated": "the student appears in the product's usage export (any row, even with no "
        "session)",
        "active": "at least one session in the usage window",
        "habitual": f"at least {d.min_habitual_months} calendar {month_word} with "
        f"{d.min_sessions_per_month} or more sessions (plan: dosage.min_sessions_per_month, "
        "dosage.min_habitual_months)",
        "utilization": "students at a level / seats purchased",
        "price_index": f"EdTech Price Index = annual cost / cost of the seats actually used "
        f"(used = {rules.price_index_level}); 1.00 means every paid seat was used, 2.50 means "
        "each used seat effectively cost 2.5 times its list price",
        "cost_per_user": "annual cost / students at that level",
        "cost_per_tenth_sd": "cost per habitual student / (Hedges' g / 0.1): what one habitual "
        "student's gain of 0.1 SD cost, on the point estimate; the upper figure uses the lower "
        "CI bound and is missing when the CI includes no effect",
        "right_sized_seats": f"habitual users plus a {rules.right_size_buffer:.0%} buffer, "
        "rounded up",
        "projected_savings": "seats removed x price per seat (or the annual cost spread evenly "
        "over the seats when there is no per-seat price); the whole annual cost for sunset",
        "overlap": "share of a product's active users who were also active in another product "
        "for the same subject",
        "suppressed": f"a count of 1 to {plan.privacy.min_cell_size - 1} students (plan: "
        "privacy.min_cell_size) is not shown, nor any figure computed from it (utilization, cost "
        "per user, price index, cost per unit of outcome, right-sized seats); when two shown "
        "counts would give such a count by subtraction (activated - active, active - habitual, "
        "an overlap and the users of only one product), one of them is hidden too. Hidden "
        "figures read \"suppressed\" in the report, the workbook and the summary, and are null in "
        "sustain.json, whose products[].suppressed lists them. 0 is shown. When the habitual "
        f"count is hidden, the seats to keep and the savings are computed as if "
        f"{plan.privacy.min_cell_size} students were habitual users. Recommendations use the "
        "true counts.",
    }


def _verdict(ev: Evidence | None, plan: Plan) -> str:
    """The evidence verdict, from the plan's pre-registered decision rule.

    ``pass``: P(meaningful effect) >= pass probability. ``fail``: P(meaningful) <= fail
    probability and no clear positive effect. ``small-positive``: P(meaningful) <= fail
    probability, but P(effect > 0) >= pass probability -- a real but probably smaller than
    meaningful effect, which is not grounds to sunset on its own. ``inconclusive`` in between;
    ``none`` without a probability.
    """
    if ev is None or ev.probability_meaningful is None:
        return "none"
    if ev.probability_meaningful >= plan.decision.pass_probability:
        return "pass"
    if ev.probability_meaningful <= plan.decision.fail_probability:
        positive = ev.probability_positive
        if positive is not None and positive >= plan.decision.pass_probability:
            return "small-positive"
        return "fail"
    return "inconclusive"


def _available_from(ev: Evidence, rules: SustainRules) -> date:
    """The first day a result could have existed (its school year's outcome or interim date)."""
    try:
        end_year = int(ev.academic_year[-4:])
    except ValueError:
        return date.min  # year unknown: trust the file
    if ev.interim:
        return date(end_year, 3, 1)
    return date(end_year, rules.outcome_month, rules.outcome_day)


def _outcome_date(as_of: date, rules: SustainRules) -> date:
    candidate = date(as_of.year, rules.outcome_month, rules.outcome_day)
    return candidate if candidate >= as_of else date(as_of.year + 1, rules.outcome_month,
                                                     rules.outcome_day)


def _counts_by_product(
    per_student: pd.DataFrame, names: Iterable[str]
) -> dict[str, tuple[int, int, int, int | None] | None]:
    """Activated, active, habitual and fidelity students of each product (None: no rows).

    Distinct student IDs per product: all rows (activated), rows with sessions (active), rows
    at the habitual level, rows that met fidelity (None when the product's exports cannot
    measure it). One group-by per level, however many products.
    """
    ids = per_student["student_id"]
    product = per_student["product"]
    sessions = pd.to_numeric(per_student["sessions"], errors="coerce").fillna(0)
    level = per_student["usage_level"]
    habitual_rows = (level == "habitual").where(level.notna(), False).astype(bool)

    def distinct(mask: pd.Series | None = None) -> dict[str, int]:
        rows = ids if mask is None else ids.loc[mask]
        by = product if mask is None else product.loc[mask]
        return {str(k): int(v) for k, v in rows.groupby(by, sort=False).nunique().items()}

    activated = distinct()
    active = distinct(sessions > 0)
    habitual = distinct(habitual_rows)
    fidelity: dict[str, int] = {}
    measured: set[str] = set()
    if "met_fidelity" in per_student.columns:
        met_col = per_student["met_fidelity"]
        measured = {str(k) for k in product.loc[met_col.notna()].unique()}
        fidelity = distinct(met_col.astype("boolean").fillna(False).astype(bool))
    out: dict[str, tuple[int, int, int, int | None] | None] = {}
    for name in names:
        if name not in activated:
            out[name] = None
            continue
        out[name] = (
            activated[name],
            active.get(name, 0),
            habitual.get(name, 0),
            fidelity.get(name, 0) if name in measured else None,
        )
    return out


def _check_per_student(per_student: pd.DataFrame) -> None:
    needed = {"student_id", "product", "sessions", "usage_level"}
    missing = needed - set(per_student.columns)
    if missing:
        raise DataError(
            f"per-student usage frame lacks column(s) {', '.join(sorted(missing))}",
            where="per_student",
            hint="Pass DosageResult.per_student from rce.dosage.compute_dosage.",
        )


#: The figures of sustain.json that each student count feeds: when the count is hidden, so are
#: they (a cost per habitual user computed from 3 users reveals the 3).
SUPPRESSION_KEYS: dict[str, tuple[str, ...]] = {
    "activated": ("students_activated", "utilization_activated", "cost_per_activated_user"),
    "active": ("students_active", "utilization_active", "cost_per_active_user"),
    "habitual": (
        "students_habitual",
        "utilization_habitual",
        "cost_per_habitual_user",
        "cost_per_habitual_user_per_tenth_sd",
        "cost_per_habitual_user_per_tenth_sd_upper",
        "cost_per_habitual_user_per_percentile_point",
        "right_sized_seats",
    ),
    "fidelity": ("students_fidelity",),
}


def _small(n: int | None, min_cell: int) -> bool:
    """A cell that must not be shown: 1 to min_cell - 1 students (0 is a fact, not a cell)."""
    return n is not None and 0 < n < min_cell


def funnel_suppression(
    activated: int | None,
    active: int | None,
    habitual: int | None,
    fidelity: int | None = None,
    *,
    min_cell: int,
) -> dict[str, str]:
    """Which of a product's student counts are hidden, and why.

    Parameters
    ----------
    activated, active, habitual, fidelity
        The product's true counts (activated >= active >= habitual; fidelity <= activated).
    min_cell
        ``plan.privacy.min_cell_size``.

    Returns
    -------
    dict
        ``{"activated" | "active" | "habitual" | "fidelity": "primary" | "complementary"}`` for
        each hidden count.

    Notes
    -----
    *Primary*: a count of 1 to ``min_cell - 1`` students is hidden; 0 is shown (a product
    nobody used is a fact budget teams need, and no student is singled out by it).
    *Complementary*: the counts are nested, so the difference of two shown counts is itself a
    count of students (activated - active = never used it; active - habitual = used it, not
    habitually; active - fidelity = below the recommended minutes). When such a difference is
    1 to ``min_cell - 1``, one of the two is hidden as well: the broader count (activated,
    then active), because the narrower one carries the cost per user and the decision; for
    fidelity, the fidelity count itself. A hidden count equal to a shown neighbour (a difference
    of 0, e.g. every activated student was active, as in session logs) would be read off that
    neighbour, so the neighbour is hidden too. Repeated until nothing changes.

    Examples
    --------
    >>> funnel_suppression(100, 97, 60, min_cell=10)
    {'activated': 'complementary'}
    >>> funnel_suppression(40, 30, 3, min_cell=10)
    {'habitual': 'primary'}
    >>> funnel_suppression(40, 0, 0, min_cell=10)
    {}
    >>> funnel_suppression(231, 231, 225, min_cell=10)
    {'active': 'complementary', 'activated': 'complementary'}
    """
    values = {"activated": activated, "active": active, "habitual": habitual,
              "fidelity": fidelity}
    hidden = {k: "primary" for k, v in values.items() if _small(v, min_cell)}
    # (broader, narrower, which one to hide when their difference is a small cell)
    relations = (
        ("activated", "active", "activated"),
        ("active", "habitual", "active"),
        ("active", "fidelity", "fidelity"),
        ("activated", "fidelity", "fidelity"),
    )
    changed = True
    while changed:
        changed = False
        for broad, narrow, hide in relations:
            b, n = values[broad], values[narrow]
            if b is None or n is None or (broad in hidden and narrow in hidden):
                continue
            if broad not in hidden and narrow not in hidden:
                if _small(b - n, min_cell):
                    hidden[hide] = "complementary"
                    changed = True
            elif b == n:
                hidden[narrow if broad in hidden else broad] = "complementary"
                changed = True
    return hidden


def _suppressed_keys(hidden: Mapping[str, str], rules: SustainRules) -> tuple[str, ...]:
    keys = [k for level in ("activated", "active", "habitual", "fidelity") if level in hidden
            for k in SUPPRESSION_KEYS[level]]
    if rules.price_index_level in hidden:
        keys.append("price_index")
    return tuple(keys)


def _overlaps(
    per_student: pd.DataFrame,
    products: Sequence[Product],
    min_cell: int,
    hidden: Mapping[str, Mapping[str, str]] | None = None,
) -> dict[str, list[dict[str, Any]]]:
    """Active-user overlap between products of the same subject (counts, not IDs).

    An overlap cell is hidden when the students in both, or those in only one of the two
    (the product's active users minus the overlap, which the report's counts would give by
    subtraction), number 1 to ``min_cell - 1``, or when the product's own active count is
    hidden (its share of active users would reveal it), or the other product's active count
    is hidden and equal to the overlap.
    """
    hidden = hidden or {}
    sessions = pd.to_numeric(per_student["sessions"], errors="coerce").fillna(0)
    active = per_student.loc[sessions > 0]
    sets = {
        p.product: set(active.loc[active["product"] == p.product, "student_id"].tolist())
        for p in products
    }
    out: dict[str, list[dict[str, Any]]] = {p.product: [] for p in products}
    for p in products:
        if not p.subject or not sets[p.product]:
            continue
        for q in products:
            if q is p or q.subject != p.subject or not sets[q.product]:
                continue
            both = len(sets[p.product] & sets[q.product])
            share = both / len(sets[p.product])
            suppressed = (
                _small(both, min_cell)
                or _small(len(sets[p.product]) - both, min_cell)
                or _small(len(sets[q.product]) - both, min_cell)
                or "active" in hidden.get(p.product, {})
                # every active user of q also uses p: the overlap would give q's hidden count
                or ("active" in hidden.get(q.product, {}) and len(sets[q.product]) == both)
            )
            out[p.product].append(
                {
                    "product": q.product,
                    "subject": p.subject,
                    "students_both": None if suppressed else both,
                    "share_of_active": None if suppressed else share,
                    "suppressed": suppressed,
                    "_share": share,
                    "_both": both,
                }
            )
    return out


def _ceil_int(value: Decimal) -> int:
    return int(value.to_integral_value(rounding=ROUND_CEILING))


def _effect_sentence(ev: Evidence, plan: Plan) -> str:
    level = plan.analysis.confidence_level
    parts = []
    window = f"{ev.outcome_window} " if ev.outcome_window else ""
    if ev.has_effect:
        parts.append(
            f"local {window}effect {ev.estimate:+.2f} (outcome units; {level:.0%} CI "
            f"{ev.ci_low:+.2f} to {ev.ci_high:+.2f})"
        )
        if ev.hedges_g is not None:
            parts.append(f"g = {ev.hedges_g:+.3f}")
    if ev.probability_positive is not None:
        parts.append(f"P(effect > 0) = {ev.probability_positive:.0%}")
    if ev.probability_meaningful is not None:
        parts.append(
            f"P(effect >= {plan.decision.meaningful_effect:g} SD) = {ev.probability_meaningful:.0%}"
        )
    if ev.evidence_tier:
        parts.append(f"consistent with ESSA tier {ev.evidence_tier}")
    if ev.n_treatment is not None:
        if _small(ev.n_treatment, plan.privacy.min_cell_size):
            parts.append(f"fewer than {plan.privacy.min_cell_size} students treated")
        else:
            parts.append(f"{ev.n_treatment} students treated")
    return "; ".join(parts)


def _assess(
    p: Product,
    counts: tuple[int, int, int, int | None] | None,
    ev: Evidence | None,
    overlaps: list[dict[str, Any]],
    verdicts: Mapping[str, str],
    *,
    plan: Plan,
    rules: SustainRules,
    as_of: date,
    outcome_expected: date,
    hidden: Mapping[str, str] | None = None,
) -> ProductAssessment:
    reasons: list[str] = []
    fired: list[str] = []
    flags: list[str] = []
    seats = p.seats_purchased
    cost = p.annual_cost
    m = plan.privacy.min_cell_size
    # The rules below run on the true counts; every sentence a report prints goes through
    # these helpers, so a hidden count (and anything computed from it) is never written.
    hidden = dict(hidden or {})

    def shown(level: str) -> bool:
        return level not in hidden

    def count(level: str, value: int | None) -> str:
        """A count as text: the number, "fewer than m" or "a suppressed number of"."""
        if level in hidden:
            return f"fewer than {m}" if hidden[level] == "primary" else "a suppressed number of"
        return "n/a" if value is None else str(value)

    activated = active = habitual = None
    fidelity: int | None = None
    if counts is not None:
        activated, active, habitual, fidelity = counts

    def per(n: int | None) -> Decimal | None:
        return cost / Decimal(n) if n else None

    cost_per_seat = per(seats)
    used_by_level = {"activated": activated, "active": active, "habitual": habitual}
    used = used_by_level[rules.price_index_level]
    price_index: float | None = None
    if seats and used:
        # Spend on used seats = price per seat x used seats (at most every seat bought).
        price_index = seats / min(used, seats)

    right_sized: int | None = None
    if seats is not None and habitual is not None:
        right_sized = min(
            seats, _ceil_int(Decimal(habitual) * (1 + Decimal(str(rules.right_size_buffer))))
        )

    # Cost per unit of outcome: only for a positive point estimate (a negative or zero effect
    # has no cost per unit gained).
    cost_habitual = per(habitual)
    per_tenth = per_tenth_high = per_point = None
    if ev is not None and cost_habitual is not None:
        if ev.hedges_g is not None and ev.hedges_g > 0:
            g = Decimal(repr(ev.hedges_g))
            per_tenth = cost_habitual * _TENTH_SD / g
            if ev.has_effect and ev.estimate and ev.ci_low is not None and ev.ci_low > 0:
                g_low = g * Decimal(repr(ev.ci_low)) / Decimal(repr(ev.estimate))
                per_tenth_high = cost_habitual * _TENTH_SD / g_low
        if ev.improvement_index is not None and ev.improvement_index > 0:
            per_point = cost_habitual / Decimal(repr(ev.improvement_index))

    # --- flags that do not depend on the evidence ---
    if p.privacy_agreement == "signed" and (
        p.privacy_agreement_expires is None or p.privacy_agreement_expires >= as_of
    ):
        if p.privacy_agreement_expires and p.renewal_date and (
            p.privacy_agreement_expires < p.renewal_date
        ):
            flags.append("PRIVACY_AGREEMENT_EXPIRES_BEFORE_RENEWAL")
            reasons.append(
                f"The student-data-privacy agreement expires on "
                f"{p.privacy_agreement_expires.isoformat()}, before the renewal on "
                f"{p.renewal_date.isoformat()}: renew the agreement with the contract."
            )
    else:
        if p.privacy_agreement == "signed" or p.privacy_agreement == "expired":
            code = "PRIVACY_AGREEMENT_EXPIRED"
            when = (
                f" on {p.privacy_agreement_expires.isoformat()}"
                if p.privacy_agreement_expires
                else ""
            )
            text = f"The student-data-privacy agreement expired{when}"
        elif p.privacy_agreement == "none":
            code, text = "NO_PRIVACY_AGREEMENT", "There is no student-data-privacy agreement"
        else:
            code = "PRIVACY_AGREEMENT_UNKNOWN"
            text = "No student-data-privacy agreement is on record"
        flags.append(code)
        fired.append("privacy")
        reasons.append(
            f"{text}: do not renew or share student data until a current agreement is signed, "
            "whatever the evidence."
        )
    if p.approval_status and p.approval_status.strip().lower() not in rules.approved_statuses:
        flags.append("NOT_APPROVED")
        reasons.append(
            f"District approval status is {p.approval_status!r}, not approved: the product needs "
            "approval before renewal."
        )
    days_to_renewal = (p.renewal_date - as_of).days if p.renewal_date else None
    if days_to_renewal is not None:
        if days_to_renewal < 0:
            flags.append("RENEWAL_DATE_PASSED")
            reasons.append(
                f"The renewal date {p.renewal_date.isoformat()} has passed "
                f"({-days_to_renewal} days ago): check whether the contract auto-renewed."
            )
        elif days_to_renewal <= rules.renewal_notice_days:
            flags.append("RENEWAL_SOON")
            reasons.append(
                f"Renewal on {p.renewal_date.isoformat()} is {days_to_renewal} days away "
                f"(within the {rules.renewal_notice_days}-day notice window)."
            )
    final_evidence = ev is not None and ev.has_effect and not ev.interim
    if p.renewal_date is not None and p.renewal_date < outcome_expected and not final_evidence:
        flags.append("RENEWAL_BEFORE_OUTCOMES")
        if ev is not None and (ev.has_effect or ev.dose_per_month):
            interim = _effect_sentence(ev, plan) if ev.has_effect else ""
            if ev.dose_per_month and ev.dose_per_month[0] is not None:
                est, lo, hi = ev.dose_per_month
                dose_text = f"dose-response {est:+.2f} per habitual month"
                if lo is not None and hi is not None:
                    dose_text += f" (CI {lo:+.2f} to {hi:+.2f})"
                interim = f"{interim}; {dose_text}" if interim else dose_text
            have = f"the interim evidence is: {interim}"
        else:
            have = "there is no outcome evidence yet"
        reasons.append(
            f"Renewal on {p.renewal_date.isoformat()} comes before the spring outcome data "
            f"(expected by {outcome_expected.isoformat()}); {have}."
        )
    one_time = rules.is_one_time(p.funding_source) if p.funding_source else False
    round_ = esser_round(p.funding_source) if p.funding_source else None
    if round_ is not None and p.renewal_date is not None:
        latest = FUND_DEADLINES[round_]["latest"]
        if p.renewal_date > latest:
            flags.append("ONE_TIME_FUNDS_ENDED")
            reasons.append(
                f"{round_} money cannot pay for the {p.renewal_date.isoformat()} renewal (its last "
                f"possible liquidation date was {latest.isoformat()}): continuing needs an "
                "ongoing fund."
            )
    if seats is not None and active is not None and active > seats:
        flags.append("USE_ABOVE_SEATS")
        who = f"{active} students used it but only" if shown("active") else (
            "More students used it than the"
        )
        reasons.append(
            f"{who} {seats} seats were bought (site licence, shared logins or a roster error?); "
            "utilization is above 100%."
        )
    if p.scores and ev is None:
        flags.append("SCORES_NOT_ANALYSED")
        reasons.append(
            "Scores are listed for this product, but outcome analysis is done by `rce analyze`; "
            "point `evidence` at its results.json to use them."
        )

    # --- evidence verdict ---
    verdict = _verdict(ev, plan)
    decision_verdict = verdict
    if ev is not None and ev.interim and (ev.has_effect or ev.probability_meaningful is not None):
        flags.append("INTERIM_EVIDENCE")
        if not rules.interim_evidence_decides and verdict in ("pass", "fail"):
            decision_verdict = "inconclusive"
    if ev is not None and (ev.has_effect or ev.probability_meaningful is not None):
        kind = "interim " if ev.interim else ""
        label = {
            "pass": "meets the pre-registered pass threshold",
            "fail": "is at or below the pre-registered fail threshold (the data do not support a "
            "meaningful effect; this is not proof of no effect)",
            "small-positive": "shows a positive effect (P(effect > 0) at least the pass "
            f"threshold) that is probably smaller than the meaningful "
            f"{plan.decision.meaningful_effect:g} SD (P(meaningful) at or below the fail "
            "threshold): neither a pass nor grounds to drop it",
            "inconclusive": "is between the fail and pass thresholds: inconclusive",
            "none": "has no probability of a meaningful effect",
        }[verdict]
        reasons.append(
            f"Evidence ({kind}{ev.design or 'local study'}): {_effect_sentence(ev, plan)}; this "
            f"{label} (pass >= {plan.decision.pass_probability:.0%}, fail <= "
            f"{plan.decision.fail_probability:.0%})."
        )
        if decision_verdict != verdict:
            reasons.append(
                "Interim evidence does not decide under the district's rules "
                "(interim_evidence_decides = false): treated as inconclusive."
            )
    else:
        why = f" ({ev.no_impact_reason})" if ev is not None and ev.no_impact_reason else ""
        if ev is not None and ev.dose_per_month and ev.dose_per_month[0] is not None:
            est, lo, hi = ev.dose_per_month
            ci = f" (CI {lo:+.2f} to {hi:+.2f})" if lo is not None and hi is not None else ""
            why += (
                f"; dose-response only: {est:+.2f} outcome units per habitual month{ci}, an "
                "association that does not by itself show the product caused it"
            )
        reasons.append(
            f"No local impact estimate{why}: the product's effect is unknown, so nothing here "
            "says it works or does not."
        )

    # --- the rules, in order; the first that applies sets the recommendation ---
    util_act = activated / seats if seats and activated is not None else None
    util_active = active / seats if seats and active is not None else None
    rec: str | None = None
    seats_rec: int | None = seats

    def right_size_applies() -> bool:
        return (
            seats is not None
            and right_sized is not None
            and seats > 0
            and (seats - right_sized) / seats >= rules.right_size_min_cut
        )

    def right_size_reason(qualifier: str) -> str:
        assert seats is not None and right_sized is not None
        if not shown("habitual"):
            keep = published_right_size()
            cut = seats - keep
            text = (
                f"Right-size{qualifier}: fewer than {m} students used it habitually; with the "
                f"{rules.right_size_buffer:.0%} buffer at most {keep} seats are needed (counted "
                f"as if {m} students were habitual users, so that the seat figure does not reveal "
                f"the number), and the cut is at least the {rules.right_size_min_cut:.0%} "
                "threshold."
            )
            if cut > 0:
                return text + f" Keeping {keep} of the {seats} seats bought removes {cut}."
            return text + (
                f" The seat and savings figures keep all {seats} seats: any smaller published "
                "figure would reveal the number of habitual users."
            )
        cut = seats - right_sized
        return (
            f"Right-size{qualifier}: {habitual} habitual users + "
            f"{rules.right_size_buffer:.0%} buffer = {right_sized} seats, {cut} fewer than the "
            f"{seats} bought ({cut / seats:.0%} of seats, at least the "
            f"{rules.right_size_min_cut:.0%} threshold)."
        )

    def published_right_size() -> int:
        """Seats to keep as published: from the true count, or from min_cell when it is hidden."""
        assert seats is not None and right_sized is not None
        if shown("habitual"):
            return right_sized
        buffer = 1 + Decimal(str(rules.right_size_buffer))
        return min(seats, _ceil_int(Decimal(m) * buffer))

    if counts is None:
        reasons.append("No usage data for this product: utilization cannot be measured.")
    if util_act is not None and util_act < rules.adoption_floor and decision_verdict != "pass":
        rec = "sunset"
        fired.append("adoption_floor")
        how_many = (
            f"only {activated} of {seats} seats ({util_act:.1%})"
            if shown("activated")
            else f"{count('activated', activated)} students, of {seats} seats,"
        )
        reasons.append(
            f"Sunset: {how_many} were ever activated, below the {rules.adoption_floor:.0%} "
            "adoption floor, and there is no passing evidence."
        )
    if rec is None and decision_verdict == "fail" and ev is not None:
        rec = "sunset"
        fired.append("evidence_fail")
        reasons.append(
            f"Sunset: P(effect >= {plan.decision.meaningful_effect:g} SD) = "
            f"{ev.probability_meaningful:.0%} is at or below the pre-registered "
            f"{plan.decision.fail_probability:.0%} fail threshold; the district's rule is to stop "
            "paying for a product whose local evidence does not show a meaningful effect."
        )
    if rec is None and decision_verdict != "pass":
        for o in overlaps:
            passes = verdicts.get(o["product"]) == "pass"
            if o["_share"] >= rules.redundancy_min_overlap and passes:
                rec = "sunset"
                fired.append("redundancy")
                who = (
                    f"{o['students_both']} of its {active} active users ({o['_share']:.0%})"
                    if not o["suppressed"]
                    else f"at least {rules.redundancy_min_overlap:.0%} of its active users "
                    "(the counts are suppressed: a group of fewer than "
                    f"{m} students would be revealed)"
                )
                reasons.append(
                    f"Sunset: {who} also use {o['product']} for {p.subject}, which has passing "
                    f"evidence (overlap threshold {rules.redundancy_min_overlap:.0%})."
                )
                break
    if rec is None and decision_verdict == "pass":
        if right_size_applies():
            rec = "right-size"
            fired.append("right_size")
            reasons.append(right_size_reason(" (the evidence passes, the seats are too many)"))
        elif (
            rules.max_cost_per_tenth_sd is not None
            and per_tenth is not None
            and per_tenth > rules.max_cost_per_tenth_sd
        ):
            rec = "right-size"
            fired.append("cost_ceiling")
            figure = (
                f"{_fmt_money(per_tenth)} per habitual student per 0.1 SD"
                if shown("habitual")
                else f"the cost per habitual student per 0.1 SD (suppressed: fewer than {m} "
                "habitual users)"
            )
            reasons.append(
                f"Right-size or renegotiate: {figure} is above the district ceiling of "
                f"{_fmt_money(rules.max_cost_per_tenth_sd)}."
            )
        elif util_active is not None and util_active >= rules.scale_min_active_utilization:
            rec = "scale"
            fired.append("scale")
            in_use = f"{util_active:.0%} of seats" if shown("active") else "seats"
            reasons.append(
                f"Scale: passing evidence and {in_use} in active use (at least "
                f"{rules.scale_min_active_utilization:.0%}): demand is at capacity. How many "
                "students to add is the district's decision; each added seat costs about "
                f"{_fmt_money(p.seat_price)} a year."
            )
        else:
            rec = "sustain"
            fired.append("sustain")
            reasons.append(
                "Sustain: passing evidence and seats in reasonable use"
                + (
                    f" ({util_active:.0%} active)."
                    if util_active is not None and shown("active")
                    else "."
                )
            )
    if (
        rec is None
        and active
        and habitual is not None
        and habitual / active < rules.improve_max_habitual_share
        and (util_active is None or util_active >= rules.improve_min_active_utilization)
    ):
        rec = "improve-implementation"
        fired.append("improve_implementation")
        if util_active is None:
            seats_text = ""
        elif shown("active"):
            seats_text = (
                f", with {util_active:.0%} of seats in active use (at least "
                f"{rules.improve_min_active_utilization:.0%})"
            )
        else:
            seats_text = (
                f", with at least {rules.improve_min_active_utilization:.0%} of seats in active "
                "use"
            )
        if shown("habitual") and shown("active"):
            few = (
                f"only {habitual} of {active} active users ({habitual / active:.0%}) reached "
                "habitual use"
            )
        elif shown("active"):
            few = f"{count('habitual', habitual)} of its {active} active users reached habitual use"
        else:
            few = f"{count('habitual', habitual)} students reached habitual use, fewer than"
            few += " half of the active users" if rules.improve_max_habitual_share == 0.5 else (
                f" {rules.improve_max_habitual_share:.0%} of the active users"
            )
        reasons.append(
            f"Improve implementation: {few} (threshold "
            f"{rules.improve_max_habitual_share:.0%}){seats_text}; the product was not used at "
            "the dose its effect depends on, so its effect cannot be judged yet."
        )
    if rec is None and right_size_applies():
        if right_sized == 0:
            rec = "sunset"
            fired.append("no_habitual_users")
            users = f"the {active} active users" if shown("active") else "the active users"
            reasons.append(
                f"Sunset: none of {users} reached habitual use, so "
                f"right-sizing to habitual users leaves no seats of the {seats} bought."
            )
        else:
            rec = "right-size"
            fired.append("right_size")
            reasons.append(
                right_size_reason(
                    " (a positive effect below the meaningful size; the seats are too many)"
                    if decision_verdict == "small-positive"
                    else ", whatever its effect"
                )
            )
    if rec is None:
        rec = "insufficient-evidence"
        fired.append("insufficient_evidence")
        reasons.append(
            "Insufficient evidence: no rule for sustaining or cutting applies; keep the current "
            "seats and collect outcome evidence before the next renewal."
        )

    # Redundancy is always worth telling, even when it did not decide.
    for o in overlaps:
        if o["_share"] >= rules.redundancy_min_overlap and "redundancy" not in fired:
            who = (
                f"{o['students_both']} students ({o['_share']:.0%} of its active users)"
                if not o["suppressed"]
                else f"at least {rules.redundancy_min_overlap:.0%} of its active users (the "
                f"counts are suppressed: a group of fewer than {m} students would be revealed)"
            )
            reasons.append(f"Overlap: {who} also use {o['product']} for {p.subject}.")

    if counts is not None:
        parts = []
        for level, value in (("activated", activated), ("active", active),
                             ("habitual", habitual)):
            assert value is not None
            text = f"{count(level, value)} {level}"
            if seats and shown(level):
                text += f" ({value / seats:.0%})"
            parts.append(text)
        of_seats = f" of {seats} seats" if seats else ""
        reasons.append(f"Use{of_seats}: {', '.join(parts)}.")
        if hidden:
            reasons.append(
                f"Counts of 1 to {m - 1} students, what is computed from them, and a count that "
                "would reveal one by subtraction are suppressed; the recommendation uses the "
                "true counts."
            )
    if cost_habitual is not None or (cost_per_seat is not None and counts is not None):
        figures = [f"{_fmt_money(cost_per_seat)} per seat"] if cost_per_seat is not None else []
        if shown("active") and per(active) is not None:
            figures.append(f"{_fmt_money(per(active))} per active user")
        if shown("habitual") and cost_habitual is not None:
            figures.append(f"{_fmt_money(cost_habitual)} per habitual user")
        if price_index is not None and shown(rules.price_index_level):
            figures.append(f"price index {price_index:.2f}")
        if per_tenth is not None and shown("habitual"):
            figures.append(f"{_fmt_money(per_tenth)} per habitual student per 0.1 SD")
        reasons.append(
            f"Cost: {_fmt_money(cost)} a year" + ("; " + ", ".join(figures) if figures else "")
            + "."
        )

    savings = Decimal(0)
    if rec == "sunset":
        seats_rec = 0 if seats is not None else None
        savings = cost
    elif rec == "right-size" and seats is not None and right_sized is not None:
        # With a hidden habitual count the seats kept are counted from min_cell habitual users:
        # savings from the true count would reveal it (seats, price and savings are published).
        seats_rec = published_right_size()
        if p.price_per_seat is not None:
            savings = min(cost, p.price_per_seat * (seats - seats_rec))
        elif seats:
            # Multiply before dividing so that cutting every seat saves exactly the annual cost.
            savings = cost * (seats - seats_rec) / Decimal(seats)

    clean_overlaps = tuple(
        {k: v for k, v in o.items() if not k.startswith("_")} for o in overlaps
    )
    suppressed = _suppressed_keys(hidden, rules)
    if ev is not None and _small(ev.n_treatment, m):
        suppressed += ("n_treatment",)
    return ProductAssessment(
        product=p,
        students_activated=activated,
        students_active=active,
        students_habitual=habitual,
        students_fidelity=fidelity,
        cost_per_seat=cost_per_seat,
        cost_per_activated_user=per(activated),
        cost_per_active_user=per(active),
        cost_per_habitual_user=cost_habitual,
        price_index=price_index,
        evidence=ev,
        verdict=verdict,
        cost_per_habitual_per_tenth_sd=per_tenth,
        cost_per_tenth_sd_high=per_tenth_high,
        cost_per_percentile_point=per_point,
        right_sized_seats=right_sized,
        recommendation=rec,
        reasons=tuple(reasons),
        rules_fired=tuple(fired),
        flags=tuple(flags),
        seats_recommended=seats_rec,
        projected_savings=savings,
        overlaps=clean_overlaps,
        one_time_funded=one_time,
        days_to_renewal=days_to_renewal,
        suppressed=suppressed,
    )


def compute_sustain(
    products: Sequence[Product],
    per_student: pd.DataFrame,
    *,
    evidence: Mapping[str, Evidence] | Iterable[Evidence] | None = None,
    plan: Plan,
    rules: SustainRules | None = None,
    as_of: date,
) -> SustainResult:
    """Utilization, cost, evidence and a recommendation for each product.

    Parameters
    ----------
    products
        From :func:`read_products`.
    per_student
        ``DosageResult.per_student``: one row per student x product with at least
        ``student_id, product, sessions, usage_level`` (``met_fidelity`` optional). Student IDs
        are only counted, never reported.
    evidence
        Evidence per product (a mapping product -> Evidence, or Evidence records matched by
        their ``product``). Products without evidence get ``effect: null``.
    plan
        Study plan: habitual-use definition, decision rule (meaningful effect, pass and fail
        probabilities), confidence level and minimum cell size.
    rules
        Sustain thresholds (default :class:`SustainRules`).
    as_of
        Decision date: renewal timing and agreement expiry are judged against it.

    Returns
    -------
    SustainResult

    Notes
    -----
    Rules, in order; the first that applies sets the recommendation, and every rule that fired
    is listed with its figures:

    1. *adoption floor*: activated / seats < ``adoption_floor`` without passing evidence ->
       sunset;
    2. *evidence fail*: P(meaningful effect) <= plan.decision.fail_probability and no clear
       positive effect -> sunset (a clear positive effect that is probably below the meaningful
       size, P(effect > 0) >= pass probability, is verdict "small-positive" and goes on to the
       utilization rules instead);
    3. *redundancy*: no passing evidence and >= ``redundancy_min_overlap`` of active users also
       use a same-subject product whose evidence passes -> sunset;
    4. *passing evidence*: right-size when the right-sized count is >= ``right_size_min_cut``
       below seats, or the cost per 0.1 SD is above ``max_cost_per_tenth_sd``; scale when active
       utilization >= ``scale_min_active_utilization``; otherwise sustain;
    5. otherwise improve-implementation when habitual / active < ``improve_max_habitual_share``
       and active / seats >= ``improve_min_active_utilization``; right-size when the cut is
       large enough; else insufficient-evidence.

    Privacy-agreement, approval, renewal-timing and funding flags are added whatever the
    recommendation.

    Examples
    --------
    >>> import pandas as pd
    >>> from rce.config import Plan
    >>> p = Product(product="Tool", annual_cost=Decimal("1000"), seats_purchased=100)
    >>> frame = pd.DataFrame({"student_id": ["1", "2"], "product": ["Tool", "Tool"],
    ...                       "sessions": [5, 0], "usage_level": ["habitual", "none"]})
    >>> r = compute_sustain([p], frame, plan=Plan(), as_of=date(2025, 3, 1))
    >>> r.products[0].recommendation
    'sunset'
    """
    rules = rules or SustainRules()
    if isinstance(per_student, pd.DataFrame):
        _check_per_student(per_student)
    else:
        raise DataError(
            "per_student must be a DataFrame",
            where="per_student",
            hint="Pass DosageResult.per_student.",
        )
    if not products:
        raise DataError("no products to assess", where="products", hint="List products first.")
    frame = per_student.assign(
        product=per_student["product"].astype("str"), student_id=per_student["student_id"]
    )
    ev_map: dict[str, Evidence] = {}
    if evidence is not None:
        items = evidence.items() if isinstance(evidence, Mapping) else (
            (e.product, e) for e in evidence
        )
        for name, ev in items:
            ev_map[str(name).casefold()] = ev
    known = {p.product.casefold() for p in products}
    notes: list[str] = []
    unused_ev = sorted(k for k in ev_map if k not in known)
    if unused_ev:
        notes.append(
            f"{len(unused_ev)} evidence file(s) name a product not in the products file and were "
            "not used."
        )
    usage_products = set(frame["product"].dropna().unique().tolist())
    unknown_usage = sorted(usage_products - {p.product for p in products})
    if unknown_usage:
        notes.append(
            f"Usage for {len(unknown_usage)} product(s) not in the products file was ignored: "
            + ", ".join(unknown_usage)
            + "."
        )
    outcome_expected = _outcome_date(as_of, rules)
    min_cell = plan.privacy.min_cell_size
    counts = _counts_by_product(frame, [p.product for p in products])
    hidden = {
        name: funnel_suppression(*c, min_cell=min_cell) if c is not None else {}
        for name, c in counts.items()
    }
    overlaps = _overlaps(frame, products, min_cell, hidden)
    verdicts = {p.product: _verdict(ev_map.get(p.product.casefold()), plan) for p in products}
    if not rules.interim_evidence_decides:
        for p in products:
            ev = ev_map.get(p.product.casefold())
            if ev is not None and ev.interim and verdicts[p.product] in ("pass", "fail"):
                verdicts[p.product] = "inconclusive"
    assessments = tuple(
        _assess(
            p,
            counts[p.product],
            ev_map.get(p.product.casefold()),
            overlaps[p.product],
            verdicts,
            plan=plan,
            rules=rules,
            as_of=as_of,
            outcome_expected=outcome_expected,
            hidden=hidden[p.product],
        )
        for p in products
    )
    cliff = []
    for a in assessments:
        if not a.one_time_funded:
            continue
        p = a.product
        round_ = esser_round(p.funding_source)
        cliff.append(
            CliffRow(
                product=p.product,
                funding_source=p.funding_source,
                esser_round=round_,
                renewal_date=p.renewal_date,
                annual_cost=p.annual_cost,
                recommendation=a.recommendation,
                ongoing_cost=p.annual_cost - a.projected_savings,
                fund_ends=FUND_DEADLINES[round_]["latest"] if round_ else None,
            )
        )
    cliff.sort(key=lambda r: (r.renewal_date is None, r.renewal_date or date.max, r.product))
    notes.append(
        "Counts come from the usage exports supplied; students who used a product outside them "
        "are not counted. Evidence is local and applies to students like those analysed."
    )
    notes.append(
        "Savings assume the vendor prices seats linearly; flat-fee contracts may not shrink with "
        "seats. Costs cover licences only (not training, staff time or integration)."
    )
    return SustainResult(
        products=assessments,
        funding_cliff=tuple(cliff),
        rules=rules,
        as_of=as_of,
        definitions=_definitions(plan, rules),
        decision={
            "meaningful_effect_sd": plan.decision.meaningful_effect,
            "pass_probability": plan.decision.pass_probability,
            "fail_probability": plan.decision.fail_probability,
        },
        notes=tuple(notes),
        outcome_data_expected=outcome_expected,
        min_cell_size=min_cell,
    )


# --- end to end -------------------------------------------------------------------------------


def _analyse_inline(p: Product, plan: Plan, resolve: Any) -> Evidence:
    """Run ``rce analyze`` in memory for a product whose entry lists score files.

    The plan's roster, outcome, dosage and decision settings are used; the product's own usage
    files and scores replace the plan's inputs, and the product is the treatment.
    """
    from rce.config import UsageInput, plan_lock_status
    from rce.pipeline import run_analysis

    if not p.usage:
        raise DataError(
            "scores are listed but no usage file, so the product's use cannot be analysed",
            where=f"{p.where}, column usage",
            hint="Add the product's usage export, or point evidence at a results.json.",
        )
    inputs = replace(
        plan.inputs,
        scores=tuple(resolve(s) for s in p.scores),
        usage=tuple(
            UsageInput(path=resolve(u), product=p.product, layout=p.layout, subject=p.subject)
            for u in p.usage
        ),
    )
    study = replace(plan.study, product=p.product)
    run = run_analysis(
        replace(plan, study=study, inputs=inputs), lock=plan_lock_status(plan.source)
    )
    ev = evidence_from_results(run.results, source=f"inline analysis ({p.where})")
    return replace(ev, product=p.product)


#: Usage exports one ``rce.dosage.compute_dosage`` call accepts (each is one bit of a 64-bit
#: signed mask there).
MAX_EXPORTS_PER_DOSAGE_RUN = 63


def _batches(sources: Sequence[Any], limit: int = MAX_EXPORTS_PER_DOSAGE_RUN) -> list[list[Any]]:
    """Usage sources in runs of at most ``limit``, all exports of one product in the same run.

    A product's exports must meet in one run (its student-days are merged across them); a
    product with more than ``limit`` exports gets a run of its own, where rce.dosage says how
    to stitch them.

    Examples
    --------
    >>> from types import SimpleNamespace as S
    >>> srcs = [S(product=p) for p in "AABBBC"]
    >>> [[s.product for s in b] for b in _batches(srcs, limit=4)]
    [['A', 'A', 'C'], ['B', 'B', 'B']]
    """
    groups: dict[str, list[Any]] = {}
    for src in sources:
        groups.setdefault(src.product, []).append(src)
    batches: list[list[Any]] = []
    for group in groups.values():
        # First fit, in file order: few runs, and the same batches for the same products file.
        for batch in batches:
            if len(batch) + len(group) <= limit:
                batch.extend(group)
                break
        else:
            batches.append(list(group))
    return batches


def _per_student_in_batches(
    sources: Sequence[Any], plan: Plan, seats: Mapping[str, int], compute: Any
) -> pd.DataFrame:
    """Per-student dosage of every product, in as few dosage runs as the export limit allows.

    Each product's figures come from its own exports only (no ID map across products), so a
    product's rows are the same whichever run computes them.
    """
    frames = []
    for batch in _batches(sources):
        names = {s.product for s in batch}
        dosage = compute(batch, plan=plan, seats={k: v for k, v in seats.items() if k in names})
        frames.append(dosage.per_student)
    filled = [f for f in frames if len(f)]
    if len(filled) <= 1:
        return filled[0] if filled else frames[0]
    return pd.concat(filled, ignore_index=True)


class SustainRun(NamedTuple):
    """What :func:`run_sustain_report` returns (unpacks as ``result, files, json_text``)."""

    result: SustainResult
    files: tuple[Path, ...]
    json_text: str


def run_sustain_report(
    products_path: Path | str | None = None,
    *,
    plan: Plan,
    out_dir: Path | str | None,
    as_of: date,
    evidence_paths: Sequence[Path | str] = (),
    rules: SustainRules | None = None,
) -> SustainRun:
    """Read the products file and usage, compute the sustain report and (optionally) write it.

    Parameters
    ----------
    products_path
        Products file; default ``plan.inputs.products``. Relative ``usage`` and ``evidence``
        paths inside it resolve against its folder.
    plan
        Study plan (dosage definition, decision rule, engine).
    out_dir
        Folder for sustain.html / .md / .json / .xlsx; None computes without writing.
    as_of
        Decision date.
    evidence_paths
        results.json files (or report folders), matched to products by ``study.product``.
        When none are given, every ``results.json`` one or two folders below the products file
        (e.g. ``rce-report/results.json`` written by ``rce analyze``, or ``runs/<run>/``) is
        used. A product's own ``evidence`` key always wins; final (spring) evidence beats
        interim evidence.
    rules
        Sustain thresholds.

    Returns
    -------
    SustainRun
        ``(result, files, json_text)``: the result, the files written (empty when ``out_dir``
        is None) and the text of sustain.json.
    """
    from rce.config import UsageInput

    if products_path is None:
        if not plan.inputs.products:
            raise PlanError(
                "no products file given",
                where=str(plan.source) if plan.source else "plan",
                hint="Pass --products FILE or set [inputs] products in rce.toml.",
            )
        products_path = plan.resolve(plan.inputs.products)
    if rules is None:
        configured = getattr(plan, "sustain", None)
        if isinstance(configured, SustainRules):
            rules = configured
        elif isinstance(configured, Mapping):
            rules = rules_from_mapping(configured)
    products_path = Path(products_path)
    products = read_products(products_path)
    # Absolute, so that usage paths are not resolved a second time against the plan's folder.
    base = products_path.parent.absolute()

    def resolve(rel: str) -> str:
        p = Path(rel).expanduser()
        return str(p if p.is_absolute() else base / p)

    evidence: dict[str, Evidence] = {}
    discovered = (
        []
        if evidence_paths
        else sorted({*base.glob("*/results.json"), *base.glob("*/*/results.json")})
    )
    found: list[Evidence] = []
    for extra in [*evidence_paths, *discovered]:
        try:
            found.append(load_evidence(extra))
        except RceError:
            if not discovered or Path(extra) not in discovered:
                raise
            # A damaged report folder found by the search is skipped (named in the notes).
            found.append(Evidence(product="", source=str(extra)))
    skipped = [e.source for e in found if not e.product]
    # Only evidence that existed on the decision date counts: a spring result of a school year
    # is available from the outcome date of that year, a winter (interim) one from March.
    rules_for_dates = rules or SustainRules()
    future = [e for e in found if e.product and _available_from(e, rules_for_dates) > as_of]
    found = [e for e in found if e not in future]
    # Final evidence beats interim evidence for the same product; among equals the newest file.
    found.sort(key=lambda e: (not e.interim, Path(e.source).stat().st_mtime if e.product else 0))
    for ev in found:
        if ev.product:
            evidence[ev.product.casefold()] = ev
    for p in products:
        if p.evidence:
            ev = load_evidence(resolve(p.evidence))
            evidence[p.product.casefold()] = replace(ev, product=p.product)

    for p in products:
        if p.scores and p.product.casefold() not in evidence:
            evidence[p.product.casefold()] = _analyse_inline(p, plan, resolve)

    with_usage = [p for p in products if p.usage]
    if with_usage:
        try:
            from rce.dosage import compute_dosage
            from rce.io import usage_sources
        except ImportError as exc:  # pragma: no cover - only before rce.io / rce.dosage land
            raise DataError(
                f"usage cannot be read in this build ({exc})",
                where=str(products_path),
                hint="rce.io and rce.dosage are required for usage files.",
            ) from None
        usage_inputs = tuple(
            UsageInput(path=resolve(path), product=p.product, layout=p.layout, subject=p.subject)
            for p in with_usage
            for path in p.usage
        )
        # Licences are judged on the whole export, not on each student's test window.
        usage_plan = replace(
            plan,
            inputs=replace(plan.inputs, usage=usage_inputs),
            dosage=replace(plan.dosage, window="all")
            if plan.dosage.window == "baseline-to-outcome"
            else plan.dosage,
        )
        sources = usage_sources(usage_plan)
        seats = {p.product: p.seats_purchased for p in products if p.seats_purchased}
        per_student = _per_student_in_batches(sources, usage_plan, seats, compute_dosage)
    else:
        per_student = pd.DataFrame(
            {"student_id": [], "product": [], "sessions": [], "usage_level": []}
        )
    result = compute_sustain(
        products, per_student, evidence=evidence, plan=plan, rules=rules, as_of=as_of
    )
    used = sorted({ev.source for ev in evidence.values() if ev.source})
    extra_notes = [
        "Evidence read from: "
        + ", ".join(
            Path(u).absolute().relative_to(base).as_posix()
            if Path(u).absolute().is_relative_to(base)
            else u
            for u in used
        )
        + "."
        if used
        else "No results.json was found or given: no product has outcome evidence."
    ]
    if skipped:
        extra_notes.append(f"{len(skipped)} unreadable results.json file(s) were skipped.")
    if future:
        extra_notes.append(
            f"{len(future)} result(s) of outcome tests after {as_of.isoformat()} were left out: "
            "on the decision date they did not exist yet."
        )
    result = replace(result, notes=(*result.notes, *extra_notes))
    from rce.report.sustain import sustain_to_json, write_sustain_files

    data = result.to_dict()
    if out_dir is None:
        files, json_text = [], sustain_to_json(data)
    else:
        # The files and the returned JSON text come from one rendering of one dict.
        files, json_text = write_sustain_files(data, Path(out_dir))
    return SustainRun(result=result, files=tuple(files), json_text=json_text)
