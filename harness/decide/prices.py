"""Prices the user gives, and what one million output tokens costs at them.

No price is built in: a price is a fact about the user's contract, not about the hardware. A
price is dollars per GPU-hour or per node-hour for one hardware label; a run's hardware label
(:func:`harness.record.hardware.hardware_label`, e.g. ``1× NVIDIA H100 80GB HBM3``) takes the price
whose key is the label itself or, failing that, the longest key found in it case-insensitively
(``H100`` matches ``1× NVIDIA H100 80GB HBM3``).

Cost per million output tokens at a throughput::

    usd_per_mtok = usd_per_hour / (3600 * output_tok_s_per_priced_unit) * 1e6

where the priced unit is one GPU (tok/s per GPU) or the whole node the run used (its tok/s).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

PricedUnit = Literal["gpu", "node"]

# "/h", "/gpu-h", "/gpu-hour", "/GPU-hour": per GPU-hour; "/node-h", "/node-hour": per node-hour.
_UNITS: dict[str, PricedUnit] = {
    "h": "gpu",
    "hr": "gpu",
    "hour": "gpu",
    "gpu-h": "gpu",
    "gpu-hr": "gpu",
    "gpu-hour": "gpu",
    "node-h": "node",
    "node-hr": "node",
    "node-hour": "node",
}
_PRICE = re.compile(
    r"^\s*(?P<label>[^=]+?)\s*=\s*\$?(?P<amount>[0-9]+(?:\.[0-9]*)?)\s*(?:/\s*(?P<unit>[A-Za-z-]+))?\s*$"
)


class PriceError(ValueError):
    """A price that cannot be read; the message names the argument or file and field."""


@dataclass(frozen=True)
class Price:
    """Dollars per hour of one priced unit (a GPU or a node) of one hardware label."""

    label: str
    usd_per_hour: float
    unit: PricedUnit
    source: str  # where the price came from: "--price H100=3.50/h" or "prices.yaml: H100"

    def describe(self) -> str:
        return f"${self.usd_per_hour:g}/{'GPU' if self.unit == 'gpu' else 'node'}-hour ({self.source})"


def parse_price(text: str) -> Price:
    """``LABEL=AMOUNT/UNIT`` as ``--price`` takes it: ``H100=3.50/h`` ($/GPU-hour; also ``/gpu-h``)
    or ``CPU=0.20/node-h`` ($/node-hour). Raises PriceError naming the argument."""
    m = _PRICE.match(text)
    if m is None:
        raise PriceError(f"--price {text!r}: expected LABEL=AMOUNT/UNIT, e.g. H100=3.50/h or CPU=0.20/node-h")
    unit_text = (m["unit"] or "h").lower()
    unit = _UNITS.get(unit_text)
    if unit is None:
        raise PriceError(
            f"--price {text!r}: unknown unit {unit_text!r}; use /h or /gpu-h ($ per GPU-hour) or /node-h ($ per node-hour)"
        )
    amount = float(m["amount"])
    if amount <= 0:
        raise PriceError(f"--price {text!r}: the amount must be above zero")
    return Price(label=m["label"], usd_per_hour=amount, unit=unit, source=f"--price {text}")


class _PriceEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    usd_per_gpu_hour: float | None = Field(default=None, gt=0, description="Dollars per GPU-hour.")
    usd_per_node_hour: float | None = Field(
        default=None, gt=0, description="Dollars per hour of the whole node a run used."
    )


def load_prices(path: Path) -> list[Price]:
    """A prices file: a mapping of hardware label to ``{usd_per_gpu_hour: X}`` or
    ``{usd_per_node_hour: X}`` (exactly one), or to a ``--price`` style string (``3.50/h``).

    Raises PriceError naming the file and the label of a bad entry.
    """
    import yaml

    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise PriceError(f"{path}: cannot read prices: {exc}") from exc
    if not isinstance(data, dict):
        raise PriceError(f"{path}: expected a mapping of hardware label to price")
    out = []
    for label, entry in data.items():
        where = f"{path}: {label}"
        if isinstance(entry, str | int | float):
            try:
                p = parse_price(f"{label}={entry}")
            except PriceError as exc:
                raise PriceError(f"{where}: {exc}") from exc
            out.append(Price(str(label), p.usd_per_hour, p.unit, where))
            continue
        try:
            e = _PriceEntry.model_validate(entry)
        except ValidationError as exc:
            err = exc.errors()[0]
            field = ".".join(str(x) for x in err["loc"])
            raise PriceError(f"{where}{'.' + field if field else ''}: {err['msg']}") from exc
        if (e.usd_per_gpu_hour is None) == (e.usd_per_node_hour is None):
            raise PriceError(f"{where}: give exactly one of usd_per_gpu_hour and usd_per_node_hour")
        if e.usd_per_gpu_hour is not None:
            out.append(Price(str(label), e.usd_per_gpu_hour, "gpu", where))
        else:
            assert e.usd_per_node_hour is not None
            out.append(Price(str(label), e.usd_per_node_hour, "node", where))
    return out


def price_for(hardware: str, prices: list[Price]) -> tuple[Price | None, str | None]:
    """The price of a hardware label, or None with the reason (no price, or two that match)."""
    exact = [p for p in prices if p.label == hardware]
    if exact:
        return exact[-1], None
    low = hardware.lower()
    found = [p for p in prices if p.label.lower() in low]
    if not found:
        given = ", ".join(sorted({p.label for p in prices})) or "none"
        return None, f"no price for {hardware!r} (prices given: {given}; add --price LABEL=USD/h)"
    longest = max(len(p.label) for p in found)
    best = {p.label: p for p in found if len(p.label) == longest}
    if len(best) > 1:
        return None, f"prices {', '.join(sorted(best))} all match {hardware!r}: give the full label"
    return next(iter(best.values())), None


def usd_per_mtok(usd_per_hour: float, tok_s_per_unit: float) -> float:
    """Dollars per million output tokens: ``usd_per_hour / (3600 * tok_s_per_unit) * 1e6``."""
    return usd_per_hour / (3600.0 * tok_s_per_unit) * 1e6
