"""Render the simulated district (:mod:`rce.sample_world`) as messy vendor export files.

Each ``render_*`` function returns the exact bytes of one file. Headers are copied from
``data-formats.md`` (§1.2 Diagnostic Results 2024-25: 63 ELA / 54 math columns; §1.8 lesson
file; §2 Lexia and Achieve3000-style exports; §5.3 SIS roster). Only integers and fixed strings
are written, so the bytes depend on nothing but the seed.
"""

from __future__ import annotations

import csv
import io
from datetime import date, timedelta

import numpy as np
from scipy.special import ndtri

from rce.sample_world import (
    ACADEMIC_YEAR,
    DISTRICT,
    EMAIL_DOMAIN,
    FIRST_NAMES,
    GRADE_CODES,
    LAST_NAMES,
    MID_ON_GRADE,
    PRIOR_YEAR,
    RACE_LABEL,
    SCHOOLS,
    VENDORX_MONTHS,
    Diagnostic,
    World,
    ascii_fold,
    grade_label,
    percentile_one,
    placement,
    stretch_growth,
    typical_growth,
)

# --- headers ---------------------------------------------------------------------------------

_IDENTITY = [
    "Last Name", "First Name", "Student ID", "Student Grade", "Academic Year", "School",
    "Enrolled", "User Name",
]
_DEMOGRAPHICS = [
    "Hispanic or Latino", "Race", "English Language Learner", "Special Education",
    "Economically Disadvantaged", "Migrant", "Class(es)", "Class Teacher(s)", "Report Group(s)",
]
ELA_DOMAINS = (
    "Phonological Awareness", "Phonics", "High-Frequency Words", "Vocabulary",
    "Comprehension: Overall", "Comprehension: Literature", "Comprehension: Informational Text",
)
OLD_ELA_DOMAINS = (
    "Phonological Awareness", "Phonics", "High-Frequency Words", "Vocabulary",
    "Reading Comprehension: Literature", "Reading Comprehension: Informational Text",
)
MATH_DOMAINS = (
    "Number and Operations", "Algebra and Algebraic Thinking", "Measurement and Data",
    "Geometry",
)
_GROWTH_TAIL = [
    "Diagnostic Gain", "Annual Typical Growth Measure", "Annual Stretch Growth Measure",
    "Percent Progress to Annual Typical Growth (%)",
    "Percent Progress to Annual Stretch Growth (%)", "Mid On Grade Level Scale Score",
]
_PROJECTIONS = [
    "Proficiency if Student Shows No Additional Growth",
    "Projection if Student Achieves Typical Growth",
    "Projection if Student Achieves Stretch Growth",
]


def _domain_cols(domains: tuple[str, ...]) -> list[str]:
    return [f"{d} {part}" for d in domains for part in ("Scale Score", "Placement",
                                                          "Relative Placement")]


def diagnostic_header(subject: str, *, old: bool = False) -> list[str]:
    """Exact Diagnostic Results header: 2024-25 (63 ELA / 54 math) or the older ELA set (59)."""
    sex = "Gender" if old else "Sex"
    flags = (["Diagnostic used to establish Growth Measures (Y/N)", "Most Recent Diagnostic (Y/N)"]
             if old else ["Baseline Diagnostic (Y/N)", "Most Recent Diagnostic YTD (Y/N)"])
    head = _IDENTITY + [sex] + _DEMOGRAPHICS + ["Start Date", "Completion Date"] + flags
    head += ["Duration (min)", "Rush Flag"] + ([] if old else ["Read Aloud"])
    head += ["Overall Scale Score", "Overall Placement", "Overall Relative Placement",
             "Percentile", "Grouping"]
    if subject == "ela":
        head += ["Lexile Measure", "Lexile Range"]
        head += _domain_cols(OLD_ELA_DOMAINS if old else ELA_DOMAINS)
        head += _GROWTH_TAIL + ["Reading Difficulty Indicator (Y/N)"] + _PROJECTIONS
    else:
        head += ["Quantile Measure", "Quantile Range"] + _domain_cols(MATH_DOMAINS)
        head += ["Diagnostic Language"] + _GROWTH_TAIL + _PROJECTIONS
    return head


ROSTER_HEADER = [
    "Student Number", "SSID", "Last Name", "First Name", "Middle Name", "Email", "Grade",
    "School Code", "School Name", "Gender", "Birthdate", "Hispanic or Latino", "Race 1",
    "Race 2", "Race 3", "Race 4", "Race 5", "ELAS", "ELAS Start Date", "Primary Language",
    "SPED", "Primary Disability", "Plan 504", "FRPM", "SED", "Foster", "Homeless", "Migrant",
    "Enter Date", "Leave Date",
]
LESSON_HEADER = (
    _IDENTITY[:6] + ["Subject", "Enrolled", "User Name", "Sex"] + _DEMOGRAPHICS
    + ["Domain", "Lesson Grade", "Lesson Level", "Lesson ID", "Lesson Name", "Lesson Objective",
       "Lesson Language", "Completion Date", "Total Time on Lesson (min)", "Score",
       "Passed or Not Passed", "Teacher-Assigned Lesson"]
)
LEXIA_HEADER = [
    "Lexia_ID", "username", "fname", "lname", "grade_label", "school_name", "activity_id",
    "activity_name", "activity_start_time", "activity_end_time", "activity_time", "today_mins",
    "week_time", "weekly_usage_target", "meeting_target_usage", "studentrefid",
]
_MONTH_NAMES = ("January", "February", "March", "April", "May", "June", "July", "August",
                "September", "October", "November", "December")
VENDORX_HEADER = [
    "District", "School", "Student ID", "Student Name", "Grade", "Total Logins", "First Login",
    "Last Login", "Program Time",
] + [f"{_MONTH_NAMES[m - 1]} {y} Activities" for y, m in VENDORX_MONTHS]


# --- formatting helpers ----------------------------------------------------------------------


def csv_bytes(header: list[str], rows: list[list[str]], *, crlf: bool = False,
              bom: bool = False) -> bytes:
    """CSV text as bytes (UTF-8, minimal quoting)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n" if crlf else "\n")
    writer.writerow(header)
    writer.writerows(rows)
    data = buf.getvalue().encode("utf-8")
    return b"\xef\xbb\xbf" + data if bom else data


def mdy(d: date | None, *, pad: bool = True, sep: str = "/") -> str:
    """US month-first date: ``08/26/2024`` (pad) or ``8/26/2024``."""
    if d is None:
        return ""
    if pad:
        return f"{d.month:02d}{sep}{d.day:02d}{sep}{d.year}"
    return f"{d.month}{sep}{d.day}{sep}{d.year}"


def _yn(flag: bool) -> str:
    return "Y" if flag else "N"


def padded_id(w: World, i: int) -> str:
    """The SIS Student Number, zero-padded (``004512``); ghosts use IDs outside the roster."""
    num = int(w.number[i]) if i >= 0 else int(w.ghost_numbers[-1 - i])
    return f"{num:0{w.id_width}d}"


def stripped_id(w: World, i: int) -> str:
    """The Student Number as i-Ready and Excel write it: leading zeros stripped."""
    return str(int(w.number[i]) if i >= 0 else int(w.ghost_numbers[-1 - i]))


def _race_text(codes: list[str]) -> str:
    labels = {RACE_LABEL[c] for c in codes}
    return labels.pop() if len(labels) == 1 else "Two or More Races"


def _sex_text(w: World, i: int) -> str:
    g = w.gender[i]
    if g == "X":
        return ""  # vendors collapse to male / female / blank
    return {0: {"M": "Male", "F": "Female"}, 1: {"M": "male", "F": "female"},
            2: {"M": "M", "F": "F"}}[int(w.sex_style[i])][g]


def _demographic_cells(w: World, i: int, subject: str, el_flag: str) -> list[str]:
    """Sex .. Report Group(s) cells (10), blank when the optional columns were left empty."""
    cls, teacher = w.class_name.get((subject, i), ("", ""))
    if w.demo_blank[i]:
        return ["", "", "", "", "", "", "", cls, teacher, ""]
    return [
        _sex_text(w, i), _yn(bool(w.hispanic[i])), _race_text(w.races[i]), el_flag,
        _yn(bool(w.sped[i])), _yn(bool(w.sed[i])), _yn(bool(w.migrant[i])), cls, teacher, "",
    ]


def _lexile(score: int) -> tuple[str, str]:
    lex = int(round((score - 450) * 4.4 / 5.0)) * 5
    lo, hi = lex - 100, lex + 50

    def f(v: int) -> str:
        return f"BR{-v}L" if v < 0 else f"{v}L"

    return f(lex), f"{f(lo)}-{f(hi)}"


def _quantile(score: int) -> tuple[str, str]:
    q = int(round((score - 400) * 4.8 / 5.0)) * 5
    lo, hi = q - 50, q + 50

    def f(v: int) -> str:
        return f"EM{-v}Q" if v < 0 else f"{v}Q"

    return f(q), f"{f(lo)}-{f(hi)}"


def _perf_level(p: int) -> str:
    return "Level 1" if p < 30 else "Level 2" if p < 55 else "Level 3" if p < 80 else "Level 4"


_GROUPING = {
    "3 or More Grade Levels Below": "1", "2 Grade Levels Below": "2",
    "1 Grade Level Below": "3", "Early On Grade Level": "4", "Mid or Above Grade Level": "5",
}


# --- roster ----------------------------------------------------------------------------------


def roster_rows(w: World, *, excel: bool) -> list[list[str]]:
    """SIS roster rows (two rows for a mid-year transfer), sorted by school and name."""
    keyed: list[tuple[tuple, list[str]]] = []
    for i in range(w.n):
        number = stripped_id(w, i) if excel else padded_id(w, i)
        codes = w.races[i] + [""] * (5 - len(w.races[i]))
        g = w.grade_on(i, date(2025, 6, 1))
        base = [
            number, w.ssid[i], w.last[i], w.first[i], w.middle[i], w.email[i],
            GRADE_CODES[g + 1],
        ]
        demo = [
            w.gender[i], mdy(w.birth[i], pad=not excel), _yn(bool(w.hispanic[i])), *codes,
            w.elas[i], mdy(w.elas_start[i], pad=not excel), w.language[i], _yn(bool(w.sped[i])),
            w.disability[i], _yn(bool(w.plan504[i])), w.frpm[i], _yn(bool(w.sed[i])),
            _yn(bool(w.foster[i])), _yn(bool(w.homeless[i])), _yn(bool(w.migrant[i])),
        ]
        spans: list[tuple[int, date, date | None]]
        if i in w.transfer:
            d, new = w.transfer[i]
            spans = [(int(w.school[i]), w.enter[i], d), (new, d + timedelta(days=1), None)]
            # the new school's first day is the next school day after the leave date
            nxt = d + timedelta(days=1)
            while nxt.weekday() >= 5:
                nxt += timedelta(days=1)
            spans[1] = (new, nxt, None)
        else:
            spans = [(int(w.school[i]), w.enter[i], w.leave[i])]
        for s, enter, leave in spans:
            sch = SCHOOLS[s]
            key = (sch.code, w.last[i].strip(), w.first[i], int(w.number[i]), enter.toordinal())
            keyed.append((key, base + [sch.code, sch.name] + demo
                          + [mdy(enter, pad=not excel), mdy(leave, pad=not excel)]))
    # Same order in both copies: sorted on values, not on their formatted text.
    keyed.sort(key=lambda kr: kr[0])
    return [row for _, row in keyed]


# --- diagnostics -----------------------------------------------------------------------------


def _domain_cells(subject: str, score: int, grade: int, domains: tuple[str, ...],
                  rng: np.random.Generator, *, old: bool) -> list[str]:
    cells: list[str] = []
    above = _level_number(placement(subject, score, grade, old=old)[0])
    surpass = "Tested Out" if old else "Surpassed Level"
    noise = rng.normal(0, 14, len(domains)).tolist()
    for dom, eps in zip(domains, noise, strict=True):
        dscore = min(800, max(100, round(score + eps)))
        text, rel, _ = placement(subject, dscore, grade, old=old)
        top = _TOP_LEVEL.get(dom)
        if top is not None and above is not None and above >= top:
            cells += ["", surpass, ""]
        elif "Literature" in dom or "Informational" in dom:
            if grade == 0 and score < 380:
                cells += ["", "Not Assessed", "Not Assessed"]
            else:
                cells += [str(dscore), text, rel]
        else:
            cells += [str(dscore), text, rel]
    return cells


_TOP_LEVEL = {"Phonological Awareness": 2, "Phonics": 4, "High-Frequency Words": 2}


def _level_number(text: str) -> int | None:
    last = text.split()[-1]
    if last == "K":
        return 0
    return int(last) if last.isdigit() else None


def _diag_row(w: World, d: Diagnostic, base: Diagnostic | None, rng: np.random.Generator, *,
              old: bool, date_sep: str = "/", pad: bool = False) -> list[str]:
    i = d.student
    subj = d.subject
    g = d.grade
    text, rel, _below = placement(subj, d.score, g, old=old)
    pct = percentile_one(subj, d.score, g, d.window, old=old)
    sch = SCHOOLS[d.school]
    enrolled = "Unenrolled" if (w.leave[i] is not None and not old) else "Enrolled"
    row = [
        w.last[i].strip(), w.first[i], stripped_id(w, i), grade_label(g),
        PRIOR_YEAR if old else ACADEMIC_YEAR, sch.name, enrolled, w.email[i].lower(),
    ]
    demo = _demographic_cells(w, i, subj, d.el_flag)
    if old:
        demo[7:9] = ["", ""]  # last year's classes are not known
    row += demo
    row += [mdy(d.start, pad=pad, sep=date_sep), mdy(d.completion, pad=pad, sep=date_sep),
            _yn(d.baseline), _yn(d.most_recent), str(d.duration), d.rush]
    if not old:
        row.append("Off")
    row += [str(d.score), text, rel, str(pct), _GROUPING[rel]]
    if subj == "ela":
        row += list(_lexile(d.score))
        row += _domain_cells(subj, d.score, g, OLD_ELA_DOMAINS if old else ELA_DOMAINS, rng,
                             old=old)
    else:
        row += list(_quantile(d.score))
        row += _domain_cells(subj, d.score, g, MATH_DOMAINS, rng, old=old)
        spanish = w.elas[i] == "EL" and w.language[i] == "Spanish" and int(w.number[i]) % 7 == 0
        row.append("Spanish" if spanish else "English")
    if old:
        g0 = base.grade if base else g
        b_score = base.score if base else d.score
        below = placement(subj, b_score, g0, old=True)[2]
        typ, stretch = typical_growth(subj, g0, below), stretch_growth(subj, g0, below)
    else:
        typ, stretch = w.truth["_growth"][(i, subj)]
    if base is None or d is base:
        gain_cells = ["", str(typ), str(stretch), "", ""]
    else:
        gain = d.score - base.score
        gain_cells = [str(gain), str(typ), str(stretch), str(int(round(100 * gain / typ))),
                      str(int(round(100 * gain / stretch)))]
    row += gain_cells + [str(MID_ON_GRADE[subj][g])]
    if subj == "ela":
        if g <= 3:
            rdi = "Y" if (text == "Emerging K" or rel in (
                "2 Grade Levels Below", "3 or More Grade Levels Below")) else "N"
        else:
            rdi = "Not Applicable"
        row.append(rdi)
    if g >= 3:
        now = pct if d.window == "spring" else max(1, pct - 15)
        row += [_perf_level(now), _perf_level(pct), _perf_level(min(99, pct + 15))]
    else:
        row += ["", "", ""]
    return row


def diagnostic_file(w: World, subject: str, rng: np.random.Generator, *,
                    old: bool = False) -> tuple[bytes, dict[str, int]]:
    """One Diagnostic Results file and the counts of its planted quirks."""
    diags = w.prior if old else [d for d in w.diagnostics if d.subject == subject]
    base_of = {d.student: d for d in diags if d.baseline}
    order = sorted(diags, key=lambda d: (SCHOOLS[d.school].name, w.last[d.student].strip(),
                                         w.first[d.student], stripped_id(w, d.student),
                                         d.completion, d.start))
    rows = [_diag_row(w, d, base_of.get(d.student), rng, old=old) for d in order]
    quirks: dict[str, int] = {}
    if not old:
        # Three exact duplicate rows, each right after its original.
        dup_at = sorted(rng.choice(len(rows), size=min(3, len(rows)), replace=False).tolist(),
                        reverse=True)
        for k in dup_at:
            rows.insert(k + 1, list(rows[k]))
        quirks["exact_duplicate_rows"] = len(dup_at)
        # A re-export of the latest spring results appended with MM-DD-YYYY dates.
        spring = [d for d in order if d.window == "spring"]
        spring.sort(key=lambda d: (d.completion, stripped_id(w, d.student)))
        n_re = max(1, int(round(0.03 * len(rows))))
        tail = sorted(spring[-n_re:], key=lambda d: (SCHOOLS[d.school].name,
                                                     stripped_id(w, d.student)))
        sub_rng = np.random.default_rng(abs(hash_text(subject)) + w.seed)
        for d in tail:
            rows.append(_diag_row(w, d, base_of.get(d.student), sub_rng, old=False,
                                  date_sep="-", pad=True))
        quirks["reexport_rows_mm_dd_yyyy"] = len(tail)
        # The re-exported rows repeat diagnostics already in the file; their domain scores are
        # redrawn, so they are duplicates by (student, completion date, overall score) only.
    return csv_bytes(diagnostic_header(subject, old=old), rows), quirks


def hash_text(text: str) -> int:
    """A stable small integer from text (Python's hash() is salted per process)."""
    h = 0
    for ch in text.encode("utf-8"):
        h = (h * 131 + ch) % 1_000_003
    return h


# --- lessons (product A) -------------------------------------------------------------------------

_LESSON_TOPICS = {
    "PA": ("Phonological Awareness", ("Rhyming Words", "Syllables: Clap, Count, and Say",
                                      "Beginning Sounds: /m/, /s/, /t/", "Blending Onset and Rime",
                                      "Segmenting Sounds, Part 1")),
    "PH": ("Phonics", ("Letter Learning: Mm, Tt", "Short Vowels: a, i",
                       "Consonant Blends: bl, cl, fl", "Long Vowels: Silent e",
                       "Vowel Teams: ai, ay", "Prefixes and Suffixes, Part 2")),
    "HFW": ("High-Frequency Words", ("High-Frequency Words: the, and, is",
                                     "High-Frequency Words: said, was, you",
                                     "High-Frequency Words: there, their, where")),
    "VOC": ("Vocabulary", ("Context Clues: Definitions, Examples",
                           "Word Relationships: Synonyms, Antonyms",
                           "Greek and Latin Roots, Part 1", "Multiple-Meaning Words",
                           "Figurative Language: Similes, Metaphors")),
    "COMP": ("Comprehension", ("Main Idea and Details", "Character, Setting, and Events",
                               "Text Structure: Cause, Effect", "Author's Purpose, Part 1",
                               "Theme in Literature", "Comparing Texts: Fiction, Nonfiction")),
    "CR": ("Comprehension: Close Reading", ("Close Reading: Analyzing Arguments",
                                            "Close Reading: Point of View, Part 2",
                                            "Close Reading: Evaluating Evidence")),
}
_DOMAINS_BY_GRADE = {
    0: ("PA", "PH", "HFW", "VOC", "COMP"), 1: ("PA", "PH", "HFW", "VOC", "COMP"),
    2: ("PH", "HFW", "VOC", "COMP"), 3: ("PH", "VOC", "COMP"),
}
_LEVELS = ("Early", "Mid", "Late")
_LEVEL_CODE = {"Emerging": 0, "Early": 1, "Mid": 2, "Late": 3, "Extra": 9}


def lesson_file(w: World, rng: np.random.Generator) -> tuple[bytes, dict[str, int]]:
    """Personalized Instruction by Lesson (ELA): one row per completed lesson."""
    fall = w.truth["_fall"]["ela"]
    ghost_info: dict[int, tuple[str, str, int, int]] = {}
    rows: list[list[str]] = []
    n_days = len(w.lessons)
    per_day = 1 + rng.poisson(0.15, n_days)
    u_day = rng.random(n_days)
    u_all = rng.random((int(per_day.sum()), 6))
    z_score = ndtri(np.clip(u_all[:, 3], 1e-9, 1 - 1e-9))
    z_time = ndtri(np.clip(u_all[:, 4], 1e-9, 1 - 1e-9))
    score_all = np.clip(np.rint(78 + 15 * z_score), 0, 100).astype(int).tolist()
    minutes_all = np.maximum(1, np.rint(13 * np.exp(0.45 * z_time))).astype(int).tolist()
    u_rows = u_all.tolist()
    time_outliers = 0
    pos = 0
    for k, (i, d) in enumerate(w.lessons):
        if i >= 0:
            g = w.grade_on(i, d)
            sch = w.school_on(i, d)
            lg = _level_number(placement("ela", int(fall[i]), max(int(w.gnum[i]), 0))[0])
            lg = max(0, int(w.gnum[i]) - 2) if lg is None else min(lg, 8)
            last, first = w.last[i].strip(), w.first[i]
            user = w.email[i].lower()
            enrolled = "Unenrolled" if w.leave[i] is not None else "Enrolled"
            demo = _demographic_cells(w, i, "ela", "Y" if w.elas[i] == "EL" else "N")
            el = w.elas[i] == "EL"
        else:
            if i not in ghost_info:
                gi = -1 - i
                ghost_info[i] = (LAST_NAMES[(7 * gi + 3) % len(LAST_NAMES)],
                                 FIRST_NAMES[(11 * gi + 5) % len(FIRST_NAMES)], 1 + gi % 8,
                                 gi % 4)
            last, first, g, sch = ghost_info[i]
            lg = max(0, g - 1)
            user = f"{ascii_fold(first)[0]}{ascii_fold(last)}{stripped_id(w, i)}@{EMAIL_DOMAIN}"
            user = user.lower()
            enrolled = "Unenrolled"
            demo = [""] * 10
            el = False
        # Students move up a lesson grade during the year.
        if d >= date(2025, 2, 1) and u_day[k] < 0.3:
            lg = min(8, lg + 1)
        doms = _DOMAINS_BY_GRADE.get(lg, ("VOC", "COMP", "CR"))
        for j in range(int(per_day[k])):
            u = u_rows[pos]
            score = score_all[pos]
            minutes = minutes_all[pos]
            pos += 1
            dom = doms[int(u[0] * len(doms))]
            dom_name, topics = _LESSON_TOPICS[dom]
            t = int(u[1] * len(topics))
            topic = topics[t]
            lvl = "Extra" if u[2] < 0.05 else _LEVELS[(t + j) % 3]
            if lg == 0 and dom in ("PA", "PH") and t == 0:
                lvl = "Emerging"
            lesson_id = f"DI.ELA.{dom}.{grade_label(lg)}.{1000 + 10 * t + _LEVEL_CODE[lvl]}"
            objective = f"Practice {topic.lower()}."
            if u[2] > 0.995:
                minutes = 121 + int(u[3] * 215)
                time_outliers += 1
            spanish = el and u[5] < 0.04
            rows.append([
                last, first, stripped_id(w, i), grade_label(g), ACADEMIC_YEAR,
                SCHOOLS[sch].name, "Reading", enrolled, user, *demo, dom_name, grade_label(lg),
                lvl, lesson_id, topic, objective, "Spanish" if spanish else "English",
                mdy(d, pad=True), str(minutes), str(score),
                "Passed" if score >= 70 else "Not Passed",
                "Y" if u[5] > (0.88 if el else 0.95) else "N",
            ])
    # About 0.1% exact duplicate rows, each right after its original.
    n_dup = max(1, int(round(0.001 * len(rows))))
    dup_at = sorted(rng.choice(len(rows), size=n_dup, replace=False).tolist(), reverse=True)
    for k in dup_at:
        rows.insert(k + 1, list(rows[k]))
    ghost_ids = {stripped_id(w, i) for i in ghost_info}
    quirks = {
        "rows": len(rows),
        "exact_duplicate_rows": n_dup,
        "time_outliers_over_120_min": time_outliers,
        # counted after the duplicates were planted (a duplicate may repeat a ghost's row)
        "rows_for_ids_not_in_roster": sum(1 for r in rows if r[2] in ghost_ids),
        "ids_not_in_roster": len(ghost_info),
    }
    return csv_bytes(LESSON_HEADER, rows), quirks


# --- Lexia -----------------------------------------------------------------------------------


def lexia_file(w: World, rng: np.random.Generator) -> tuple[bytes, dict[str, int]]:
    """Lexia Core5 activity log: one row per activity, UTC timestamps."""
    events = sorted(w.lexia, key=lambda e: (e["start_utc"], e["who"]))
    who_rows: dict[int, int] = {}
    for e in events:
        who_rows[e["who"]] = who_rows.get(e["who"], 0) + 1
    # A few deactivated accounts lose their SIS reference: ~0.5% of rows have a blank ID.
    roster_users = sorted(k for k in who_rows if k >= 0)
    blank: set[int] = set()
    target = max(1, int(round(0.005 * len(events))))
    for k in rng.permutation(len(roster_users)):
        if sum(who_rows[b] for b in blank) >= target:
            break
        blank.add(roster_users[int(k)])
    lexia_ids = {who: 30_000_000 + int(v) for who, v in zip(
        sorted(who_rows), rng.choice(9_000_000, size=len(who_rows), replace=False), strict=True)}
    today: dict[tuple[int, date], int] = {}
    week: dict[tuple[int, date], int] = {}
    rows = []
    for e in events:
        who = e["who"]
        local_day = e["local"].date()
        wk = local_day - timedelta(days=local_day.weekday())
        today[(who, local_day)] = today.get((who, local_day), 0) + e["minutes"]
        week[(who, wk)] = week.get((who, wk), 0) + e["minutes"]
        if who >= 0:
            first, last, email = w.first[who], w.last[who].strip(), w.email[who]
            g = int(w.gnum[who])
            sch = SCHOOLS[w.school_on(who, local_day)].name
            ref = "" if who in blank else padded_id(w, who)
        else:
            gi = -1 - who
            last = LAST_NAMES[(5 * gi + 1) % len(LAST_NAMES)]
            first = FIRST_NAMES[(3 * gi + 2) % len(FIRST_NAMES)]
            email = f"{ascii_fold(first)[0]}{ascii_fold(last)}{stripped_id(w, who)}@{EMAIL_DOMAIN}"
            email = email.lower()
            g = 2 + gi % 3
            sch = SCHOOLS[gi % 4].name
            ref = padded_id(w, who)
        target_min = 40 if g <= 1 else (60 if g <= 3 else 80)
        rows.append([
            str(lexia_ids[who]), email, first, last,
            "TK" if g < 0 else grade_label(g), sch, str(e["activity_id"]), e["activity"],
            e["start_utc"].strftime("%Y-%m-%d %H:%M:%S"),
            e["end_utc"].strftime("%Y-%m-%d %H:%M:%S"), str(e["minutes"]),
            str(today[(who, local_day)]), str(week[(who, wk)]), str(target_min),
            "Yes" if week[(who, wk)] >= target_min else "No", ref,
        ])
    ghost_rows = sum(n for k, n in who_rows.items() if k < 0)
    quirks = {
        "rows": len(rows),
        "rows_blank_student_id": sum(who_rows[b] for b in blank),
        "rows_for_ids_not_in_roster": ghost_rows,
        "ids_not_in_roster": sum(1 for k in who_rows if k < 0),
        "rows_crossing_midnight_utc": w.quirks["lexia_rows_crossing_midnight_utc"],
    }
    return csv_bytes(LEXIA_HEADER, rows), quirks


# --- VendorX ---------------------------------------------------------------------------------


def _program_time(minutes: int) -> str:
    h, m = divmod(minutes, 60)
    return f'="{h}h {m}m"' if h else f'=" {m}m"'


def _excel_serial(d: date) -> str:
    return str((d - date(1899, 12, 30)).days)


def vendorx_file(w: World, rng: np.random.Generator) -> tuple[bytes, dict[str, int]]:
    """VendorX Literacy monthly wide summary (Achieve3000 style)."""
    rows = []
    serial = 0
    for who, monthly in w.vendorx:
        if who >= 0:
            sch = SCHOOLS[int(w.school[who])].name
            name = f"{w.last[who].strip()}, {w.first[who]}"
            g = int(w.gnum[who])
            sid = padded_id(w, who)
        else:
            gi = -1 - who
            sch = SCHOOLS[MIDDLE_INDEX].name
            name = f"{LAST_NAMES[(13 * gi + 7) % len(LAST_NAMES)]}, " \
                   f"{FIRST_NAMES[(17 * gi + 1) % len(FIRST_NAMES)]}"
            g = 7
            sid = padded_id(w, who)
        total = sum(monthly)
        active_months = [k for k, v in enumerate(monthly) if v > 0]
        logins = total + int(rng.poisson(0.3 * len(active_months))) if total else 0
        minutes = int(sum(int(rng.integers(8, 17)) * v for v in monthly))
        if active_months:
            y, m = VENDORX_MONTHS[active_months[0]]
            first = date(y, m, 2 + int(rng.integers(0, 20)))
            y, m = VENDORX_MONTHS[active_months[-1]]
            last = date(y, m, 2 + int(rng.integers(0, 20)))
            if rng.random() < 0.12:
                last_txt = _excel_serial(last)
                serial += 1
            else:
                last_txt = last.isoformat()
            first_txt = first.isoformat()
        else:
            first_txt = last_txt = ""
        rows.append([DISTRICT, sch, sid, name, f"{g:02d}", str(logins), first_txt, last_txt,
                     _program_time(minutes)] + [str(v) for v in monthly])
    rows.sort(key=lambda r: (r[1], r[3], r[2]))
    quirks = {
        "rows": len(rows),
        "licensed_students": sum(1 for who, _ in w.vendorx if who >= 0),
        "students_with_any_activity": sum(1 for who, m in w.vendorx if who >= 0 and sum(m)),
        "last_login_excel_serial_rows": serial,
        "rows_for_ids_not_in_roster": sum(1 for who, _ in w.vendorx if who < 0),
    }
    return csv_bytes(VENDORX_HEADER, rows), quirks


MIDDLE_INDEX = 4
