"""Statistical forecasts and anomalies over a regular series: statsmodels' ETS and STL, for trend_forecast.

Forecasts are exponential smoothing state-space models (statsmodels' ETSModel, additive errors),
the candidate of lowest AICc (as statsmodels counts it: the smoothing parameters) among:
- fewer than MIN_PERIODS values: none (ForecastError says why);
- fewer than TREND_PERIODS: a level only (simple exponential smoothing): too few points for a trend;
- otherwise: no trend, a straight-line trend or a damped trend, and once there are two full seasons
  (24 months, 104 weeks; statsmodels' heuristic start needs them) each of them with seasonality too.
A series whose values are all positive is modelled on its logarithm: sales grow by percentages and
their seasons multiply, so on the log scale trend and season add up and the error is a percentage
(an ETS(M,*,M)-like model with exact bands). The point forecast is then the median, and the bands
come back from the log scale as they are (quantiles survive a monotone map): asymmetric.

Honest bands: the model's forecast variance, with the error variance estimated on n - k degrees
of freedom, where k counts the smoothing parameters and the starting level, trend and seasonal
values (statsmodels' heuristic start takes those from the data too), and Student-t quantiles. On
generated series the 95 % band covers about 95 % of fresh values (tests/reports/test_trend_forecast.py);
without the correction, about 88 %.

Anomalies, days: a robust STL decomposition (Loess with robust weights, so outliers barely move the
fit; log scale when all values are positive); a day is an anomaly when its remainder is more than
ANOMALY_Z robust standard deviations (1.4826 x median absolute deviation) from zero, the spread
measured per weekday (a quiet Sunday swings more in percent than a busy Saturday). Weeks: STL with
a yearly season needs more than three years to leave any noise in the remainder, so a week is an
anomaly when it falls outside the WEEK_BAND prediction band of the model fitted to the weeks before
(`outside_band`).
"""

from __future__ import annotations

import importlib
import math
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

MIN_PERIODS = 6
# statsmodels' heuristic start values need 10 points; with fewer the model is a level only.
TREND_PERIODS = 10
# Season length by the series' grain (a week of days, a year of weeks or months).
SEASONS = {"day": 7, "week": 52, "month": 12}
SEASON_WORDS = {7: "weekly", 12: "yearly", 52: "yearly"}
# How far (in robust standard deviations of the remainder) an anomaly lies from its expected value.
# Chosen on generated series and the demo data: with 5 % daily noise a day 40 % off (7 to 10
# sigmas) is found, with about 0.2 false alarms a year; in the demo data (100k and 1M lines) only
# the days the shops were closed (25-26 Dec, 1 Jan) stand out.
ANOMALY_Z = 4.0
ROBUST_SIGMA = 1.4826  # MAD x this = the standard deviation of a normal distribution
# STL's smoothing windows by season length. For days, STL's defaults (a weekday pattern re-estimated
# every 7 weeks, a 15-day trend) follow the noise so closely that the remainder understates it; a
# weekday pattern that drifts over 31 weeks and a 29-day trend leave the noise in the remainder.
STL_WINDOWS: dict[int, dict[str, int]] = {7: {"seasonal": 31, "trend": 29}}
# The band a week must fall outside to be an anomaly: at 95 %, one ordinary week in 20 would be one.
WEEK_BAND = 0.99
# Values a position in the season (a weekday) needs for a spread of its own.
MIN_POSITION_VALUES = 8
# Fewer points than this and no anomaly is looked for (STL needs two seasons; Loess some points).
MIN_ANOMALY_POINTS = 8

Trend = Literal["none", "additive", "damped"]


class ForecastError(ValueError):
    """The series cannot be forecast (or searched for anomalies); the message says why, for people."""


@dataclass(frozen=True)
class ModelSpec:
    """One ETS model: its trend, whether it is seasonal, whether it models the logarithm."""

    trend: Trend
    seasonal: bool
    log: bool

    @property
    def code(self) -> str:
        """The model in ETS notation (error, trend, season), e.g. 'ETS(A,Ad,A)'."""
        trend = {"none": "N", "additive": "A", "damped": "Ad"}[self.trend]
        return f"ETS(A,{trend},{'A' if self.seasonal else 'N'})"

    def words(self, season: int) -> str:
        """'Damped trend with yearly seasonality', 'Level only (no trend, no seasonality)', ..."""
        trend = {"none": "No trend", "additive": "Straight-line trend", "damped": "Damped trend"}[self.trend]
        if self.seasonal:
            return f"{trend} with {SEASON_WORDS.get(season, f'{season}-period')} seasonality"
        if self.trend == "none":
            return "Level only (no trend, no seasonality)"
        return f"{trend}, no seasonality"


@dataclass(frozen=True)
class Forecast:
    """The next values (the median forecast) and their prediction intervals at any level, and the model.

    On the modelled scale (the logarithm for a `log` model) each value is Student-t distributed
    around `center` with scale `spread` and `df` degrees of freedom; `interval` maps a band back.
    """

    spec: ModelSpec
    reason: str  # why this model, in words
    center: tuple[float, ...]
    spread: tuple[float, ...]
    df: int

    @property
    def mean(self) -> tuple[float, ...]:
        return self._back(self.center)

    def interval(self, level: float) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """The lower and upper bounds of the central `level` (0.8 = 80 %) prediction interval."""
        from scipy.stats import t as student

        q = float(student.ppf(0.5 + level / 2, self.df)) if self.df > 0 else 0.0
        low = [c - q * s for c, s in zip(self.center, self.spread, strict=True)]
        high = [c + q * s for c, s in zip(self.center, self.spread, strict=True)]
        return self._back(low), self._back(high)

    def _back(self, values: Sequence[float]) -> tuple[float, ...]:
        return tuple(math.exp(v) if self.spec.log else float(v) for v in values)

    @property
    def lower_80(self) -> tuple[float, ...]:
        return self.interval(0.8)[0]

    @property
    def upper_80(self) -> tuple[float, ...]:
        return self.interval(0.8)[1]

    @property
    def lower_95(self) -> tuple[float, ...]:
        return self.interval(0.95)[0]

    @property
    def upper_95(self) -> tuple[float, ...]:
        return self.interval(0.95)[1]


@dataclass(frozen=True)
class Backtest:
    """The last `horizon` values held out: the model refitted on the rest against a naive forecast."""

    actual: tuple[float, ...]
    forecast: tuple[float, ...]
    naive: tuple[float, ...]
    naive_kind: str  # "seasonal naive (same period a season before)" or "naive (last value)"
    mape: float | None
    naive_mape: float | None
    spec: ModelSpec


@dataclass(frozen=True)
class Anomaly:
    """Value `index` of the series lies outside its expected range."""

    index: int
    actual: float
    expected: float
    deviation_pct: float | None  # (actual - expected) / |expected|; None when expected is 0
    direction: Literal["above", "below"]


def preload() -> None:
    """Import statsmodels, scipy and threadpoolctl now (2-3 s on a busy machine), e.g. in a background
    thread when the app starts, so the first forecast a page shows does not pay for it."""
    for module in (
        "scipy.stats",
        "statsmodels.nonparametric.smoothers_lowess",
        "statsmodels.tsa.exponential_smoothing.ets",
        "statsmodels.tsa.seasonal",
        "threadpoolctl",
    ):
        importlib.import_module(module)


@contextmanager
def _quiet() -> Iterator[None]:
    """Fit without warnings and with one BLAS thread.

    statsmodels warns about convergence and bounds while it searches; the AICc comparison and the
    finite-value checks decide instead (and pytest turns warnings into errors). The optimiser calls
    BLAS on tiny vectors: OpenBLAS's threads only wait for each other there, and on a busy machine
    a fit took five times as long with them (1M demo lines: 2.6 s against 0.5 s).
    """
    from threadpoolctl import threadpool_limits

    with warnings.catch_warnings(), np.errstate(all="ignore"), threadpool_limits(limits=1, user_api="blas"):
        warnings.simplefilter("ignore")
        yield


def candidates(n: int, season: int, *, positive: bool) -> list[ModelSpec]:
    """The models tried for `n` values: more history, more structure (see the module docstring)."""
    if n < TREND_PERIODS:
        return [ModelSpec("none", False, positive)]
    trends: tuple[Trend, ...] = ("none", "additive", "damped")
    specs = [ModelSpec(t, False, positive) for t in trends]
    if season > 1 and n >= 2 * season:
        specs += [ModelSpec(t, True, positive) for t in trends]
    return specs


def _check(values: Sequence[float], unit: str) -> np.ndarray:
    y = np.asarray(values, dtype=float)
    if len(y) < MIN_PERIODS:
        have = f"{len(y)} {unit}{'' if len(y) == 1 else 's'}" if len(y) else f"no complete {unit}"
        raise ForecastError(
            f"Too little history to forecast: {have} of data up to the end of the period, and a "
            f"forecast needs at least {MIN_PERIODS}."
        )
    if not np.all(np.isfinite(y)):
        raise ForecastError("The history holds values that are not numbers; nothing was forecast.")
    if np.all(y == 0):
        raise ForecastError(
            f"Every {unit} up to the end of the period is zero: there is nothing to forecast."
        )
    return y


def _fit(z: np.ndarray, spec: ModelSpec, season: int) -> object:
    from statsmodels.tsa.exponential_smoothing.ets import ETSModel

    model = ETSModel(
        pd.Series(z),  # a Series: statsmodels 0.15's get_prediction fails on a bare ndarray
        error="add",
        trend=None if spec.trend == "none" else "add",
        damped_trend=spec.trend == "damped",
        seasonal="add" if spec.seasonal else None,
        seasonal_periods=season if spec.seasonal else None,
        initialization_method="heuristic" if len(z) >= TREND_PERIODS else "estimated",
    )
    return model.fit(disp=False)


def estimated(spec: ModelSpec, season: int) -> int:
    """What the model estimates from the data: its smoothing (and damping) parameters and its
    starting level, trend and seasonal values (statsmodels' heuristic start takes those from the
    first seasons without counting them; they are estimates all the same)."""
    trend = spec.trend != "none"
    params = 1 + trend + (spec.trend == "damped") + spec.seasonal
    states = 1 + trend + (season if spec.seasonal else 0)
    return params + states


def forecast(values: Sequence[float], season: int, horizon: int, unit: str = "period") -> Forecast:
    """Forecast the `horizon` values after `values` (one per period, oldest first) with the ETS model
    of lowest AICc among `candidates`; ForecastError when the history is too short or all zero.

    The bands: the model's forecast variance with the error variance estimated on n - k degrees of
    freedom (k = `estimated`: parameters and starting values), and Student's t quantiles, so a
    model fitted to little history says so with wider bands.
    """
    y = _check(values, unit)
    if horizon < 1:
        raise ValueError("horizon must be at least 1")
    positive = bool(np.all(y > 0))
    z = np.log(y) if positive else y
    if np.ptp(z) == 0:  # every period the same: no model has anything to estimate
        spec = ModelSpec("none", False, False)
        reason = f"Every {unit} of the history has the same value, so the forecast repeats it."
        return Forecast(spec, reason, (float(y[-1]),) * horizon, (0.0,) * horizon, 0)
    n = len(z)
    specs = candidates(n, season, positive=positive)
    fits: list[tuple[float, int, ModelSpec, Any]] = []
    with _quiet():
        for order, spec in enumerate(specs):
            if n - estimated(spec, season) < 2:
                continue
            try:
                result: Any = _fit(z, spec, season)
            except (ValueError, np.linalg.LinAlgError):
                continue
            score = float(result.aicc)
            if math.isfinite(score) and math.isfinite(float(result.mse)):
                fits.append((score, order, spec, result))
    if not fits:
        raise ForecastError("No forecasting model could be fitted to this history.")
    _, _, spec, result = min(fits, key=lambda f: (f[0], f[1]))
    df = n - estimated(spec, season)
    with _quiet():
        prediction = result.get_prediction(start=n, end=n + horizon - 1)
        center = np.asarray(prediction.predicted_mean, dtype=float)
        spread = np.sqrt(np.asarray(prediction.forecast_variance, dtype=float) * n / df)
    return Forecast(
        spec,
        _reason(spec, specs, n, season, unit),
        tuple(float(v) for v in center),
        tuple(float(v) for v in spread),
        df,
    )


def _reason(spec: ModelSpec, specs: Sequence[ModelSpec], n: int, season: int, unit: str) -> str:
    """Why this model, in words: what was tried for this much history and what decided."""
    history = f"{n} {unit}s of history"
    scale = " on the logarithm of the values (growth and seasons in percent)" if spec.log else ""
    if len(specs) == 1:
        why = f"{history} is too little to estimate a trend (that needs {TREND_PERIODS})"
    else:
        why = f"it had the lowest AICc of the {len(specs)} models tried on {history}"
        if not any(s.seasonal for s in specs):
            why += f" (seasonality needs two full seasons: {2 * season} {unit}s)"
    return f"{spec.words(season)}, {spec.code}{scale}: {why}."


def seasonal_naive(values: Sequence[float], season: int, horizon: int) -> tuple[tuple[float, ...], str]:
    """The benchmark forecast: each period as the same period a season before (with a full season of
    history), else the last value; and its name."""
    y = list(values)
    if season > 1 and len(y) >= season:
        return (
            tuple(float(y[len(y) - season + i % season]) for i in range(horizon)),
            "seasonal naive (the same period a season before)",
        )
    return tuple(float(y[-1]) for _ in range(horizon)), "naive (the last period repeated)"


def mape(actual: Sequence[float], predicted: Sequence[float]) -> float | None:
    """Mean of |actual - predicted| / |actual| over the periods whose actual is not 0 (None: none)."""
    errors = [abs(a - p) / abs(a) for a, p in zip(actual, predicted, strict=True) if a != 0]
    return sum(errors) / len(errors) if errors else None


def backtest(values: Sequence[float], season: int, horizon: int, unit: str = "period") -> Backtest:
    """Hold out the last `horizon` values, forecast them from the rest (model chosen afresh, as
    `forecast` would) and with the seasonal-naive benchmark; both MAPEs. ForecastError when the
    rest is too short to forecast."""
    y = [float(v) for v in values]
    if len(y) - horizon < MIN_PERIODS:
        left = max(0, len(y) - horizon)
        raise ForecastError(
            f"holding out the last {horizon} {unit}{'' if horizon == 1 else 's'} leaves {left} to forecast "
            f"them from, and a forecast needs at least {MIN_PERIODS}."
        )
    train, held = y[:-horizon], y[-horizon:]
    fitted = forecast(train, season, horizon, unit)
    naive, kind = seasonal_naive(train, season, horizon)
    return Backtest(
        tuple(held), fitted.mean, naive, kind, mape(held, fitted.mean), mape(held, naive), fitted.spec
    )


def anomalies(
    values: Sequence[float], season: int, *, first: int = 0, threshold: float = ANOMALY_Z, unit: str = "day"
) -> list[Anomaly]:
    """The values from index `first` on that lie more than `threshold` robust standard deviations from
    what a robust decomposition of the whole series expects: STL with `season` once the series holds
    two seasons, else a robust Loess trend. ForecastError (a sentence for people) when the series is
    too short, or too sparse (most values 0) for an unusual value to mean anything."""
    y = np.asarray(values, dtype=float)
    n = len(y)
    if n < MIN_ANOMALY_POINTS or not np.all(np.isfinite(y)):
        raise ForecastError(f"too few {unit}s of data ({n}); it takes at least {MIN_ANOMALY_POINTS}.")
    if np.count_nonzero(y) * 2 < n:
        raise ForecastError(f"most {unit}s have no sales, too few to tell an unusual one.")
    positive = bool(np.all(y > 0))
    z = np.log(y) if positive else y
    with _quiet():
        if season > 1 and n >= 2 * season:
            from statsmodels.tsa.seasonal import STL

            fit = STL(z, period=season, robust=True, **STL_WINDOWS.get(season, {})).fit()
            expected_z = np.asarray(fit.trend, dtype=float) + np.asarray(fit.seasonal, dtype=float)
        else:
            from statsmodels.nonparametric.smoothers_lowess import lowess

            frac = min(1.0, 13.0 / n)  # about two weeks of days (a quarter of weeks) each side
            expected_z = lowess(z, np.arange(n, dtype=float), frac=frac, it=3, return_sorted=False)
    remainder = z - expected_z
    pooled = _robust_sd(remainder)
    if not pooled > 0:
        raise ForecastError(f"the {unit}s follow their pattern exactly, so none stands out.")
    # Quiet days are noisier (a Sunday's few sales swing more in percent than a Saturday's many): each
    # position in the season gets its own spread when it has enough values, never below the pooled.
    scale = np.full(n, pooled)
    if season > 1:
        positions = np.arange(n) % season
        for position in range(season):
            mine = positions == position
            if np.count_nonzero(mine) >= MIN_POSITION_VALUES:
                scale[mine] = max(pooled, _robust_sd(remainder[mine]))
    expected = np.exp(expected_z) if positive else expected_z
    found: list[Anomaly] = []
    for i in range(max(0, first), n):
        if abs(remainder[i]) <= threshold * scale[i]:
            continue
        base = float(expected[i])
        found.append(
            Anomaly(
                i,
                float(y[i]),
                base,
                (float(y[i]) - base) / abs(base) if base != 0 else None,
                "above" if remainder[i] > 0 else "below",
            )
        )
    return found


def _robust_sd(values: np.ndarray) -> float:
    """The standard deviation a normal sample with these values' median absolute deviation has."""
    return ROBUST_SIGMA * float(np.median(np.abs(values - np.median(values))))


def outside_band(
    history: Sequence[float],
    season: int,
    actual: Sequence[float],
    *,
    level: float = WEEK_BAND,
    unit: str = "period",
) -> list[Anomaly]:
    """The values `actual` (the periods right after `history`) that fall outside the `level` band of
    the model `forecast` fits to `history`; indexes are into `actual`. ForecastError when `history`
    is too short to forecast from."""
    if not actual:
        return []
    fitted = forecast(history, season, len(actual), unit)
    low, high = fitted.interval(level)
    expected = fitted.mean
    found: list[Anomaly] = []
    for i, value in enumerate(actual):
        if low[i] <= value <= high[i]:
            continue
        base = expected[i]
        found.append(
            Anomaly(
                i,
                float(value),
                base,
                (float(value) - base) / abs(base) if base != 0 else None,
                "above" if value > high[i] else "below",
            )
        )
    return found
