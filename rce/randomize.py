"""Random assignment for a randomized pilot (``rce randomize``).

Students or classes are assigned within blocks (default school x grade), and the draw is
repeated -- a bounded number of times, each attempt with a seed derived from the recorded seed --
until baseline balance holds: every balance variable within the WWC "no adjustment needed" band
(|g| ≤ 0.05, Hedges' g with the pooled SD) on the whole sample. For 0/1 indicators g is the
standardized difference in proportions: the WWC's Cox index is unstable for rare categories
and would make the target unreachable, so categories smaller than the plan's minimum cell size
are also merged into "Other". The RCE Coach re-randomized for up
to 60 seconds against |std. bias| ≤ 0.25 per block (``methods.md`` §1.6); here the bound is a
number of attempts, so the same seed always gives the same assignment.

What re-randomization implies: analyses should adjust for the balance variables (the impact
model does), and the seed and attempt are recorded so anyone can reproduce the assignment.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from rce.config import Plan
from rce.errors import DataError
from rce.stats import effect_sizes as es
from rce.stats._impact_common import fmt, json_safe, merge_rare_levels
from rce.stats.ols import design_matrix
from rce.stats.wwc import EQUIVALENCE_SATISFIED, equivalence_verdict

UNITS = ("student", "class")
#: Columns that can identify a class, in order of preference.
CLASS_COLUMNS = ("class", "section", "class_id", "section_id", "teacher")
#: Default balance variables when present (roster demographics and a baseline score).
DEFAULT_BALANCE = ("baseline_scale_score", "el_status", "swd", "econ_disadv", "gender",
                   "race_ethnicity")
DEFAULT_MAX_TRIES = 1000


@dataclass(frozen=True)
class RandomizationResult:
    """An assignment, the balance it achieved, and how to reproduce it."""

    assignments: pd.DataFrame  # one row per student: ids, block, unit, assignment (1/0)
    balance: pd.DataFrame  # variable, kind, mean_treatment, mean_control, g, verdict
    unit: str
    unit_column: str | None
    block: tuple[str, ...]
    seed: int
    attempt: int
    tries: int
    threshold: float
    balanced: bool
    max_abs_g: float
    treated_share: float
    n_units: int
    n_blocks: int
    n_treatment: int
    n_control: int
    notes: tuple[str, ...] = field(default=())

    def to_frame(self) -> pd.DataFrame:
        """The assignment table (contains student IDs: write it only where the roster may go)."""
        return self.assignments

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict without any student identifier."""
        d = {k: v for k, v in self.__dict__.items() if k != "assignments"}
        return json_safe(d)

    def summary(self) -> str:
        """Readable text (no identifiers)."""
        status = "balance holds" if self.balanced else "balance NOT reached"
        lines = [
            f"Assigned {self.n_units} {self.unit}{'es' if self.unit == 'class' else 's'} in "
            f"{self.n_blocks} blocks ({', '.join(self.block) or 'no blocking'}): "
            f"{self.n_treatment} students to the product, {self.n_control} to the comparison "
            "condition.",
            f"Seed {self.seed}, accepted attempt {self.attempt} of at most {self.tries}; "
            f"{status} (largest |g| = {fmt(self.max_abs_g)}, target ≤ {self.threshold:g}).",
        ]
        for _, r in self.balance.iterrows():
            lines.append(f"  {r['variable']}: g {fmt(r['g'])} ({r['verdict']})")
        lines.extend(self.notes)
        return "\n".join(lines)


def _unit_column(students: pd.DataFrame) -> str:
    for c in CLASS_COLUMNS:
        if c in students.columns and students[c].notna().any():
            return c
    raise DataError(
        "class assignment needs a class, section or teacher column in the roster",
        where="roster",
        hint="Add a class/section column, or assign students (--unit student).",
    )


def _balance_frame(frame: pd.DataFrame, variables: Sequence[str],
                   min_cell: int) -> tuple[pd.DataFrame, list]:
    cols: dict[str, Any] = {}
    names: list[str] = []
    for v in variables:
        s = frame[v]
        if pd.api.types.is_bool_dtype(s.dtype):
            cols[v] = s.astype("float64")
            names.append(v)
        elif pd.api.types.is_numeric_dtype(s.dtype):
            cols[v] = s.astype(float)
            names.append(v)
        else:
            text = merge_rare_levels(s, min_cell)
            if text.nunique() < 2:
                continue
            X, lv = design_matrix(pd.DataFrame({v: text}), categorical=[v], drop_first=False,
                                  intercept=False)
            for j, nm in enumerate(lv):
                cols[nm] = X[:, j]
                names.append(nm)
    return pd.DataFrame(cols, index=frame.index), names


def _balance(names: list[str], xs: list[np.ndarray], assign: np.ndarray) -> pd.DataFrame:
    t = assign == 1
    rows = []
    for name, x in zip(names, xs, strict=True):
        ok = np.isfinite(x)
        xt, xc = x[ok & t], x[ok & ~t]
        g = es.hedges_g(xt, xc).g
        rows.append({"variable": name,
                     "mean_treatment": float(xt.mean()) if len(xt) else math.nan,
                     "mean_control": float(xc.mean()) if len(xc) else math.nan,
                     "g": g, "verdict": equivalence_verdict(g)})
    return pd.DataFrame(rows)


def _draw(units: pd.DataFrame, block_codes: np.ndarray, share: float,
          rng: np.random.Generator) -> np.ndarray:
    assign = np.zeros(len(units), dtype=float)
    for b in np.unique(block_codes):
        idx = np.flatnonzero(block_codes == b)
        want = share * len(idx)
        # Random rounding keeps the expected share exact across blocks with odd sizes.
        k = math.floor(want) + int(rng.random() < want - math.floor(want))
        chosen = rng.permutation(idx)[:k]
        assign[chosen] = 1.0
    return assign


def randomize(
    students: pd.DataFrame,
    *,
    unit: str = "student",
    block: Sequence[str] = ("school", "grade"),
    seed: int,
    max_tries: int = DEFAULT_MAX_TRIES,
    balance_vars: Sequence[str] | None = None,
    treated_share: float = 0.5,
    threshold: float = EQUIVALENCE_SATISFIED,
    min_cell: int | None = None,
) -> RandomizationResult:
    """Blocked random assignment with bounded re-randomization until baseline balance holds.

    Parameters
    ----------
    students
        One row per student (``student_id`` and the block / class / balance columns).
    unit
        ``"student"`` or ``"class"`` (whole classes are assigned; balance is checked on
        students, and the analysis must cluster by class).
    block
        Columns to randomize within (each block is split by ``treated_share``). For class
        assignment a block column must not vary within a class.
    seed
        Recorded seed; attempt k uses ``numpy.random.default_rng([seed, k])``.
    max_tries
        Attempts before giving up on the threshold (the best attempt is then kept and flagged).
    balance_vars
        Baseline columns to balance (numeric, 0/1 or categorical); default the ones of
        :data:`DEFAULT_BALANCE` present.
    treated_share
        Share of units assigned to the product in each block.
    threshold
        Largest acceptable |g| on every balance variable.
    min_cell
        Categories with fewer students are merged into "Other" (default: the plan default
        ``privacy.min_cell_size``).

    Returns
    -------
    RandomizationResult
    """
    if unit not in UNITS:
        raise DataError(f"unknown randomization unit {unit!r}", where="--unit",
                        hint="Use 'student' or 'class'.")
    if not 0 < treated_share < 1:
        raise DataError("the treated share must be between 0 and 1", where="--treated-share",
                        hint="e.g. 0.5")
    if max_tries < 1:
        raise DataError("max_tries must be at least 1", where="randomize", hint=None)
    if "student_id" not in students.columns:
        raise DataError("the roster has no student_id column", where="roster", hint=None)
    missing = [b for b in block if b not in students.columns]
    if missing:
        raise DataError(f"the roster has no block column {missing[0]!r}", where="roster",
                        hint="Block on columns the roster has, e.g. --block school.")
    frame = students.drop_duplicates("student_id").reset_index(drop=True)
    notes: list[str] = []
    if len(frame) < len(students):
        notes.append(f"{len(students) - len(frame)} repeated roster rows (same student) were "
                     "assigned once.")
    block_key = pd.Series("all", index=frame.index, dtype="string")
    for i, col in enumerate(block):
        part = frame[col].astype("string").fillna("unknown")
        block_key = part if i == 0 else block_key + " | " + part
    unit_col = None
    if unit == "class":
        unit_col = _unit_column(frame)
        unit_id = frame[unit_col].astype("string").fillna("unknown")
        # Blocks must be constant within a class.
        per = block_key.groupby(unit_id).nunique()
        if (per > 1).any():
            raise DataError(
                f"a {unit_col} spans more than one block ({', '.join(block)})",
                where=f"roster, column {unit_col}",
                hint="Block on school only when classes mix grades.",
            )
        units = pd.DataFrame({"unit": unit_id, "block": block_key}).drop_duplicates("unit")
        member = unit_id.to_numpy()
    else:
        units = pd.DataFrame({"unit": frame["student_id"].astype(str), "block": block_key})
        member = units["unit"].to_numpy()
    units = units.reset_index(drop=True)
    block_codes = pd.factorize(units["block"])[0]
    if len(units) < 2:
        raise DataError("at least two units are needed to randomize", where="roster", hint=None)
    vars_ = [v for v in (balance_vars if balance_vars is not None else DEFAULT_BALANCE)
             if v in frame.columns]
    if balance_vars is not None:
        absent = [v for v in balance_vars if v not in frame.columns]
        if absent:
            raise DataError(f"the roster has no balance column {absent[0]!r}", where="roster",
                            hint="Name columns the roster has.")
    if min_cell is None:
        min_cell = Plan().privacy.min_cell_size
    bal_frame, bal_names = _balance_frame(frame, vars_, min_cell)
    bal_x = [bal_frame[v].to_numpy(dtype=float) for v in bal_names]
    unit_pos = pd.Series(np.arange(len(units)), index=units["unit"].to_numpy())
    member_pos = unit_pos.reindex(member).to_numpy()

    best: tuple[float, int, np.ndarray, Any] | None = None
    accepted = None
    for attempt in range(1, max_tries + 1):
        rng = np.random.default_rng([seed, attempt])
        a_units = _draw(units, block_codes, treated_share, rng)
        a_students = a_units[member_pos]
        if a_students.min() == a_students.max():
            continue
        if bal_names:
            eq = _balance(bal_names, bal_x, a_students)
            gs = [abs(g) for g in eq["g"] if math.isfinite(g)]
            worst = max(gs) if gs else 0.0
        else:
            eq, worst = None, 0.0
        if best is None or worst < best[0]:
            best = (worst, attempt, a_students, eq)
        if worst <= threshold + 1e-12:
            accepted = best
            break
    if best is None:
        raise DataError("no attempt produced both a treatment and a comparison group",
                        where="randomize", hint="Add units or change the treated share.")
    worst, attempt, a_students, eq = accepted or best
    balanced = accepted is not None
    if not balanced:
        notes.append(f"No attempt in {max_tries} met |g| ≤ {threshold:g} on every balance "
                     f"variable; the best attempt ({attempt}) is used -- adjust for these "
                     "variables in the analysis.")
    if not bal_names:
        notes.append("No balance variables were available; the first draw was used.")
    if unit == "class":
        notes.append(f"Whole groups ({unit_col}) were assigned: analyse with standard errors "
                     f"clustered by {unit_col}.")
    notes.append("Re-randomization: the impact model adjusts for the balance variables.")
    out = frame[["student_id"]].copy()
    for b in block:
        out[b] = frame[b]
    if unit_col:
        out[unit_col] = frame[unit_col]
    out["block"] = block_key.to_numpy()
    out["assignment"] = a_students.astype(int)
    out["seed"] = seed
    out["attempt"] = attempt
    balance = (eq if eq is not None else pd.DataFrame(
        columns=["variable", "mean_treatment", "mean_control", "g", "verdict"]))
    return RandomizationResult(
        assignments=out, balance=balance, unit=unit, unit_column=unit_col, block=tuple(block),
        seed=int(seed), attempt=int(attempt), tries=int(max_tries), threshold=float(threshold),
        balanced=balanced, max_abs_g=float(worst), treated_share=float(treated_share),
        n_units=len(units), n_blocks=int(block_codes.max()) + 1,
        n_treatment=int(a_students.sum()), n_control=int(len(a_students) - a_students.sum()),
        notes=tuple(notes),
    )


def randomize_roster(
    roster: Path | str,
    *,
    out: Path | str,
    unit: str = "student",
    block: Sequence[str] = ("school", "grade"),
    treated_share: float = 0.5,
    seed: int,
    plan: Plan | None = None,
    max_tries: int = DEFAULT_MAX_TRIES,
) -> RandomizationResult:
    """Read a roster export, randomize it, and write the assignment CSV (``rce randomize``).

    The CSV holds student IDs (it is the assignment list the district keeps); the returned
    result's ``summary()`` and ``to_dict()`` hold none.
    """
    from rce.fileio import atomic_write_text
    from rce.io.load import load_roster

    plan = plan or Plan()
    table = load_roster([str(roster)], plan)
    res = randomize(table.frame, unit=unit, block=block, seed=seed, max_tries=max_tries,
                    treated_share=treated_share, min_cell=plan.privacy.min_cell_size)
    atomic_write_text(Path(out), res.assignments.to_csv(index=False))
    return res
