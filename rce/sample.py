"""``rce sample``: a deterministic synthetic district export set with known effects.

:func:`generate_sample` writes the files of "Sierra Vista Unified", a fictional California TK-8
district (AY 2024-2025): an SIS roster and its Excel-re-saved copy, i-Ready Diagnostic Results
(ELA, math, and a prior-year ELA file with the older header names), i-Ready Personalized
Instruction by Lesson (product A), a Lexia Core5 activity log in UTC (product B), a VendorX
monthly wide summary (product C), ``products.toml``, a study plan ``rce.toml`` and
``truth.json`` -- the planted effects and the count of every planted quirk. The same seed gives
byte-identical files.

The simulation lives in :mod:`rce.sample_world`, the file layouts in :mod:`rce.sample_files`.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rce import sample_files as sf
from rce import sample_world as sw
from rce.errors import DataError, InputFileError
from rce.fileio import staged_directory

MIN_STUDENTS = 50
MAX_STUDENTS = 2_000_000
#: Marker in truth.json that identifies a folder written by this generator.
GENERATOR = "rce sample"
GENERATOR_VERSION = 1

#: Every file a sample contains, relative to its folder (in writing order).
SAMPLE_FILES = (
    "sis/students_2024-25.csv",
    "sis/students_2024-25_excel.csv",
    "iready/diagnostic_results_ela.csv",
    "iready/diagnostic_results_math.csv",
    "iready/diagnostic_results_ela_2023-24.csv",
    "iready/personalized_instruction_by_lesson_ela.csv",
    "usage/lexia_core5_activity.csv",
    "usage/vendorx_usage_export.csv",
    "products.toml",
    "rce.toml",
    "truth.json",
)


@dataclass(frozen=True)
class SampleResult:
    """What :func:`generate_sample` wrote.

    Attributes
    ----------
    out_dir
        The sample folder.
    files
        Paths of the files written, relative to ``out_dir`` (POSIX separators).
    n_students
        Students in the roster.
    seed
        Seed used; the same seed and size give byte-identical files.
    truth
        The content of ``truth.json``: every planted effect and quirk count (no student IDs).
    sha256
        sha256 of each written file, by relative path.
    """

    out_dir: Path
    files: tuple[str, ...]
    n_students: int
    seed: int
    truth: dict[str, Any]
    sha256: dict[str, str] = field(default_factory=dict)

    @property
    def notes(self) -> tuple[str, ...]:
        """Caveats about what the synthetic data can and cannot show."""
        return (
            "All data are synthetic: names, IDs, scores and usage are simulated; the percentile "
            "norms are an internally consistent invented table, not Curriculum Associates norms.",
            "Only product A has a true effect (on ELA scale scores); any apparent effect of "
            "products B or C, or on math, is selection bias or noise.",
            "Usage depends on school, grade, baseline score and EL status, so a naive "
            "users-versus-non-users comparison is biased; see truth.json naive_comparisons.",
        )

    def to_frame(self):  # noqa: ANN201 - pandas is imported lazily
        """One row per file: path, bytes, sha256."""
        import pandas as pd

        return pd.DataFrame(
            {
                "path": list(self.files),
                "bytes": [int((self.out_dir / f).stat().st_size) for f in self.files],
                "sha256": [self.sha256.get(f, "") for f in self.files],
            }
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form."""
        return {
            "out_dir": str(self.out_dir),
            "files": list(self.files),
            "n_students": self.n_students,
            "seed": self.seed,
            "sha256": dict(self.sha256),
            "truth": self.truth,
            "notes": list(self.notes),
        }

    def summary(self) -> str:
        """Readable description of the sample (no student-level data)."""
        t = self.truth
        a = t["products"][sw.PRODUCT_A]
        naive = t["naive_comparisons"][sw.PRODUCT_A]["gain_any_use_vs_none"]
        lines = [
            f"Synthetic district {sw.DISTRICT}, AY {sw.ACADEMIC_YEAR}: {self.n_students} "
            f"students (seed {self.seed}) written to {self.out_dir}",
            f"  files: {len(self.files)} ({', '.join(self.files[:3])}, ...)",
            f"  true effect of {sw.PRODUCT_A}: {a['beta_per_habitual_month']:g} scale points "
            f"per habitual month on spring ELA, plateau after {a['plateau_months']} months",
            f"  {sw.PRODUCT_B} and {sw.PRODUCT_C}: true effect 0; math: no product effect",
            f"  naive users-vs-non-users ELA gain difference: {naive['difference']:.1f} points "
            f"vs true {naive['true_effect_on_users']:.1f} (bias {naive['direction']})",
            "  analyse it with: rce analyze " + str(self.out_dir),
        ]
        return "\n".join(lines)


def generate_sample(out_dir: Path | str, *, students: int = 1500, seed: int = 7) -> SampleResult:
    """Write a synthetic district export set with planted effects and quirks.

    Parameters
    ----------
    out_dir
        Folder to write. It may be missing, empty, or a previous sample (whose files are then
        replaced); a folder with other content is refused rather than clobbered.
    students
        Students in the roster, 50 to 2,000,000 (TK students are in the roster but take no
        i-Ready diagnostics).
    seed
        Seed of the simulation (0 or more). The same seed and size give byte-identical files.

    Returns
    -------
    SampleResult
        Paths written, their sha256 and the truth record.

    Raises
    ------
    DataError
        ``students`` or ``seed`` out of range.
    InputFileError
        ``out_dir`` is a file, or a folder with content that is not a previous sample.

    Examples
    --------
    >>> res = generate_sample(tmp_path / "district", students=300, seed=1)  # doctest: +SKIP
    >>> res.truth["products"]["i-Ready Personalized Instruction ELA"]["beta_per_habitual_month"]
    2.0
    """
    out = Path(out_dir)
    _check_arguments(out, students, seed)
    contents = build_sample_files(students=students, seed=seed)
    with staged_directory(out) as stage:
        for rel in SAMPLE_FILES:
            target = stage / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(contents[rel])
    digests = {rel: hashlib.sha256(contents[rel]).hexdigest() for rel in SAMPLE_FILES}
    truth = json.loads(contents["truth.json"])
    return SampleResult(out_dir=out, files=SAMPLE_FILES, n_students=students, seed=seed,
                        truth=truth, sha256=digests)


def _check_arguments(out: Path, students: Any, seed: Any) -> None:
    if isinstance(students, bool) or not isinstance(students, int | np.integer):
        raise DataError("the number of students must be a whole number", where="--students",
                        hint=f"Give a number from {MIN_STUDENTS} to {MAX_STUDENTS:,}.")
    if not MIN_STUDENTS <= students <= MAX_STUDENTS:
        raise DataError(
            f"the number of students must be between {MIN_STUDENTS} and {MAX_STUDENTS:,}, "
            f"not {students}",
            where="--students",
            hint="Fewer than 50 leaves too few students per school and grade to analyse.",
        )
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise DataError("the seed must be a whole number of 0 or more", where="--seed",
                        hint="Use e.g. --seed 7.")
    if out.exists() and not out.is_dir():
        raise InputFileError("the output path is a file, not a folder", where=str(out),
                             hint="Give a new or empty folder, e.g. --out sierra-vista.")
    if out.is_dir():
        entries = [p for p in out.iterdir() if not p.name.startswith(".")]
        if entries and not _is_previous_sample(out):
            raise InputFileError(
                "the output folder is not empty and does not hold a previous sample",
                where=str(out),
                hint="Choose a new or empty folder; rce sample only overwrites its own output.",
            )


def _is_previous_sample(out: Path) -> bool:
    truth = out / "truth.json"
    try:
        data = json.loads(truth.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and data.get("generator") == GENERATOR


# --- building the files ----------------------------------------------------------------------


def build_sample_files(*, students: int, seed: int) -> dict[str, bytes]:
    """The bytes of every sample file, by relative path (nothing is written)."""
    w = sw.build_world(students, seed)
    seeds = np.random.SeedSequence(seed).spawn(12)
    r_diag = np.random.default_rng(seeds[8])
    r_use = np.random.default_rng(seeds[9])
    r_lexia = np.random.default_rng(seeds[10])
    r_vx = np.random.default_rng(seeds[11])
    files: dict[str, bytes] = {}
    files["sis/students_2024-25.csv"] = sf.csv_bytes(sf.ROSTER_HEADER,
                                                     sf.roster_rows(w, excel=False))
    files["sis/students_2024-25_excel.csv"] = sf.csv_bytes(
        sf.ROSTER_HEADER, sf.roster_rows(w, excel=True), crlf=True, bom=True
    )
    q: dict[str, Any] = {}
    files["iready/diagnostic_results_ela.csv"], q["diagnostic_results_ela"] = sf.diagnostic_file(
        w, "ela", r_diag
    )
    files["iready/diagnostic_results_math.csv"], q["diagnostic_results_math"] = (
        sf.diagnostic_file(w, "math", r_diag)
    )
    files["iready/diagnostic_results_ela_2023-24.csv"], _ = sf.diagnostic_file(
        w, "ela", r_diag, old=True
    )
    files["iready/personalized_instruction_by_lesson_ela.csv"], q["lessons_ela"] = (
        sf.lesson_file(w, r_use)
    )
    files["usage/lexia_core5_activity.csv"], q["lexia"] = sf.lexia_file(w, r_lexia)
    files["usage/vendorx_usage_export.csv"], q["vendorx"] = sf.vendorx_file(w, r_vx)
    seats = _seats(w)
    files["products.toml"] = products_toml(seats).encode("utf-8")
    files["rce.toml"] = plan_toml().encode("utf-8")
    truth = build_truth(w, q, seats)
    files["truth.json"] = (json.dumps(truth, indent=2, ensure_ascii=False) + "\n").encode("utf-8")
    return files


def _round50(x: float) -> int:
    return int(max(50, 50 * round(x / 50)))


def _seats(w: sw.World) -> dict[str, int]:
    k8 = int(((w.gnum >= 0) & (w.gnum <= 8)).sum())
    tk5 = int((w.gnum <= 5).sum())
    g38 = int(((w.gnum >= 3) & (w.gnum <= 8)).sum())
    return {
        sw.PRODUCT_A: _round50(1.02 * k8),
        sw.PRODUCT_B: _round50(0.45 * tk5),
        # Bought for every student in grades 3-8 and then some: heavily over-bought.
        sw.PRODUCT_C: _round50(1.3 * g38),
    }


def products_toml(seats: dict[str, int]) -> str:
    """The products / costs file read by ``rce sustain-report``."""
    a, b, c = seats[sw.PRODUCT_A], seats[sw.PRODUCT_B], seats[sw.PRODUCT_C]
    return f"""# Sierra Vista Unified: licensed instructional products, 2024-25 (synthetic).
# Costs are annual. A product has annual_cost, or price_per_seat with seats_purchased.

[[product]]
product = "{sw.PRODUCT_A}"
subject = "ela"
annual_cost = {a * 30}
seats_purchased = {a}
funding_source = "Title I"
renewal_date = 2025-07-01
usage = "iready/personalized_instruction_by_lesson_ela.csv"
layout = "auto"
recommended_minutes_per_week = 45
privacy_agreement = "signed"
privacy_agreement_expires = 2027-06-30
approval_status = "approved"

[[product]]
product = "{sw.PRODUCT_B}"
subject = "ela"
price_per_seat = 32.00
seats_purchased = {b}
funding_source = "ESSER III"
renewal_date = 2025-06-30
usage = "usage/lexia_core5_activity.csv"
layout = "auto"
recommended_minutes_per_week = 60
privacy_agreement = "signed"
privacy_agreement_expires = 2025-06-30
approval_status = "approved"

[[product]]
product = "{sw.PRODUCT_C}"
subject = "ela"
price_per_seat = 24.00
seats_purchased = {c}
funding_source = "General Fund"
renewal_date = 2025-08-15
usage = "usage/vendorx_usage_export.csv"
layout = "auto"
recommended_minutes_per_week = 40
privacy_agreement = "expired"
privacy_agreement_expires = 2024-12-31
approval_status = "pending review"
"""


def plan_toml() -> str:
    """The study plan shipped with the sample (``rce analyze DIR`` reads it)."""
    usage = "\n".join(
        f'  {{ path = "{path}", product = "{product}", layout = "auto", subject = "ela" }},'
        for path, product in (
            ("iready/personalized_instruction_by_lesson_ela.csv", sw.PRODUCT_A),
            ("usage/lexia_core5_activity.csv", sw.PRODUCT_B),
            ("usage/vendorx_usage_export.csv", sw.PRODUCT_C),
        )
    )
    stages = ", ".join(f'"{school.name}" = "{school.stage}"' for school in sw.SCHOOLS)
    return f"""# Study plan for the synthetic Sierra Vista Unified sample (written by `rce sample`).
# Keys not given take the defaults of `rce plan`. Lock it with `rce plan --lock` before analysis.

[study]
name = "Sierra Vista Unified: {sw.PRODUCT_A}, 2024-25"
subject = "ela"
academic_year = "{sw.ACADEMIC_YEAR}"
timezone = "{sw.TIMEZONE}"
product = "{sw.PRODUCT_A}"

[inputs]
roster = ["sis/students_2024-25.csv"]
scores = ["iready/diagnostic_results_ela.csv"]
usage = [
{usage}
]
products = "products.toml"

[outcomes]
measures = ["percentile", "scale_score"]
baseline_window = "fall"
outcome_window = "spring"
exclude_rush_flagged = true

[dosage]
min_sessions_per_month = 3
window = "baseline-to-outcome"

[rollout]
# The pilot school started a year before the others.
stages = {{ {stages} }}
start_dates = {{ pilot = "2023-08-14", expansion = "2024-08-12" }}
"""


# --- truth -----------------------------------------------------------------------------------


def _r(x: float, nd: int = 4) -> float | None:
    x = float(x)
    return None if not np.isfinite(x) else round(x, nd)


def _scored(w: sw.World) -> dict[int, tuple[sw.Diagnostic, sw.Diagnostic]]:
    """Students with a fall and a spring ELA diagnostic, neither rush-flagged."""
    fall: dict[int, sw.Diagnostic] = {}
    spring: dict[int, sw.Diagnostic] = {}
    for d in w.diagnostics:
        if d.subject != "ela" or d.rush:
            continue
        if d.window == "fall":
            fall[d.student] = d
        elif d.window == "spring":
            spring[d.student] = d
    return {i: (fall[i], spring[i]) for i in sorted(fall) if i in spring}


def _compare(values: np.ndarray, treated: np.ndarray, effect: np.ndarray) -> dict[str, Any]:
    t, c = values[treated], values[~treated]
    diff = float(t.mean() - c.mean()) if t.size and c.size else float("nan")
    true = float(effect[treated].mean()) if t.size else float("nan")
    bias = diff - true
    return {
        "n_users": int(t.size),
        "n_non_users": int(c.size),
        "users_mean": _r(t.mean()) if t.size else None,
        "non_users_mean": _r(c.mean()) if c.size else None,
        "difference": _r(diff),
        "true_effect_on_users": _r(true),
        "bias": _r(bias),
        "direction": "upward" if bias > 0 else "downward",
    }


def _linear_slope(w: sw.World, idx: np.ndarray, hm: np.ndarray, effect: np.ndarray,
                  fall: np.ndarray) -> float:
    """Slope on habitual months of the true effect projected on the usual controls.

    A linear dose-response regression of spring score on habitual months with fall score,
    grade and school controls converges to this slope (the effect has a plateau, so it is a
    little below BETA_A).
    """
    grades = w.gnum[idx]
    schools = w.school[idx]
    cols = [np.ones(idx.size), hm.astype(float), fall.astype(float)]
    cols += [(grades == g).astype(float) for g in np.unique(grades)[1:]]
    cols += [(schools == s).astype(float) for s in np.unique(schools)[1:]]
    x = np.column_stack(cols)
    coef, *_ = np.linalg.lstsq(x, effect, rcond=None)
    return float(coef[1])


def build_truth(w: sw.World, quirks: dict[str, Any], seats: dict[str, int]) -> dict[str, Any]:
    """The truth record written to truth.json (aggregates only; no student identifiers)."""
    scored = _scored(w)
    idx = np.array(sorted(scored), dtype=int)
    fall = np.array([scored[i][0].score for i in idx])
    spring = np.array([scored[i][1].score for i in idx])
    gain = spring - fall
    hm = w.truth["_hm"][idx]
    effect = w.truth["_true_effect"][idx]
    pct_spring = np.array([sw.percentile_one("ela", scored[i][1].score, scored[i][1].grade,
                                             "spring") for i in idx])
    # The planted effect in percentile points: observed spring percentile minus the percentile
    # of the same score without the product-A effect.
    pct_effect = np.array([
        p - sw.percentile_one("ela", int(round(scored[i][1].score - e)), scored[i][1].grade,
                              "spring")
        for i, p, e in zip(idx, pct_spring, effect, strict=True)
    ], dtype=float)
    any_a = w.truth["_any_use_a"][idx]
    any_b = w.truth["_any_use_b"][idx]
    act_c = w.truth["_active_c"][idx]
    zero = np.zeros(idx.size)

    hm_counts = {str(k): int((hm == k).sum()) for k in range(int(hm.max(initial=0)) + 1)}
    non_user_share = float((~any_a).mean()) if idx.size else float("nan")

    schools = []
    for s, sch in enumerate(sw.SCHOOLS):
        members = w.school == s
        k8 = members & (w.gnum >= 0)
        schools.append({
            "code": sch.code,
            "name": sch.name,
            "level": sch.level,
            "grades": "TK-5" if sch.level == "elementary" else "6-8",
            "rollout_stage": sch.stage,
            "growth_effect_ela": sch.ela_effect,
            "growth_effect_math": sch.math_effect,
            "usage_propensity_shift_a": sch.usage_shift,
            "usage_propensity_shift_b": sch.lexia_shift,
            "n_students": int(members.sum()),
            "share_k8_using_a": _r(w.truth["_user_a"][k8].mean()) if k8.any() else None,
        })

    def group_count(mask: np.ndarray) -> int:
        return int(mask.sum())

    population = {
        "n_students": w.n,
        "n_tk": group_count(w.gnum < 0),
        "n_scored_ela_fall_and_spring": int(idx.size),
        "by_grade": {sw.GRADE_CODES[g + 1]: group_count(w.gnum == g) for g in range(-1, 9)},
        "race_ethnicity": {name: group_count(w.group == k)
                           for k, name in enumerate(sw.REPORTING_GROUPS)},
        "gender": {gv: sum(1 for x in w.gender if x == gv) for gv in ("F", "M", "X")},
        "elas": {e: sum(1 for x in w.elas if x == e) for e in ("EL", "RFEP", "IFEP", "EO", "TBD")},
        "swd": int(w.sped.sum()),
        "plan_504": int(w.plan504.sum()),
        "sed": int(w.sed.sum()),
        "small_cells_note": "American Indian or Alaska Native, Native Hawaiian or Other Pacific "
        "Islander and gender X are planted below the default minimum cell size of 10 in a "
        "1,500-student district.",
    }

    products = {
        sw.PRODUCT_A: {
            "label": "A",
            "layout": "i-Ready Personalized Instruction by Lesson (one row per lesson)",
            "file": "iready/personalized_instruction_by_lesson_ela.csv",
            "beta_per_habitual_month": sw.BETA_A,
            "plateau_months": sw.PLATEAU_MONTHS,
            "effect_on": {"ela_scale_score": f"{sw.BETA_A} * min(habitual_months, "
                          f"{sw.PLATEAU_MONTHS})", "math_scale_score": 0.0},
            "habitual_month_rule": f">= {sw.HABITUAL_DAYS} distinct lesson-days in a calendar "
            "month, counted strictly between the fall and spring ELA diagnostics (no lesson is "
            "dated on a diagnostic day, so inclusive and exclusive windows agree)",
            "winter_effect": "winter ELA scores include beta * min(habitual months between fall "
            "and winter diagnostics, plateau)",
            "expected_linear_slope_per_habitual_month": _r(
                _linear_slope(w, idx, hm, effect, fall)) if idx.size > 20 else None,
            "habitual_months_distribution_scored": hm_counts,
            "share_scored_non_users": _r(non_user_share),
            "mean_true_effect_scored_users": _r(effect[any_a].mean()) if any_a.any() else None,
            "seats_purchased": seats[sw.PRODUCT_A],
            "students_using": int(w.truth["_user_a"].sum()),
        },
        sw.PRODUCT_B: {
            "label": "B",
            "layout": "Lexia Core5 activity log (event rows, UTC timestamps)",
            "file": "usage/lexia_core5_activity.csv",
            "beta_per_habitual_month": 0.0,
            "effect_on": {"ela_scale_score": 0.0, "math_scale_score": 0.0},
            "students_using": int(w.truth["_user_b"].sum()),
            "seats_purchased": seats[sw.PRODUCT_B],
            "grades": "TK-5",
        },
        sw.PRODUCT_C: {
            "label": "C",
            "layout": "VendorX monthly wide summary (Achieve3000 style)",
            "file": "usage/vendorx_usage_export.csv",
            "beta_per_habitual_month": 0.0,
            "effect_on": {"ela_scale_score": 0.0, "math_scale_score": 0.0},
            "seats_purchased": seats[sw.PRODUCT_C],
            "students_licensed": int(w.truth["_licensed_c"].sum()),
            "students_using": int(w.truth["_active_c"].sum()),
            "over_bought": "seats purchased are many times the students who use it",
            "grades": "3-8",
        },
    }

    confounding = {
        "description": (
            "Product-A use depends on school (schools with higher growth effects use it more; "
            "the pilot school most), grade (K-2 more, 6-8 less), fall ELA standing within grade "
            "(higher -> more) and EL status (EL students more, via teacher-assigned lessons). "
            "Lexia (B) is used more by lower-scoring students and in the lowest-growth school; "
            "VendorX (C) more by higher-scoring students. Adjusting for fall score, grade, "
            "school and EL status removes the confounding (all of it is through these "
            "observed variables)."
        ),
        "propensity_a_logit": dict(sw.PROPENSITY_A),
        "propensity_b_logit": dict(sw.PROPENSITY_B),
        "propensity_c": dict(sw.PROPENSITY_C),
        "school_usage_shift_a": {s.name: s.usage_shift for s in sw.SCHOOLS},
        "pilot_intensity_multiplier_a": 1.3,
    }

    naive = {
        sw.PRODUCT_A: {
            "sample": "students with a fall and a spring ELA diagnostic, neither rush-flagged",
            "gain_any_use_vs_none": _compare(gain.astype(float), any_a, effect),
            "gain_habitual_vs_none": _compare(
                gain[(hm >= 1) | ~any_a].astype(float), (hm >= 1)[(hm >= 1) | ~any_a],
                effect[(hm >= 1) | ~any_a]),
            "spring_percentile_any_use_vs_none": _compare(pct_spring.astype(float), any_a,
                                                          pct_effect),
        },
        sw.PRODUCT_B: {
            "gain_any_use_vs_none": _compare(gain.astype(float), any_b, zero),
        },
        sw.PRODUCT_C: {
            "gain_any_use_vs_none": _compare(gain.astype(float), act_c, zero),
        },
    }
    naive[sw.PRODUCT_A]["spring_percentile_any_use_vs_none"]["note"] = (
        "true effect in percentile points = spring percentile minus the percentile of the same "
        "score without the planted product-A effect"
    )

    all_quirks = dict(w.quirks)
    all_quirks.update(quirks)
    all_quirks["rush_flag_rows_note"] = (
        "ela_rush_flag_rows / math_rush_flag_rows count distinct diagnostics, before the planted "
        "exact duplicates and the MM-DD-YYYY re-export rows were added"
    )
    all_quirks["tk_students_absent_from_iready"] = int((w.gnum < 0).sum())
    all_quirks["diagnostic_demographics_blank_students_share"] = 0.30
    all_quirks["diagnostic_demographics_blank_students"] = int(w.demo_blank.sum())
    all_quirks["roster_rows"] = w.n + len(w.transfer)
    all_quirks["excel_copy"] = ("sis/students_2024-25_excel.csv: UTF-8 BOM, CRLF line ends, "
                                "leading zeros stripped from Student Number, M/D/YYYY dates")
    all_quirks["iready_student_id_leading_zeros_stripped"] = True

    return {
        "generator": GENERATOR,
        "generator_version": GENERATOR_VERSION,
        "seed": w.seed,
        "n_students": w.n,
        "district": sw.DISTRICT,
        "academic_year": sw.ACADEMIC_YEAR,
        "timezone": sw.TIMEZONE,
        "synthetic": True,
        "files": list(SAMPLE_FILES),
        "schools": schools,
        "rollout_stages": {s.name: s.stage for s in sw.SCHOOLS},
        "population": population,
        "outcome_model": {
            "ela": {
                "formula": "spring = fall + typical_growth(grade, fall placement) "
                "+ beta_A * min(habitual_months_A, plateau) + subgroup growth offsets "
                "+ school growth effect + noise",
                "noise_sd": sw.NOISE_SD["ela"],
                "winter": "fall + 0.45 * typical_growth + beta_A * min(habitual months to "
                "winter, plateau) + 0.5 * (offsets + school effect) + noise",
                "winter_noise_sd": sw.WINTER_NOISE_SD["ela"],
                "subgroup_growth_offsets": sw.GROWTH_OFFSETS_ELA,
                "race_ethnicity_growth_offsets": 0.0,
                "school_effects": {s.name: s.ela_effect for s in sw.SCHOOLS},
            },
            "math": {
                "formula": "spring = fall + typical_growth + subgroup growth offsets + school "
                "growth effect + noise (no product effect)",
                "noise_sd": sw.NOISE_SD["math"],
                "subgroup_growth_offsets": sw.GROWTH_OFFSETS_MATH,
                "school_effects": {s.name: s.math_effect for s in sw.SCHOOLS},
            },
            "baseline_offsets_sd_units": sw.BASELINE_OFFSETS,
            "typical_growth": "norm growth(grade) * (1 + 0.08 * min(levels below, 3))",
            "rush_flags": "Yellow (~4%) and Red (~2%) rush-flagged diagnostics under-state the "
            "score by about 28 (Yellow) and 39 (Red) points",
        },
        "norms": {
            "note": "synthetic norm tables, not real i-Ready norms; percentile = "
            "100 * Phi((score - mean) / sd), clipped to 1..99; winter mean = fall + 0.45 growth, "
            "spring mean = fall + growth",
            "grades": "K..8",
            "ela": {k: list(v) for k, v in sw.NORMS["ela"].items()},
            "math": {k: list(v) for k, v in sw.NORMS["math"].items()},
            "older_norms_2023_24_mean_shift": sw.OLD_NORM_SHIFT,
        },
        "products": products,
        "confounding": confounding,
        "naive_comparisons": naive,
        "quirks": all_quirks,
    }
