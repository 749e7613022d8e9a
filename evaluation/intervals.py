"""When a bootstrap interval exists, and what a report prints when it does not (DESIGN.md §6).

A percentile bootstrap resamples the members of each stratum (objects within a category,
identities of a split) with replacement. With one member a stratum resamples to itself and
the interval collapses to a point; with two, the resampled mean takes three values. Such
"intervals" say nothing about sampling error, and reading them as separating two conditions
is wrong. So an interval exists only when **every resampled stratum has at least
``MIN_PER_STRATUM`` members**. Where it does not, the report stores NaN bounds and prints
``N_TOO_SMALL``, and no verdict (separated, regressed, improved) is drawn from it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

MIN_PER_STRATUM = 3  # members per resampled stratum for an interval to exist
N_TOO_SMALL = "n too small"


def interval_exists(stratum_sizes: Iterable[int], minimum: int = MIN_PER_STRATUM) -> bool:
    """True when there is at least one stratum and every one has >= ``minimum`` members."""
    sizes = list(stratum_sizes)
    return bool(sizes) and min(sizes) >= minimum


def has_interval(ci_low: float, ci_high: float) -> bool:
    """True when both bounds are finite (an interval that exists)."""
    return math.isfinite(ci_low) and math.isfinite(ci_high)


def format_interval(ci_low: float, ci_high: float, digits: int = 3) -> str:
    """ "[lo, hi]" with ``digits`` decimals, or "[n too small]" when the interval does not exist."""
    if not has_interval(ci_low, ci_high):
        return f"[{N_TOO_SMALL}]"
    return f"[{ci_low:.{digits}f}, {ci_high:.{digits}f}]"


def excludes(ci_low: float, ci_high: float, value: float = 0.0) -> str:
    """'yes' when the interval excludes ``value``, 'no' when it contains it, ``N_TOO_SMALL``
    when the interval does not exist (NaN bounds)."""
    if not has_interval(ci_low, ci_high):
        return N_TOO_SMALL
    return "yes" if ci_low > value or ci_high < value else "no"
