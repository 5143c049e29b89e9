"""Probability that a product helped: a closed-form normal-normal posterior.

The RCE Coach fits a Bayesian linear model in Stan and reports P(effect > meaningful) against a
75% certainty threshold, with a three-region ("ROPE") view (``methods.md`` §1.7). With a normal
likelihood for the estimated effect (estimate b, standard error se) and a normal prior, the
posterior is normal in closed form, so ``rce`` needs no sampler:

    precision = 1/τ₀² + 1/se²,  mean = (μ₀/τ₀² + b/se²) / precision.

A flat prior (τ₀ → ∞) gives mean b and sd se. Effects are on the effect-size scale (SD units of the
outcome) so that priors and the plan's ``meaningful_effect`` (Hedges' g) share one scale.

What it cannot show: the posterior is only as good as the estimate it is built on (a matched
comparison's selection bias passes straight through), and it treats se as known.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from rce.errors import DataError
from rce.stats import _dist
from rce.stats._impact_common import fmt, json_safe, pct

#: Weakly-informative prior on the effect size: N(0, 0.5²). Almost all education effects on
#: standardized achievement lie within ±1 SD (Kraft 2020: median RCT effect ≈ 0.10 SD), so this
#: prior barely moves any estimate with se below ~0.2 while ruling out absurd effects.
WEAKLY_INFORMATIVE_SD = 0.5
#: Sceptical prior: N(0, 0.1²) -- a priori an effect beyond ±0.2 SD is a 1-in-40 event.
SCEPTICAL_SD = 0.1


@dataclass(frozen=True)
class Prior:
    """A normal prior N(mean, sd²) on the effect size; sd = inf is the flat prior."""

    name: str
    mean: float
    sd: float
    description: str

    @classmethod
    def weakly_informative(cls) -> Prior:
        """N(0, 0.5²) on the effect-size scale (the default)."""
        return cls("weakly informative", 0.0, WEAKLY_INFORMATIVE_SD,
                   f"Normal(0, {WEAKLY_INFORMATIVE_SD}²) on the effect size (SD units)")

    @classmethod
    def flat(cls) -> Prior:
        """Improper flat prior: the posterior equals the likelihood."""
        return cls("flat", 0.0, math.inf, "flat (improper uniform) prior")

    @classmethod
    def sceptical(cls) -> Prior:
        """N(0, 0.1²): shrinks toward no effect."""
        return cls("sceptical", 0.0, SCEPTICAL_SD,
                   f"Normal(0, {SCEPTICAL_SD}²) on the effect size (SD units)")


@dataclass(frozen=True)
class Posterior:
    """A normal posterior for one effect, with the decision-relevant probabilities."""

    prior: Prior
    estimate: float
    se: float
    mean: float
    sd: float
    meaningful: float
    prob_positive: float
    prob_worse: float  # P(effect < -meaningful)
    prob_no_change: float  # P(|effect| ≤ meaningful)
    prob_better: float  # P(effect > meaningful)
    credible_level: float
    ci_low: float
    ci_high: float

    def prob_above(self, c: float) -> float:
        """P(effect > c)."""
        return _sf(c, self.mean, self.sd)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict (NaN/inf -> None)."""
        d = self.__dict__.copy()
        d["prior"] = {"name": self.prior.name, "mean": self.prior.mean,
                      "sd": self.prior.sd, "description": self.prior.description}
        return json_safe(d)

    def summary(self) -> str:
        """Readable text."""
        return (
            f"Posterior ({self.prior.name} prior): mean {fmt(self.mean)}, sd {fmt(self.sd)}; "
            f"{pct(self.credible_level)} credible interval [{fmt(self.ci_low)}, "
            f"{fmt(self.ci_high)}]; P(effect > 0) = {pct(self.prob_positive, 1)}; "
            f"P(meaningfully better, > {fmt(self.meaningful, 2)}) = {pct(self.prob_better, 1)}."
        )


def _sf(c: float, mean: float, sd: float) -> float:
    if sd == 0:
        return float(mean > c)
    return float(_dist.norm_sf(c, loc=mean, scale=sd))


def normal_posterior(
    estimate: float,
    se: float,
    *,
    prior: Prior | None = None,
    meaningful: float = 0.0,
    credible_level: float = 0.95,
) -> Posterior:
    """Normal-normal posterior for an effect given its estimate and standard error.

    Parameters
    ----------
    estimate, se
        The estimated effect and its standard error (same scale as the prior and ``meaningful``).
    prior
        Defaults to :meth:`Prior.weakly_informative`.
    meaningful
        Smallest effect that matters (≥ 0); defines the three regions below -c, within ±c and
        above c (with c = 0 the middle region is empty).
    credible_level
        Width of the central credible interval.

    Examples
    --------
    >>> p = normal_posterior(0.15, 0.10, prior=Prior("x", 0.0, 0.2, ""))
    >>> round(p.mean, 4), round(p.sd, 4), round(p.prob_positive, 4)
    (0.12, 0.0894, 0.9101)
    """
    prior = prior or Prior.weakly_informative()
    if not (math.isfinite(estimate) and math.isfinite(se)) or se <= 0:
        raise DataError(
            "the posterior needs a finite estimate and a positive standard error",
            where="impact estimate",
            hint="Too few students or no variation in the outcome.",
        )
    if meaningful < 0:
        raise DataError("the meaningful effect must be zero or positive",
                        where="decision.meaningful_effect", hint=None)
    if math.isinf(prior.sd):
        mean, sd = float(estimate), float(se)
    else:
        prec = 1.0 / prior.sd**2 + 1.0 / se**2
        mean = (prior.mean / prior.sd**2 + estimate / se**2) / prec
        sd = math.sqrt(1.0 / prec)
    z = float(_dist.norm_ppf(0.5 + credible_level / 2))
    worse = float(_dist.norm_cdf(-meaningful, loc=mean, scale=sd))
    better = _sf(meaningful, mean, sd)
    return Posterior(
        prior=prior,
        estimate=float(estimate),
        se=float(se),
        mean=mean,
        sd=sd,
        meaningful=float(meaningful),
        prob_positive=_sf(0.0, mean, sd),
        prob_worse=worse,
        prob_no_change=max(0.0, 1.0 - worse - better),
        prob_better=better,
        credible_level=credible_level,
        ci_low=mean - z * sd,
        ci_high=mean + z * sd,
    )


@dataclass(frozen=True)
class Decision:
    """The pre-registered decision rule applied to P(effect > meaningful)."""

    verdict: str  # "pass" | "fail" | "inconclusive"
    probability: float
    meaningful: float
    pass_probability: float
    fail_probability: float
    rule: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict."""
        return json_safe(self.__dict__.copy())


def apply_decision(
    posterior: Posterior, *, pass_probability: float, fail_probability: float
) -> Decision:
    """Pass when P(effect > meaningful) ≥ pass_probability; fail when it is ≤ fail_probability;
    otherwise inconclusive (the RCE Coach defaults are 75% / 50%; ``rce.config.DecisionConfig``)."""
    if not (0 <= fail_probability < pass_probability <= 1):
        raise DataError(
            "decision probabilities must satisfy 0 ≤ fail < pass ≤ 1",
            where="decision.pass_probability / decision.fail_probability",
            hint="The defaults are pass 0.75 and fail 0.50.",
        )
    p = posterior.prob_better
    verdict = "pass" if p >= pass_probability else ("fail" if p <= fail_probability else
                                                    "inconclusive")
    rule = (
        f"pass if P(effect > {posterior.meaningful:g} SD) ≥ {pass_probability:.0%}; fail if it "
        f"is ≤ {fail_probability:.0%}; otherwise inconclusive (fixed in the plan before analysis)"
    )
    return Decision(verdict, p, posterior.meaningful, pass_probability, fail_probability, rule)


@dataclass(frozen=True)
class BayesResult:
    """Main posterior (weakly-informative prior), sensitivity rows and the decision."""

    main: Posterior
    sensitivity: tuple[Posterior, ...]
    decision: Decision
    notes: tuple[str, ...] = ()

    def to_frame(self) -> pd.DataFrame:
        """One row per prior: mean, sd, interval and the three-region probabilities."""
        rows = []
        for p in (self.main, *self.sensitivity):
            rows.append(
                {
                    "prior": p.prior.name,
                    "prior_sd": p.prior.sd,
                    "mean": p.mean,
                    "sd": p.sd,
                    "ci_low": p.ci_low,
                    "ci_high": p.ci_high,
                    "prob_positive": p.prob_positive,
                    "prob_worse": p.prob_worse,
                    "prob_no_change": p.prob_no_change,
                    "prob_better": p.prob_better,
                }
            )
        return pd.DataFrame(rows)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict."""
        return json_safe(
            {
                "main": self.main.to_dict(),
                "sensitivity": [p.to_dict() for p in self.sensitivity],
                "decision": self.decision.to_dict(),
                "three_region": {
                    "meaningfully_worse": self.main.prob_worse,
                    "no_meaningful_change": self.main.prob_no_change,
                    "meaningfully_better": self.main.prob_better,
                },
                "notes": list(self.notes),
            }
        )

    def summary(self) -> str:
        """Readable text."""
        lines = [self.main.summary(), f"Decision: {self.decision.verdict} ({self.decision.rule})."]
        for p in self.sensitivity:
            lines.append(f"  sensitivity, {p.prior.name} prior: P(> {fmt(p.meaningful, 2)}) = "
                         f"{pct(p.prob_better, 1)}, P(> 0) = {pct(p.prob_positive, 1)}")
        return "\n".join(lines)


def effect_probabilities(
    estimate: float,
    se: float,
    *,
    meaningful: float,
    pass_probability: float,
    fail_probability: float,
    credible_level: float = 0.95,
) -> BayesResult:
    """Weakly-informative posterior with flat and sceptical sensitivity rows and the decision.

    Parameters are on the effect-size scale (SD units); pass the plan's
    ``decision.meaningful_effect``, ``pass_probability`` and ``fail_probability``.
    """
    kw = {"meaningful": meaningful, "credible_level": credible_level}
    main = normal_posterior(estimate, se, prior=Prior.weakly_informative(), **kw)
    sens = (
        normal_posterior(estimate, se, prior=Prior.flat(), **kw),
        normal_posterior(estimate, se, prior=Prior.sceptical(), **kw),
    )
    decision = apply_decision(main, pass_probability=pass_probability,
                              fail_probability=fail_probability)
    notes = (
        "Normal-normal posterior on the effect size, treating the standard error as known; "
        "the probability inherits any bias of the design (selection on unobservables in a "
        "matched comparison).",
        f"Main prior: {main.prior.description}; sensitivity: flat and {sens[1].prior.description}.",
    )
    return BayesResult(main=main, sensitivity=sens, decision=decision, notes=notes)


def complete_pooling(
    estimates: Sequence[float], ses: Sequence[float], *, credible_level: float = 0.95
) -> Posterior:
    """Complete-pooling posterior of a common effect under a flat prior (BDA3 §5.5).

    The precision-weighted mean Σ(y/σ²)/Σ(1/σ²) with variance 1/Σ(1/σ²).

    Examples
    --------
    >>> p = complete_pooling([28, 8, -3, 7, -1, 1, 18, 12], [15, 10, 16, 11, 9, 11, 10, 18])
    >>> round(p.mean, 3), round(p.sd**2, 2)
    (7.686, 16.58)
    """
    y = np.asarray(estimates, dtype=float)
    s = np.asarray(ses, dtype=float)
    if y.shape != s.shape or y.size == 0 or np.any(s <= 0) or not np.all(np.isfinite(y)):
        raise DataError(
            "pooling needs matching lists of finite estimates and positive standard errors",
            where="complete pooling",
            hint=None,
        )
    w = 1.0 / s**2
    mean = float((w * y).sum() / w.sum())
    se = float(math.sqrt(1.0 / w.sum()))
    return normal_posterior(mean, se, prior=Prior.flat(), credible_level=credible_level)
