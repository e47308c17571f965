"""Figures, the comparison table and ``RESULTS.md``."""
from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Optional


@dataclass
class Figure:
    """One measured quantity for every server of one database kind.

    ``values`` maps server name ("ref-w1", "ref-default", "ours") to the figure.
    ``target`` is one of:
      ("speedup", x)  ours at least x times better than the reference's best;
      ("below", x)    ours strictly below x (absolute, in ``unit``);
      ("at_least", x) ours at least x (absolute, in ``unit``);
      ("none", None)  reported only.
    """

    db: str
    workload: str
    name: str
    unit: str
    higher_is_better: bool
    values: dict = field(default_factory=dict)
    target: tuple = ("none", None)
    target_text: str = ""
    note: str = ""
    skipped: Optional[str] = None
    # Per server: the share of the measured wall time this process (the MLflow
    # client) spent on the CPU. A server cannot look faster than the client allows.
    client_share: dict = field(default_factory=dict)
    # One request at a time: the time a request spends outside the client is the server's
    # (and the loopback's), so "server-side" ratios are meaningful. Not so with threads.
    sequential: bool = True
    # The same workload, interleaved with the others, against a null server that answers
    # at once (benchmarks/client_ceiling.py): the best any server could show with this client.
    client_alone: Optional[float] = None

    def ceiling_speedup(self) -> Optional[float]:
        """``client_alone`` over the reference's best: the largest ratio reachable."""
        _, ref = self.ref_best()
        if self.client_alone is None or not ref:
            return None
        return self.client_alone / ref if self.higher_is_better else ref / self.client_alone

    def ref_best(self) -> tuple[Optional[str], Optional[float]]:
        refs = {k: v for k, v in self.values.items() if k.startswith("ref") and v is not None}
        if not refs:
            return None, None
        pick = max if self.higher_is_better else min
        name = pick(refs, key=refs.get)
        return name, refs[name]

    @property
    def ours(self) -> Optional[float]:
        return self.values.get("ours")

    def speedup(self) -> Optional[float]:
        """How many times better ours is than the reference's best (>1: ours wins)."""
        _, ref = self.ref_best()
        ours = self.ours
        if ref is None or ours is None:
            return None
        if self.higher_is_better:
            return ours / ref if ref > 0 else None
        return ref / ours if ours > 0 else None

    def server_side_speedup(self) -> Optional[float]:
        """The speedup with the client's CPU time taken out of both sides: per
        operation, (wall time - client CPU time) of the reference over ours."""
        ref_name, ref = self.ref_best()
        ours = self.ours
        if not self.sequential or ref is None or not ours or ref_name not in self.client_share \
                or "ours" not in self.client_share:
            return None
        ref_t, ours_t = (1 / ref, 1 / ours) if self.higher_is_better else (ref, ours)
        ref_server = ref_t * (1 - self.client_share[ref_name])
        ours_server = ours_t * (1 - self.client_share["ours"])
        return ref_server / ours_server if ours_server > 0 else None

    def met(self) -> Optional[bool]:
        kind, value = self.target
        if self.skipped or kind == "none":
            return None
        if kind == "speedup":
            s = self.speedup()
            return None if s is None else s >= value
        if self.ours is None:
            return None
        if kind == "below":
            return self.ours < value
        if kind == "at_least":
            return self.ours >= value
        raise ValueError(kind)


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q
    lo, hi = int(pos), min(int(pos) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def p50(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def fmt(value: Optional[float]) -> str:
    if value is None:
        return "—"
    if value != value:  # NaN
        return "—"
    magnitude = abs(value)
    if magnitude >= 1000:
        return f"{value:,.0f}"
    if magnitude >= 100:
        return f"{value:.0f}"
    if magnitude >= 10:
        return f"{value:.1f}"
    if magnitude >= 1:
        return f"{value:.2f}"
    return f"{value:.3f}"


def table(figures: list[Figure]) -> str:
    head = ("| db | workload | figure | reference (best config) | ours | ours vs ref | target | met? "
            "| client CPU share (ref / ours) | server-side vs ref | client alone (null server) vs ref |\n"
            "|---|---|---|---|---|---|---|---|---|---|---|\n")
    lines = []
    for f in figures:
        if f.skipped:
            lines.append(f"| {f.db} | {f.workload} | {f.name} | — | — | — | {f.target_text} | skipped: {f.skipped} | | | |")
            continue
        ref_name, ref = f.ref_best()
        ref_text = f"{fmt(ref)} {f.unit} ({ref_name})" if ref is not None else "—"
        ours = f"{fmt(f.ours)} {f.unit}" if f.ours is not None else "—"
        s = f.speedup()
        ratio = f"{s:.2f}× {'better' if s >= 1 else 'worse'}" if s is not None else "—"
        met = f.met()
        met_text = "—" if met is None else ("yes" if met else "**no**")
        share = ""
        if f.client_share and ref_name in f.client_share and "ours" in f.client_share:
            share = f"{f.client_share[ref_name]:.0%} / {f.client_share['ours']:.0%}"
        server = f.server_side_speedup()
        server_text = f"{server:.1f}×" if server is not None else ""
        ceiling = f.ceiling_speedup()
        ceiling_text = f"{ceiling:.1f}× ({fmt(f.client_alone)} {f.unit})" if ceiling is not None else ""
        lines.append(f"| {f.db} | {f.workload} | {f.name} | {ref_text} | {ours} | {ratio} | {f.target_text} | {met_text} "
                     f"| {share} | {server_text} | {ceiling_text} |")
    return head + "\n".join(lines) + "\n"


def detail_table(figures: list[Figure]) -> str:
    """Every server configuration's figure, for the record."""
    names: list[str] = []
    for f in figures:
        for k in f.values:
            if k not in names:
                names.append(k)
    head = "| db | figure | " + " | ".join(names) + " | note |\n|---|---|" + "---|" * len(names) + "---|\n"
    lines = []
    for f in figures:
        if f.skipped:
            continue
        cells = [f"{fmt(f.values.get(n))}" for n in names]
        lines.append(f"| {f.db} | {f.workload} {f.name} ({f.unit}) | " + " | ".join(cells) + f" | {f.note} |")
    return head + "\n".join(lines) + "\n"


def machine() -> dict:
    info = {"nproc": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()}
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemTotal:"):
                    info["memory_gib"] = round(int(line.split()[1]) / 1024 / 1024, 1)
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    info["cpu"] = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        info["nproc"] = int(subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip())
    except (OSError, ValueError):
        pass
    return info


def write_json(path: str, figures: list[Figure], meta: dict) -> None:
    with open(path, "w") as fh:
        json.dump({"meta": meta, "figures": [asdict(f) | {"speedup": f.speedup(), "met": f.met(), "ref_best": f.ref_best(),
                                                          "server_side_speedup": f.server_side_speedup(),
                                                          "ceiling_speedup": f.ceiling_speedup()}
                                             for f in figures]},
                  fh, indent=1, default=str)


def now_utc() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
