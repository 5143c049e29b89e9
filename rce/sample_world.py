"""The simulated district behind ``rce sample``: students, scores, usage and the truth model.

Everything here is numbers and Python objects; :mod:`rce.sample_files` turns them into the
messy vendor files and :mod:`rce.sample` writes them. The design follows ``data-formats.md`` §5
("Proposed sample-data spec"): a fictional California TK-8 district, AY 2024-2025, with planted
effects whose true values are recorded in ``truth.json``.

Truth model (ELA, product A = i-Ready Personalized Instruction ELA)::

    spring = fall + typical_growth(grade, placement) + BETA_A * min(habitual_months, PLATEAU)
             + subgroup growth offsets + school effect + noise

A habitual month is a calendar month with at least 3 distinct lesson-days, counted strictly
between the student's fall and spring ELA diagnostics (no lesson is ever dated on a diagnostic
day, so inclusive and exclusive window rules give the same count). Products B (Lexia Core5
Reading) and C (VendorX Literacy) have no effect; math has no product effect.
"""

from __future__ import annotations

import bisect
import functools
import math
import unicodedata
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

import numpy as np

# --- fixed design constants ----------------------------------------------------------------

DISTRICT = "Sierra Vista Unified"
ACADEMIC_YEAR = "2024-2025"
PRIOR_YEAR = "2023-2024"
TIMEZONE = "America/Los_Angeles"
EMAIL_DOMAIN = "svusd.example.org"

PRODUCT_A = "i-Ready Personalized Instruction ELA"
PRODUCT_B = "Lexia Core5 Reading"
PRODUCT_C = "VendorX Literacy"

#: Scale points per habitual month of product A on the spring ELA scale score.
BETA_A = 2.0
#: Habitual months beyond this add nothing (the plateau).
PLATEAU_MONTHS = 6
#: Distinct lesson-days in a calendar month that make it a habitual month.
HABITUAL_DAYS = 3

FIRST_DAY = date(2024, 8, 12)
LAST_DAY = date(2025, 6, 6)
_HOLIDAY_RANGES = (
    (date(2024, 9, 2), date(2024, 9, 2)),
    (date(2024, 11, 11), date(2024, 11, 11)),
    (date(2024, 11, 25), date(2024, 11, 29)),
    (date(2024, 12, 23), date(2025, 1, 3)),
    (date(2025, 1, 20), date(2025, 1, 20)),
    (date(2025, 2, 17), date(2025, 2, 17)),
    (date(2025, 3, 31), date(2025, 4, 4)),
    (date(2025, 5, 26), date(2025, 5, 26)),
)
#: First day of each testing window (ELA); each school starts 0-4 school days later.
WINDOW_STARTS = {
    "fall": date(2024, 8, 26),
    "winter": date(2025, 1, 13),
    "spring": date(2025, 4, 28),
}
PRIOR_WINDOW_STARTS = {
    "fall": date(2023, 8, 28),
    "winter": date(2024, 1, 8),
    "spring": date(2024, 4, 29),
}
WINDOWS = ("fall", "winter", "spring")

#: Grade codes in the SIS (index = grade number + 1).
GRADE_CODES = ("TK", "KN", "01", "02", "03", "04", "05", "06", "07", "08")


@dataclass(frozen=True)
class School:
    code: str
    name: str
    level: str
    stage: str
    #: Fixed school effect on fall-to-spring ELA growth (scale points); set by design, not drawn,
    #: so that high-growth schools are also high-usage schools in every seed (confounding).
    ela_effect: float
    math_effect: float
    #: Shift of product-A use propensity (logit scale).
    usage_shift: float
    #: Shift of Lexia use propensity (logit scale): Lexia is used most where growth is lowest.
    lexia_shift: float


SCHOOLS = (
    School("6099011", "Alder Creek Elementary", "elementary", "pilot", 4.0, 1.0, 0.9, -0.6),
    School("6099029", "Bayview Elementary", "elementary", "expansion", 1.5, -1.0, 0.35, -0.2),
    School("6099037", "Cedar Ridge Elementary", "elementary", "expansion", -1.0, 2.0, -0.1, 0.2),
    School("6099045", "Desert Willow Elementary", "elementary", "expansion", -3.0, -2.0, -0.5,
           0.7),
    School("6099052", "Sierra Vista Middle", "middle", "expansion", -1.0, 0.0, -0.3, 0.0),
)
MIDDLE = 4
PILOT = 0

# Synthetic norm tables (NOT real i-Ready norms): fall mean and SD of the overall scale score by
# grade K..8, and the median annual growth. Winter mean = fall + 0.45 growth, spring = fall +
# growth. Percentile = 100 * Phi((score - mean) / sd), rounded, clipped to 1..99.
NORMS = {
    "ela": {
        "fall_mean": (362, 428, 482, 516, 546, 570, 586, 600, 612),
        "sd": (24, 31, 35, 38, 40, 41, 42, 43, 44),
        "growth": (44, 42, 34, 28, 24, 20, 16, 14, 12),
    },
    "math": {
        "fall_mean": (352, 392, 421, 443, 462, 478, 490, 503, 513),
        "sd": (20, 24, 26, 27, 28, 30, 32, 34, 36),
        "growth": (32, 30, 26, 24, 21, 18, 15, 13, 11),
    },
}
#: The 2023-24 file uses the older norms: means this much higher, so the same score gets a lower
#: percentile (the 2024 norm change, data-formats.md §1.6).
OLD_NORM_SHIFT = 7
WINDOW_GROWTH_SHARE = {"fall": 0.0, "winter": 0.45, "spring": 1.0}

#: Mid On Grade Level Scale Score constants K..8 (data-formats.md §1.4).
MID_ON_GRADE = {
    "ela": (396, 458, 513, 545, 579, 609, 616, 632, 642),
    "math": (373, 413, 441, 464, 482, 498, 514, 531, 541),
}

# Truth-model coefficients ---------------------------------------------------------------------
#: Baseline achievement offsets (in norm SD units).
BASELINE_OFFSETS = {"el": -0.6, "swd": -0.7, "sed": -0.35, "rfep": 0.15, "ifep": 0.2}
#: Offsets on fall-to-spring ELA growth (scale points).
GROWTH_OFFSETS_ELA = {"el": -2.0, "swd": -3.0, "sed": -1.5}
GROWTH_OFFSETS_MATH = {"el": -1.0, "swd": -2.5, "sed": -1.0}
NOISE_SD = {"ela": 14.0, "math": 12.0}
WINTER_NOISE_SD = {"ela": 10.0, "math": 9.0}

#: Product-A use propensity (logit): intercept and coefficients.
PROPENSITY_A = {
    "intercept": 1.45,
    "grade_k2": 0.35,
    "grade_6_8": -0.45,
    "baseline_z": 0.30,
    "el": 0.45,
    "noise_sd": 0.6,
}
PROPENSITY_B = {"intercept": -1.9, "baseline_z": -0.55, "el": 0.3, "noise_sd": 0.5}
PROPENSITY_C = {"licence_share": 0.30, "intercept": -0.35, "baseline_z": 0.6, "middle": 0.3}

FIRST_NAMES = (
    "Sofia", "Mateo", "Olivia", "Liam", "Camila", "Ethan", "Isabella", "Noah", "Valeria",
    "Lucas", "Mia", "Diego", "Ava", "Santiago", "Emma", "Jayden", "Ximena", "Aiden", "Chloe",
    "Gabriel", "Zoe", "Adrian", "Layla", "Julian", "Nora", "Elijah", "Maya", "Leo", "Aaliyah",
    "Daniel", "Priya", "Kai", "Amara", "Miguel", "Hana", "Andres", "Lily", "Isaac", "Renée",
    "Joaquín",
)
LAST_NAMES = (
    "Garcia", "Hernandez", "Lopez", "Martinez", "Muñoz", "Nguyen", "Smith", "Johnson", "Kim",
    "Patel", "Rodriguez", "Flores", "Reyes", "Santos", "Cruz", "Tran", "Brown", "Davis",
    "Wilson", "Ramirez", "Torres", "Rivera", "Gomez", "Diaz", "Chavez", "Morales", "Ortiz",
    "Castillo", "Vargas", "Pham", "Lee", "Anderson", "Thomas", "Jackson", "Peña", "Harris",
    "Núñez", "Lewis", "Walker", "Young",
)
MIDDLE_NAMES = ("A.", "J.", "M.", "Rose", "Luis", "Marie", "James", "Elena", "R.", "Lynn")
TEACHER_FIRST = (
    "Ana", "Brian", "Carmen", "David", "Elaine", "Frank", "Gloria", "Henry", "Irene", "Jorge",
    "Karen", "Luis", "Monica", "Nathan", "Olga", "Paul", "Rosa", "Steven", "Teresa", "Victor",
)
TEACHER_LAST = (
    "Alvarez", "Bennett", "Coleman", "Dominguez", "Ellis", "Fierro", "Grant", "Huang", "Ibarra",
    "Jensen", "Kowalski", "Lam", "Mendoza", "Novak", "Okafor", "Park", "Quintero", "Rossi",
    "Sandoval", "Tanaka", "Underwood", "Vallarta", "Whitaker", "Yamamoto", "Zamora", "Acosta",
    "Bishop", "Carrillo", "Delgado", "Espinoza",
)

REPORTING_GROUPS = (
    "Hispanic or Latino", "White", "Asian", "Filipino", "Black or African American",
    "Two or More Races", "American Indian or Alaska Native",
    "Native Hawaiian or Other Pacific Islander",
)
#: CA-like mix (data-formats.md §5.1); AI/AN and NHPI kept at 0.5% so their cells are < 10.
REPORTING_SHARES = (0.55, 0.23, 0.07, 0.03, 0.05, 0.06, 0.005, 0.005)
ASIAN_CODES = ("201", "202", "203", "204", "205", "206", "207", "208", "299")
NHPI_CODES = ("301", "302", "303", "304", "399")
RACE_LABEL = {
    "100": "American Indian or Alaska Native", "400": "Asian", "600": "Black or African American",
    "700": "White",
}
for _c in ASIAN_CODES:
    RACE_LABEL[_c] = "Asian"
for _c in NHPI_CODES:
    RACE_LABEL[_c] = "Native Hawaiian or Other Pacific Islander"


# --- calendar --------------------------------------------------------------------------------


def _is_holiday(d: date) -> bool:
    return any(a <= d <= b for a, b in _HOLIDAY_RANGES)


def school_days(first: date = FIRST_DAY, last: date = LAST_DAY) -> list[date]:
    """Instructional days: weekdays from the first to the last day, minus holidays and breaks."""
    out = []
    d = first
    while d <= last:
        if d.weekday() < 5 and not _is_holiday(d):
            out.append(d)
        d += timedelta(days=1)
    return out


def _next_school_day(d: date, k: int = 1) -> date:
    while k > 0:
        d += timedelta(days=1)
        if d.weekday() < 5 and not _is_holiday(d):
            k -= 1
    return d


def ascii_fold(text: str) -> str:
    """Strip accents (``Muñoz`` -> ``Munoz``) for e-mail addresses."""
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))


def grade_label(g: int) -> str:
    """i-Ready grade label: ``K``, ``1`` .. ``8``."""
    return "K" if g == 0 else str(g)


# --- placements ------------------------------------------------------------------------------


def _level_cuts(subject: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    mid = np.array(MID_ON_GRADE[subject] + tuple(0 for _ in range(4)), dtype=float)
    step = 8.0 if subject == "ela" else 10.0
    for k in range(9, 13):
        mid[k] = mid[k - 1] + step
    early = np.empty(13)
    early[0] = mid[0] - 30
    early[1:] = mid[1:] - 0.45 * (mid[1:] - mid[:-1])
    late = np.empty(13)
    late[:-1] = mid[:-1] + 0.5 * (early[1:] - mid[:-1])
    late[-1] = mid[-1] + 15
    return early, mid, late


_CUTS = {s: _level_cuts(s) for s in ("ela", "math")}
_CUT_LISTS = {s: tuple(tuple(float(x) for x in arr) for arr in c) for s, c in _CUTS.items()}
RELATIVE = (
    "Mid or Above Grade Level",
    "Early On Grade Level",
    "1 Grade Level Below",
    "2 Grade Levels Below",
    "3 or More Grade Levels Below",
)


@functools.lru_cache(maxsize=65536)
def placement(subject: str, score: int, grade: int, *, old: bool = False) -> tuple[str, str, int]:
    """Criterion-referenced placement of a score for a chronological grade.

    Returns (placement text, relative placement, levels below grade (0 = on or above)).
    ``old`` uses the pre-2024 vocabulary (``Level N`` instead of ``Grade N``).
    """
    early, mid, late = _CUT_LISTS[subject]
    level = bisect.bisect_right(early, score) - 1  # -1 = below Early K
    word = "Level" if old else "Grade"
    if level < 0:
        return "Emerging K", RELATIVE[min(4, 2 + grade)], grade + 1
    if level == grade:
        if score < mid[grade]:
            return f"Early {grade_label(grade)}", RELATIVE[1], 0
        if score < late[grade]:
            return f"Mid {grade_label(grade)}", RELATIVE[0], 0
        return f"Late {grade_label(grade)}", RELATIVE[0], 0
    text = f"{word} {grade_label(level)}"
    if level > grade:
        return text, RELATIVE[0], 0
    below = grade - level
    return text, RELATIVE[min(4, below + 1)], below


def percentile(subject: str, score: np.ndarray, grade: np.ndarray, window: str,
               *, old: bool = False) -> np.ndarray:
    """Percentile rank from the synthetic norm table (1..99), for arrays."""
    return np.array([percentile_one(subject, int(s), int(g), window, old=old)
                     for s, g in zip(np.atleast_1d(score), np.atleast_1d(grade), strict=True)],
                    dtype=int)


@functools.lru_cache(maxsize=65536)
def percentile_one(subject: str, score: int, grade: int, window: str, *, old: bool = False) -> int:
    """Percentile rank of one score: 100 * Phi((score - mean) / sd), rounded, within 1..99."""
    n = NORMS[subject]
    mean = n["fall_mean"][grade] + WINDOW_GROWTH_SHARE[window] * n["growth"][grade]
    if old:
        mean += OLD_NORM_SHIFT
    z = (score - mean) / n["sd"][grade]
    p = 100 * 0.5 * math.erfc(-z / math.sqrt(2))
    return int(min(99, max(1, round(p))))


def typical_growth(subject: str, grade: int, below: int) -> int:
    """Annual typical growth for a grade and fall placement (larger when further below)."""
    base = NORMS[subject]["growth"][grade]
    return int(round(base * (1 + 0.08 * min(below, 3))))


def stretch_growth(subject: str, grade: int, below: int) -> int:
    typ = typical_growth(subject, grade, below)
    return int(round(typ * 1.45 + 6 * min(below, 3) + 6))


# --- the world -------------------------------------------------------------------------------


@dataclass
class Diagnostic:
    """One completed i-Ready diagnostic (before formatting)."""

    student: int  # index into the population; -1 never (prior-year leavers use -2 - k)
    subject: str
    window: str
    start: date
    completion: date
    grade: int
    school: int
    score: int
    rush: str = ""
    duration: int = 0
    baseline: bool = False
    most_recent: bool = False
    el_flag: str = ""


@dataclass
class World:
    """Every simulated fact the file writers need, plus the truth record."""

    n: int
    seed: int
    rng_seeds: tuple
    # population arrays
    number: np.ndarray = field(default=None)  # type: ignore[assignment]
    ghost_numbers: np.ndarray = field(default=None)  # type: ignore[assignment]
    id_width: int = 6
    ssid: list = field(default_factory=list)
    first: list = field(default_factory=list)
    last: list = field(default_factory=list)
    middle: list = field(default_factory=list)
    email: list = field(default_factory=list)
    gnum: np.ndarray = field(default=None)  # type: ignore[assignment]
    school: np.ndarray = field(default=None)  # type: ignore[assignment]
    gender: list = field(default_factory=list)
    birth: list = field(default_factory=list)
    group: np.ndarray = field(default=None)  # type: ignore[assignment]
    hispanic: np.ndarray = field(default=None)  # type: ignore[assignment]
    races: list = field(default_factory=list)
    elas: list = field(default_factory=list)
    elas_start: list = field(default_factory=list)
    language: list = field(default_factory=list)
    sped: np.ndarray = field(default=None)  # type: ignore[assignment]
    disability: list = field(default_factory=list)
    plan504: np.ndarray = field(default=None)  # type: ignore[assignment]
    frpm: list = field(default_factory=list)
    sed: np.ndarray = field(default=None)  # type: ignore[assignment]
    foster: np.ndarray = field(default=None)  # type: ignore[assignment]
    homeless: np.ndarray = field(default=None)  # type: ignore[assignment]
    migrant: np.ndarray = field(default=None)  # type: ignore[assignment]
    enter: list = field(default_factory=list)
    leave: list = field(default_factory=list)
    transfer: dict = field(default_factory=dict)  # i -> (leave date, new school)
    promoted: dict = field(default_factory=dict)  # i -> (date, new grade)
    elas_change: dict = field(default_factory=dict)  # i -> date EL -> RFEP
    class_name: dict = field(default_factory=dict)  # (subject, i) -> (class, teacher)
    demo_blank: np.ndarray = field(default=None)  # type: ignore[assignment]
    sex_style: np.ndarray = field(default=None)  # type: ignore[assignment]
    z: np.ndarray = field(default=None)  # type: ignore[assignment]
    diagnostics: list = field(default_factory=list)
    prior: list = field(default_factory=list)
    lessons: list = field(default_factory=list)  # (student or ghost key, date)
    lexia: list = field(default_factory=list)
    vendorx: list = field(default_factory=list)
    truth: dict = field(default_factory=dict)
    quirks: dict = field(default_factory=dict)

    def el(self) -> np.ndarray:
        return np.array([e == "EL" for e in self.elas])

    def grade_on(self, i: int, d: date) -> int:
        if i in self.promoted and d >= self.promoted[i][0]:
            return self.promoted[i][1]
        return int(self.gnum[i])

    def school_on(self, i: int, d: date) -> int:
        if i in self.transfer and d > self.transfer[i][0]:
            return self.transfer[i][1]
        return int(self.school[i])

    def enrolled_on(self, i: int, d: date) -> bool:
        leave = self.leave[i]
        return self.enter[i] <= d and (leave is None or d <= leave)


def _exact_categories(rng: np.random.Generator, n: int, shares: tuple[float, ...]) -> np.ndarray:
    """Category codes with counts fixed by the shares (largest remainders), in random order."""
    raw = np.asarray(shares, dtype=float) * n
    counts = np.floor(raw).astype(int)
    rem = n - int(counts.sum())
    order = np.argsort(-(raw - counts), kind="stable")
    counts[order[:rem]] += 1
    return rng.permutation(np.repeat(np.arange(len(shares)), counts))


def _pick(rng: np.random.Generator, options: tuple, size: int) -> list:
    idx = rng.integers(0, len(options), size)
    return [options[k] for k in idx]


def build_world(n: int, seed: int) -> World:
    """Simulate the whole district for ``n`` students with ``seed``."""
    seeds = np.random.SeedSequence(seed).spawn(12)
    w = World(n=n, seed=seed, rng_seeds=tuple(seeds))
    _population(w, np.random.default_rng(seeds[0]))
    _scores_fall(w, np.random.default_rng(seeds[1]))
    _diagnostic_dates(w, np.random.default_rng(seeds[2]))
    _usage_a(w, np.random.default_rng(seeds[3]))
    _outcomes(w, np.random.default_rng(seeds[4]))
    _usage_b(w, np.random.default_rng(seeds[5]))
    _usage_c(w, np.random.default_rng(seeds[6]))
    _prior_year(w, np.random.default_rng(seeds[7]))
    return w


# --- population ------------------------------------------------------------------------------


def _population(w: World, rng: np.random.Generator) -> None:
    n = w.n
    n_ghost = max(3, int(round(0.01 * n)))
    w.id_width = 6 if n <= 300_000 else 7
    hi = min(10**w.id_width, max(200_000, 4 * (n + n_ghost)))
    numbers = rng.choice(np.arange(1000, hi), size=n + n_ghost, replace=False)
    w.number = numbers[:n]
    w.ghost_numbers = numbers[n:]
    ssid = rng.choice(9 * 10**9, size=n, replace=False) + 10**9
    missing_ssid = rng.random(n) < 0.005
    w.ssid = ["" if m else str(int(s)) for s, m in zip(ssid, missing_ssid, strict=True)]
    w.quirks["roster_missing_ssid"] = int(missing_ssid.sum())

    grade_idx = _exact_categories(rng, n, (0.05,) + (0.95 / 9,) * 9)
    w.gnum = grade_idx - 1
    elem = rng.choice(4, size=n, p=[0.27, 0.26, 0.24, 0.23])
    w.school = np.where(w.gnum >= 6, MIDDLE, elem)

    gender_code = _exact_categories(rng, n, (0.4975, 0.4985, 0.004))
    w.gender = [("M", "F", "X")[k] for k in gender_code]

    firsts = _pick(rng, FIRST_NAMES, n)
    lasts = _pick(rng, LAST_NAMES, n)
    trailing = rng.random(n) < 0.02
    w.first = firsts
    w.last = [ln + " " if t else ln for ln, t in zip(lasts, trailing, strict=True)]
    w.quirks["roster_trailing_space_names"] = int(trailing.sum())
    has_middle = rng.random(n) < 0.4
    mids = _pick(rng, MIDDLE_NAMES, n)
    w.middle = [m if h else "" for m, h in zip(mids, has_middle, strict=True)]
    mixed = rng.random(n) < 0.05
    emails = []
    for k in range(n):
        local = f"{ascii_fold(firsts[k])[0]}{ascii_fold(lasts[k])}{int(w.number[k])}"
        emails.append(f"{local}@{EMAIL_DOMAIN}" if mixed[k] else f"{local.lower()}@{EMAIL_DOMAIN}")
    w.email = emails
    w.quirks["roster_mixed_case_emails"] = int(mixed.sum())

    births = []
    offs = rng.integers(0, 365, n)
    for k in range(n):
        g = int(w.gnum[k])
        if g < 0:  # TK: 4 years old, born Sep 2019 - Jun 2020
            start, span = date(2019, 9, 2), 274
            births.append(start + timedelta(days=int(offs[k]) % span))
        else:
            births.append(date(2024 - 6 - g, 9, 2) + timedelta(days=int(offs[k])))
    w.birth = births

    # Race / ethnicity: exact counts of each CA reporting group.
    w.group = _exact_categories(rng, n, REPORTING_SHARES)
    w.hispanic = w.group == 0
    races: list[list[str]] = []
    for k in range(n):
        grp = int(w.group[k])
        u = rng.random()
        if grp == 0:
            codes = ["700"] if u < 0.75 else (["100"] if u < 0.9 else ["700", "100"])
        elif grp == 1:
            codes = ["700"]
        elif grp == 2:
            codes = [ASIAN_CODES[int(rng.integers(0, len(ASIAN_CODES)))]]
        elif grp == 3:
            codes = ["400"]
        elif grp == 4:
            codes = ["600"]
        elif grp == 5:
            pairs = (("700", "600"), ("700", "201"), ("600", "400"), ("700", "100"),
                     ("204", "700"), ("700", "301"))
            codes = list(pairs[int(rng.integers(0, len(pairs)))])
        elif grp == 6:
            codes = ["100"]
        else:
            codes = [NHPI_CODES[int(rng.integers(0, len(NHPI_CODES)))]]
        races.append(codes)
    w.races = races

    # English language acquisition status depends on ethnicity (more EL among Hispanic / Asian).
    elas = []
    lang_asian = ("Vietnamese", "Mandarin", "Korean", "Hmong", "Punjabi", "Cantonese")
    langs = []
    u = rng.random(n)
    lang_pick = rng.integers(0, len(lang_asian), n)
    for k in range(n):
        grp = int(w.group[k])
        if grp in (0, 2, 3):
            cuts = (0.30, 0.48, 0.55, 0.96)
        else:
            cuts = (0.04, 0.06, 0.08, 0.99)
        # TK/K students are more often still To Be Determined.
        status = ("EL", "RFEP", "IFEP", "EO", "TBD")[int(np.searchsorted(cuts, u[k], "right"))]
        if w.gnum[k] <= 0 and status == "RFEP":
            status = "EL"
        elas.append(status)
        if status == "EO":
            langs.append("English")
        elif grp == 0:
            langs.append("Spanish")
        elif grp == 3:
            langs.append("Tagalog")
        elif grp == 2:
            langs.append(lang_asian[int(lang_pick[k])])
        else:
            langs.append(("Spanish", "Arabic", "Russian")[int(lang_pick[k]) % 3])
    w.elas = elas
    w.language = langs
    starts = []
    for k in range(n):
        g = max(int(w.gnum[k]), 0)
        first_year = 2024 - g
        if elas[k] == "RFEP":
            ry = min(2024, first_year + 2 + int(rng.integers(0, 3)))
            starts.append(date(ry, 3, 15) + timedelta(days=int(rng.integers(0, 60))))
        else:
            starts.append(date(first_year, 8, 12) + timedelta(days=int(rng.integers(0, 30))))
    w.elas_start = starts

    w.sped = rng.random(n) < 0.13
    disab_codes = ("290", "240", "320")
    dpick = rng.choice(3, size=n, p=[0.5, 0.35, 0.15])
    w.disability = [disab_codes[int(d)] if s else "" for d, s in zip(dpick, w.sped, strict=True)]
    w.plan504 = (~w.sped) & (rng.random(n) < 0.035)
    frpm_p = np.array([0.72, 0.35, 0.35, 0.45, 0.65, 0.45, 0.70, 0.60])[w.group]
    frpm_p = np.where(np.array(elas) == "EL", np.minimum(frpm_p + 0.15, 0.95), frpm_p)
    u = rng.random(n)
    w.frpm = ["F" if x < p * 0.83 else ("R" if x < p else "N") for x, p in zip(u, frpm_p,
                                                                              strict=True)]
    w.sed = np.array([f != "N" for f in w.frpm]) | (rng.random(n) < 0.03)
    w.foster = rng.random(n) < 0.005
    w.homeless = rng.random(n) < 0.02
    w.migrant = w.hispanic & (rng.random(n) < 0.025)

    # Enrollment: most from the first day; a few late enrollees; a few leave the district.
    enter = [FIRST_DAY] * n
    leave: list[date | None] = [None] * n
    days = school_days()
    late = rng.random(n) < 0.03
    leaver = (~late) & (rng.random(n) < 0.015)
    for k in np.flatnonzero(late):
        enter[k] = days[int(rng.integers(5, 120))]
    for k in np.flatnonzero(leaver):
        leave[k] = days[int(rng.integers(90, 160))]
    w.enter, w.leave = enter, leave
    w.quirks["roster_late_enrollees"] = int(late.sum())
    w.quirks["roster_leavers"] = int(leaver.sum())

    # Mid-year transfers between elementary schools: two roster rows each.
    elem_idx = np.flatnonzero((w.gnum <= 5) & (~late) & (~leaver))
    n_transfer = max(1, int(round(0.01 * n)))
    for k in rng.choice(elem_idx, size=min(n_transfer, elem_idx.size), replace=False):
        d = days[int(rng.integers(75, 125))]  # December - February
        new = int((w.school[k] + 1 + rng.integers(0, 3)) % 4)
        w.transfer[int(k)] = (d, new)
    w.quirks["roster_mid_year_transfers"] = len(w.transfer)

    # One student promoted a grade in January (grade 1 -> 2 at an elementary school).
    cands = [k for k in np.flatnonzero(w.gnum == 1) if int(k) not in w.transfer and not late[k]
             and not leaver[k]]
    if cands:
        k = int(cands[int(rng.integers(0, len(cands)))])
        w.promoted[k] = (date(2025, 1, 6), 2)
    w.quirks["grade_changed_students"] = len(w.promoted)

    # Two students reclassified EL -> RFEP in February.
    cands = [k for k in range(n) if elas[k] == "EL" and w.gnum[k] >= 2 and k not in w.promoted]
    for j, k in enumerate(rng.choice(cands, size=min(2, len(cands)), replace=False)):
        d = date(2025, 2, 10 + 7 * j)
        w.elas_change[int(k)] = d
        w.elas[int(k)] = "RFEP"
        w.elas_start[int(k)] = d
    w.quirks["elas_changed_el_to_rfep"] = len(w.elas_change)

    # Diagnostic-export quirks decided per student.
    w.demo_blank = rng.random(n) < 0.30
    w.sex_style = rng.integers(0, 3, n)

    # Classes: about 26 students per class within school x grade.
    tpick = rng.permutation(len(TEACHER_FIRST) * len(TEACHER_LAST))
    t_next = 0
    for s in range(len(SCHOOLS)):
        for g in range(-1, 9):
            members = np.flatnonzero((w.school == s) & (w.gnum == g))
            if members.size == 0:
                continue
            n_cls = max(1, math.ceil(members.size / 26))
            subjects = ("ela", "math") if s == MIDDLE else ("all",)
            for subj in subjects:
                teachers = []
                for _ in range(n_cls):
                    t = int(tpick[t_next % tpick.size])
                    t_next += 1
                    teachers.append((TEACHER_LAST[t % len(TEACHER_LAST)],
                                     TEACHER_FIRST[t // len(TEACHER_LAST) % len(TEACHER_FIRST)]))
                for pos, k in enumerate(members):
                    c = pos % n_cls
                    last, first = teachers[c]
                    if s == MIDDLE:
                        label = f"{'ELA' if subj == 'ela' else 'Math'} {g} - {last} - {c + 2}"
                        w.class_name[(subj, int(k))] = (label, f"{last}, {first}")
                    else:
                        label = f"Grade {grade_label(g) if g >= 0 else 'TK'} - {last} - {c + 1}"
                        for sj in ("ela", "math"):
                            w.class_name[(sj, int(k))] = (label, f"{last}, {first}")


# --- scores ----------------------------------------------------------------------------------


def _offsets(w: World, table: dict[str, float]) -> np.ndarray:
    el = np.array([e == "EL" for e in w.elas])
    rfep = np.array([e == "RFEP" for e in w.elas])
    ifep = np.array([e == "IFEP" for e in w.elas])
    out = np.zeros(w.n)
    out += table.get("el", 0.0) * el + table.get("swd", 0.0) * w.sped
    out += table.get("sed", 0.0) * w.sed + table.get("rfep", 0.0) * rfep
    out += table.get("ifep", 0.0) * ifep
    return out


def _scores_fall(w: World, rng: np.random.Generator) -> None:
    n = w.n
    # Reclassified-this-year students were EL at baseline.
    base = _offsets(w, BASELINE_OFFSETS)
    for k in w.elas_change:
        base[k] += BASELINE_OFFSETS["el"] - BASELINE_OFFSETS["rfep"]
    school_base = np.array([0.15, 0.0, -0.1, -0.2, 0.0])[w.school]
    w.z = 0.9 * rng.standard_normal(n) + base + school_base
    z_math = 0.75 * w.z + 0.55 * rng.standard_normal(n)
    g = np.clip(w.gnum, 0, 8)
    fall = {}
    for subj, z in (("ela", w.z), ("math", z_math)):
        nm = NORMS[subj]
        fall[subj] = np.rint(np.asarray(nm["fall_mean"], float)[g]
                             + np.asarray(nm["sd"], float)[g] * z).astype(int)
    w.truth["_fall"] = fall
    # Within-grade standing used by the usage propensities (teachers see the fall diagnostic).
    w.truth["_zw"] = (fall["ela"] - np.asarray(NORMS["ela"]["fall_mean"], float)[g]) / np.asarray(
        NORMS["ela"]["sd"], float
    )[g]


def _diagnostic_dates(w: World, rng: np.random.Generator) -> None:
    """Which diagnostics each student takes and when (ELA; math a few days later)."""
    n = w.n
    school_start = {
        (s, win): _next_school_day(WINDOW_STARTS[win] - timedelta(days=1), 1 + int(off))
        for s in range(len(SCHOOLS))
        for win, off in zip(WINDOWS, rng.integers(0, 5, size=3), strict=True)
    }
    dates: dict[tuple[int, str, str], tuple[date, date]] = {}
    drop = rng.random(n) < 0.08
    drop_pattern = rng.integers(0, 5, n)
    extra = rng.random(n) < 0.05
    for i in range(n):
        if w.gnum[i] < 0:
            continue  # TK students do not take i-Ready
        taken = list(WINDOWS)
        if drop[i] and i not in w.promoted:
            taken = [
                ["winter", "spring"], ["fall", "spring"], ["fall", "winter"], ["fall"],
                ["spring"],
            ][int(drop_pattern[i])]
        for win in taken:
            first_guess = school_start[(int(w.school[i]), win)]
            start = _next_school_day(first_guess, int(rng.integers(0, 8)))
            if not w.enrolled_on(i, start):
                continue
            sch = w.school_on(i, start)
            start = max(start, school_start[(sch, win)])
            comp = (start if rng.random() < 0.85
                    else _next_school_day(start, int(rng.integers(1, 3))))
            dates[(i, "ela", win)] = (start, comp)
            m_start = _next_school_day(comp, int(rng.integers(1, 4)))
            m_comp = m_start if rng.random() < 0.85 else _next_school_day(m_start, 1)
            if w.enrolled_on(i, m_comp):
                dates[(i, "math", win)] = (m_start, m_comp)
        if extra[i] and (i, "ela", "winter") in dates:
            s0, c0 = dates[(i, "ela", "winter")]
            r = _next_school_day(c0, 10)
            if w.enrolled_on(i, r):
                dates[(i, "ela", "winter2")] = (r, r)
    w.truth["_dates"] = dates
    w.quirks["students_with_4_ela_diagnostics"] = sum(1 for k in dates if k[2] == "winter2")


# --- usage A: i-Ready Personalized Instruction ELA ----------------------------------------------


def _logistic(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _usage_a(w: World, rng: np.random.Generator) -> None:
    n = w.n
    dates = w.truth["_dates"]
    zw = w.truth["_zw"]
    el = w.el() | np.isin(np.arange(n), list(w.elas_change))
    g = w.gnum
    p = PROPENSITY_A
    shift = np.array([s.usage_shift for s in SCHOOLS])[w.school]
    eta = (p["intercept"] + shift + p["grade_k2"] * ((g >= 0) & (g <= 2))
           + p["grade_6_8"] * (g >= 6) + p["baseline_z"] * zw + p["el"] * el
           + p["noise_sd"] * rng.standard_normal(n))
    eligible = g >= 0
    user = eligible & (rng.random(n) < _logistic(eta))
    pilot = w.school == PILOT
    # Lesson-days per 20 school days among users; the pilot school has stronger fidelity.
    lam = np.exp(np.log(1.85) + 0.35 * (eta - 1.5) + 0.45 * rng.standard_normal(n))
    lam = np.where(pilot, lam * 1.3, lam)
    lam = np.clip(lam, 0.3, 14.0)
    days = school_days()
    ords = np.array([d.toordinal() for d in days])
    month_factor = np.array([
        {8: 0.7, 9: 0.85, 10: 1.0, 11: 1.0, 12: 0.95, 1: 1.0, 2: 1.0, 3: 0.95, 4: 0.9, 5: 0.7,
         6: 0.5}[d.month] for d in days
    ])
    # Drawn in fixed blocks of students so memory stays bounded for very large districts.
    used = np.zeros((n, len(days)), dtype=bool)
    for lo in range(0, n, 10_000):
        hi = min(n, lo + 10_000)
        prob = np.clip(lam[lo:hi, None] / 20.0 * month_factor[None, :], 0, 0.9)
        used[lo:hi] = rng.random((hi - lo, len(days))) < prob
    used &= user[:, None]
    enter = np.array([d.toordinal() for d in w.enter])
    leave = np.array([(d or LAST_DAY).toordinal() for d in w.leave])
    used &= (ords[None, :] >= enter[:, None]) & (ords[None, :] <= leave[:, None])
    # No lessons on a student's ELA diagnostic days (start to completion), so the dosage window
    # is the same whether its ends are inclusive or exclusive.
    day_index = {d: j for j, d in enumerate(days)}
    for (i, subj, _win), (s, c) in dates.items():
        if subj != "ela":
            continue
        d = s
        while d <= c:
            j = day_index.get(d)
            if j is not None:
                used[i, j] = False
            d += timedelta(days=1)
    rows: list[tuple[int, date]] = []
    ii, jj = np.nonzero(used)
    lesson_dates = [days[j] for j in jj]
    # About 2% of lesson-days happen on the weekend (moved to the Saturday or Sunday).
    moved = rng.random(ii.size) < 0.02
    shift_days = rng.integers(0, 2, ii.size)
    diag_days: dict[int, set[date]] = {}
    for (i, subj, _w2), (s, c) in dates.items():
        if subj == "ela":
            d = s
            while d <= c:
                diag_days.setdefault(i, set()).add(d)
                d += timedelta(days=1)
    n_moved = 0
    seen: set[tuple[int, date]] = set()
    for k in range(ii.size):
        i = int(ii[k])
        d = lesson_dates[k]
        if moved[k]:
            # the Saturday or Sunday of the same week
            cand = d + timedelta(days=5 - d.weekday() + int(shift_days[k]))
            if cand not in diag_days.get(i, ()) and (i, cand) not in seen and cand <= date(
                2025, 6, 30
            ):
                d = cand
                n_moved += 1
        if (i, d) in seen:
            continue
        seen.add((i, d))
        rows.append((i, d))
    # Ghost students: IDs not in the roster (left before the roster snapshot); ~1% of rows.
    n_ghost_days = max(5, int(round(0.01 * len(rows))))
    ghosts = w.ghost_numbers[: max(2, min(len(w.ghost_numbers), n_ghost_days // 25 + 1))]
    gdays = rng.choice(len(days), size=n_ghost_days)
    gwho = rng.integers(0, len(ghosts), n_ghost_days)
    ghost_rows = sorted({(-1 - int(gw), days[int(gd)]) for gw, gd in zip(gwho, gdays,
                                                                          strict=True)})
    w.lessons = sorted(rows) + ghost_rows
    w.truth["_user_a"] = user
    w.truth["_ghost_a"] = ghosts
    w.quirks["lesson_days_on_weekends"] = n_moved

    # Habitual months between fall and spring ELA diagnostics (and fall -> winter).
    by_student: dict[int, list[date]] = {}
    for i, d in rows:
        by_student.setdefault(i, []).append(d)
    hm = np.full(n, -1)
    hm_winter = np.full(n, -1)
    any_use = np.zeros(n, dtype=bool)
    for i in range(n):
        f = dates.get((i, "ela", "fall"))
        s = dates.get((i, "ela", "spring"))
        wi = dates.get((i, "ela", "winter"))
        lst = by_student.get(i, [])
        if f and s:
            hm[i] = _habitual(lst, f[1], s[0])
            any_use[i] = any(f[1] < d < s[0] for d in lst)
        if f and wi:
            hm_winter[i] = _habitual(lst, f[1], wi[0])
    w.truth["_hm"] = hm
    w.truth["_hm_winter"] = hm_winter
    w.truth["_any_use_a"] = any_use
    w.truth["_eta_a"] = eta


def _habitual(days_used: list[date], after: date, before: date) -> int:
    counts: dict[tuple[int, int], int] = {}
    for d in days_used:
        if after < d < before:
            counts[(d.year, d.month)] = counts.get((d.year, d.month), 0) + 1
    return sum(1 for c in counts.values() if c >= HABITUAL_DAYS)


# --- outcomes --------------------------------------------------------------------------------


def _outcomes(w: World, rng: np.random.Generator) -> None:
    n = w.n
    dates = w.truth["_dates"]
    fall = w.truth["_fall"]
    hm = w.truth["_hm"]
    hmw = w.truth["_hm_winter"]
    g0 = np.clip(w.gnum, 0, 8)
    scores: dict[tuple[int, str, str], int] = {}
    growth_info: dict[tuple[int, str], tuple[int, int]] = {}
    true_effect = np.zeros(n)
    for subj in ("ela", "math"):
        offs = _offsets(w, GROWTH_OFFSETS_ELA if subj == "ela" else GROWTH_OFFSETS_MATH)
        school_eff = np.array([s.ela_effect if subj == "ela" else s.math_effect
                               for s in SCHOOLS])
        eps_spring = NOISE_SD[subj] * rng.standard_normal(n)
        eps_winter = WINTER_NOISE_SD[subj] * rng.standard_normal(n)
        eps_retest = 8.0 * rng.standard_normal(n)
        for i in range(n):
            if w.gnum[i] < 0:
                continue
            g = int(g0[i])
            f = int(fall[subj][i])
            _, _, below = placement(subj, f, g)
            typ = typical_growth(subj, g, below)
            growth_info[(i, subj)] = (typ, stretch_growth(subj, g, below))
            # The school effect is that of the school the student started the year in.
            u = school_eff[int(w.school[i])]
            eff_s = BETA_A * min(max(hm[i], 0), PLATEAU_MONTHS) if subj == "ela" else 0.0
            eff_w = BETA_A * min(max(hmw[i], 0), PLATEAU_MONTHS) if subj == "ela" else 0.0
            if subj == "ela":
                true_effect[i] = eff_s
            scores[(i, subj, "fall")] = f
            scores[(i, subj, "winter")] = int(round(
                f + 0.45 * typ + eff_w + 0.5 * (offs[i] + u) + eps_winter[i]))
            scores[(i, subj, "winter2")] = scores[(i, subj, "winter")] + int(round(eps_retest[i]))
            scores[(i, subj, "spring")] = int(round(
                f + typ + eff_s + offs[i] + u + eps_spring[i]))
    w.truth["_scores"] = scores
    w.truth["_growth"] = growth_info
    w.truth["_true_effect"] = true_effect

    # Diagnostics as rows, with rush flags (rushed tests under-state the score).
    diags: list[Diagnostic] = []
    rush_u = rng.random(len(dates))
    rush_pen = np.abs(rng.normal(28, 10, len(dates)))
    dur = rng.normal(55, 16, len(dates))
    for k, key in enumerate(sorted(dates)):
        i, subj, win = key
        start, comp = dates[key]
        true_score = scores[(i, subj, win)]
        rush = ""
        score = true_score
        minutes = int(np.clip(round(dur[k]), 22, 110))
        if rush_u[k] < 0.02:
            rush, score, minutes = "Red Rush Flag", true_score - int(rush_pen[k] * 1.4), int(
                8 + rush_u[k] * 300)
        elif rush_u[k] < 0.06:
            rush, score, minutes = "Yellow Rush Flag", true_score - int(rush_pen[k]), int(
                14 + rush_u[k] * 150)
        score = int(np.clip(score, 100, 800))
        el_flag = "Y" if w.elas[i] == "EL" else "N"
        if i in w.elas_change and comp < w.elas_change[i]:
            el_flag = "Y"
        diags.append(Diagnostic(
            student=i, subject=subj, window="winter" if win == "winter2" else win,
            start=start, completion=comp, grade=w.grade_on(i, comp), school=w.school_on(i, comp),
            score=score, rush=rush, duration=minutes, el_flag=el_flag,
        ))
    # Baseline = first diagnostic of the year; most recent = last, per student and subject.
    by: dict[tuple[int, str], list[Diagnostic]] = {}
    for d in diags:
        by.setdefault((d.student, d.subject), []).append(d)
    for lst in by.values():
        lst.sort(key=lambda d: (d.completion, d.start))
        lst[0].baseline = True
        lst[-1].most_recent = True
    w.diagnostics = diags
    for subj in ("ela", "math"):
        w.quirks[f"{subj}_rush_flag_rows"] = {
            "Yellow Rush Flag": sum(1 for d in diags if d.subject == subj
                                    and d.rush == "Yellow Rush Flag"),
            "Red Rush Flag": sum(1 for d in diags if d.subject == subj
                                 and d.rush == "Red Rush Flag"),
        }


# --- usage B: Lexia Core5 Reading (event log, UTC) ------------------------------------------------


def _usage_b(w: World, rng: np.random.Generator) -> None:
    from zoneinfo import ZoneInfo

    n = w.n
    zw = np.where(w.gnum >= 0, w.truth["_zw"], w.z)
    el = w.el()
    p = PROPENSITY_B
    shift = np.array([s.lexia_shift for s in SCHOOLS])[w.school]
    eta = (p["intercept"] + shift + p["baseline_z"] * zw + p["el"] * el
           + p["noise_sd"] * rng.standard_normal(n))
    eligible = w.gnum <= 5
    user = eligible & (rng.random(n) < _logistic(eta))
    weekly = np.exp(np.log(0.7) + 0.4 * rng.standard_normal(n))
    days = school_days()
    weeks: dict[date, list[date]] = {}
    for d in days:
        weeks.setdefault(d - timedelta(days=d.weekday()), []).append(d)
    tz = ZoneInfo(TIMEZONE)
    utc = ZoneInfo("UTC")
    activities = [
        "Level {l} - Sound Match", "Level {l} - Word Building", "Level {l} - Syllable Sorting",
        "Level {l} - Comprehension Passage", "Level {l} - Vocabulary Matching",
    ]
    events = []
    users = [int(i) for i in np.flatnonzero(user)]
    # Ghost users (not in the roster) add about 1% of the rows.
    ghost_ids = list(w.ghost_numbers[: max(1, len(users) // 100 + 1)])
    people: list[tuple[int, float]] = [(i, float(weekly[i])) for i in users]
    people += [(-1 - k, 1.3) for k in range(len(ghost_ids))]
    for who, rate in people:
        g = 0 if who < 0 else max(int(w.gnum[who]), 0)
        for _wk, wdays in sorted(weeks.items()):
            if who >= 0:
                wdays = [d for d in wdays if w.enrolled_on(who, d)]
            if not wdays:
                continue
            k = min(len(wdays), int(rng.poisson(rate)))
            if k == 0:
                continue
            picks = sorted(rng.choice(len(wdays), size=k, replace=False))
            for j in picks:
                d = wdays[int(j)]
                evening = rng.random() < 0.08
                if evening:
                    minute = int(rng.integers(17 * 60, 21 * 60 + 30))
                else:
                    minute = int(rng.integers(8 * 60 + 15, 14 * 60 + 30))
                t = datetime(d.year, d.month, d.day, minute // 60, minute % 60,
                             int(rng.integers(0, 60)), tzinfo=tz)
                n_act = 1 + int(rng.binomial(2, 0.3))
                level = min(21, 1 + 3 * g + int(rng.integers(0, 3)))
                for _a in range(n_act):
                    mins = int(rng.integers(4, 19))
                    name_k = int(rng.integers(0, len(activities)))
                    end = t + timedelta(minutes=mins, seconds=int(rng.integers(0, 60)))
                    events.append((who, t, end, mins, name_k, level))
                    t = end + timedelta(seconds=int(rng.integers(5, 90)))
    out = []
    for who, t, end, mins, name_k, level in events:
        out.append({
            "who": who,
            "local": t,
            "start_utc": t.astimezone(utc),
            "end_utc": end.astimezone(utc),
            "minutes": mins,
            "activity": activities[name_k].format(l=level),
            "activity_id": 5000 + 100 * level + name_k,
        })
    w.lexia = out
    w.truth["_user_b"] = user
    w.truth["_ghost_b"] = ghost_ids
    # Use in the fall -> spring window (local dates) for the naive comparison.
    dates = w.truth["_dates"]
    used_b = np.zeros(n, dtype=bool)
    for ev in out:
        i = ev["who"]
        if i < 0:
            continue
        f = dates.get((i, "ela", "fall"))
        s = dates.get((i, "ela", "spring"))
        if f and s and f[1] < ev["local"].date() < s[0]:
            used_b[i] = True
    w.truth["_any_use_b"] = used_b
    w.quirks["lexia_rows_crossing_midnight_utc"] = sum(
        1 for ev in out if ev["start_utc"].date() != ev["local"].date()
    )


# --- usage C: VendorX Literacy (monthly wide summary) ---------------------------------------------

VENDORX_MONTHS = tuple((2024, m) for m in range(8, 13)) + tuple((2025, m) for m in range(1, 7))


def _usage_c(w: World, rng: np.random.Generator) -> None:
    n = w.n
    zw = w.truth["_zw"]
    p = PROPENSITY_C
    eligible = (w.gnum >= 3) & (w.gnum <= 8)
    licensed = eligible & (rng.random(n) < p["licence_share"])
    eta = p["intercept"] + p["baseline_z"] * zw + p["middle"] * (w.school == MIDDLE)
    active = licensed & (rng.random(n) < _logistic(eta))
    rate = rng.uniform(0.8, 4.5, n)
    dropout = rng.integers(2, len(VENDORX_MONTHS) + 1, n)  # months of use before stopping
    rows = []
    for i in np.flatnonzero(licensed):
        i = int(i)
        monthly = [0] * len(VENDORX_MONTHS)
        if active[i]:
            for m in range(min(int(dropout[i]), len(VENDORX_MONTHS))):
                if VENDORX_MONTHS[m][1] == 8:
                    continue  # licences assigned in September
                monthly[m] = int(rng.poisson(rate[i]))
            if sum(monthly) == 0:
                monthly[1] = 1
        rows.append((i, monthly))
    ghost_rows = []
    for k in range(max(1, len(rows) // 100)):
        monthly = [0] + [int(rng.poisson(2.0)) for _ in VENDORX_MONTHS[1:4]] + [0] * (
            len(VENDORX_MONTHS) - 4)
        ghost_rows.append((-1 - k, monthly))
    w.vendorx = rows + ghost_rows
    w.truth["_licensed_c"] = licensed
    act = np.zeros(n, dtype=bool)
    for i, monthly in rows:
        act[i] = sum(monthly) > 0
    w.truth["_active_c"] = act
    w.truth["_ghost_c"] = list(w.ghost_numbers[: len(ghost_rows)])


# --- prior year (2023-24, older header names and norms) ---------------------------------------


def _prior_year(w: World, rng: np.random.Generator) -> None:
    n = w.n
    fall = w.truth["_fall"]["ela"]
    out = []
    starts = {
        (s, win): _next_school_day(PRIOR_WINDOW_STARTS[win] - timedelta(days=1), 1 + int(off))
        for s in range(len(SCHOOLS))
        for win, off in zip(WINDOWS, rng.integers(0, 5, size=3), strict=True)
    }
    eps = rng.normal(0, 12, (n, 3))
    for i in range(n):
        g_now = int(w.gnum[i])
        if g_now < 1 or w.enter[i] != FIRST_DAY:
            continue
        g = g_now - 1
        # Sixth graders were at one of the elementary schools last year.
        s = int(w.school[i]) if g_now <= 5 else int(i % 4)
        spring_prev = fall[i] + 6  # a little summer loss between spring and fall
        typ = typical_growth("ela", g, placement("ela", spring_prev - NORMS["ela"]["growth"][g],
                                                 g)[2])
        fall_prev = spring_prev - typ
        for k, win in enumerate(WINDOWS):
            if rng.random() < 0.04:
                continue
            score = int(round(fall_prev + WINDOW_GROWTH_SHARE[win] * typ + eps[i, k]))
            st = _next_school_day(starts[(s, win)], int(rng.integers(0, 8)))
            comp = st if rng.random() < 0.85 else _next_school_day(st, 1)
            u = rng.random()
            rush = "Red Rush Flag" if u < 0.02 else ("Yellow Rush Flag" if u < 0.06 else "")
            if rush:
                score -= int(abs(rng.normal(28, 10)))
            out.append(Diagnostic(student=i, subject="ela", window=win, start=st,
                                  completion=comp, grade=g, school=s, score=int(score),
                                  rush=rush, duration=int(np.clip(rng.normal(55, 16), 22, 110))
                                  if not rush else int(rng.integers(8, 25)),
                                  el_flag="Y" if w.elas[i] == "EL" else "N"))
    by: dict[int, list[Diagnostic]] = {}
    for d in out:
        by.setdefault(d.student, []).append(d)
    for lst in by.values():
        lst.sort(key=lambda d: d.completion)
        lst[0].baseline = True
        lst[-1].most_recent = True
    w.prior = out
