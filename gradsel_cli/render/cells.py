"""The text of one cell or line, shared by the terminal tables and the text formats: numbers, durations,
intervals, verdicts, a paper table's labels and footer, a study's rows. Plain strings; no Rich.
"""

import math

import numpy as np

from .. import papers, sources
from ..config import TrainConfig, computed_sources, counted

SPARKS = "▁▂▃▄▅▆▇█"


def fmt_loss(x) -> str:
    """A loss: 4 decimals, or 3 significant digits in e-notation when it is huge or tiny; nan, inf as such."""
    if x is None:
        return "—"
    x = float(x)
    if not math.isfinite(x):
        return str(x)
    if x != 0 and not 1e-3 <= abs(x) < 1e4:
        return f"{x:.2e}"
    return f"{x:.4f}"


def sparkline(values, width: int = 40, log: bool = False) -> str:
    """A one-line picture of a series (e.g. the loss), `width` characters; `log`: of log10 of the
    positive values (a loss that falls by decades)."""
    vals = [v for v in values if v is not None and v == v and abs(v) != float("inf")]
    if log:
        vals = [float(np.log10(v)) for v in vals if v > 0]
    if not vals:
        return ""
    step = max(1, len(vals) // width)
    pts = [sum(vals[i : i + step]) / len(vals[i : i + step]) for i in range(0, len(vals), step)][:width]
    lo, hi = min(pts), max(pts)
    span = hi - lo or 1.0
    return "".join(SPARKS[min(len(SPARKS) - 1, int((p - lo) / span * (len(SPARKS) - 1) + 0.5))] for p in pts)


def fmt_number(x, spec=".4f", none="—"):
    return none if x is None else format(x, spec)


def duration(seconds: float) -> str:
    """A duration to 3 significant digits with a sensible unit: 48.0 µs, 175 µs, 4.97 ms, 27.8 s, 3.1 min."""
    if seconds >= 120:
        return f"{seconds / 60:.1f} min"
    value, unit = next(
        (seconds * scale, unit)
        for scale, unit in ((1, "s"), (1e3, "ms"), (1e6, "µs"))
        if seconds * scale >= 1 or unit == "µs"
    )
    return f"{value:.{2 if value < 10 else 1 if value < 100 else 0}f} {unit}"


def plus_minus(entry: dict, digits: int = 4) -> str:
    """'mean ± half-width' (just the mean for one seed, '—' for none)."""
    if entry.get("mean") is None:
        return "—"
    if entry.get("n", 0) > 1 and entry.get("lo") is not None and entry.get("lo") == entry.get("lo"):
        return f"{entry['mean']:.{digits}f} ± {(entry['hi'] - entry['lo']) / 2:.{digits}f}"
    return f"{entry['mean']:.{digits}f}"


def p_value(p) -> str:
    if p is None or p != p:
        return "—"
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def outcome(result: dict, sep: str = " ", upper: bool = True) -> str:
    """A test's outcome in capitals, with the reason it has no numbers: 'INCONCLUSIVE (one seed)'."""
    word = result["outcome"].upper() if upper else result["outcome"]
    return word + (f"{sep}({result['reason']})" if result.get("reason") else "")


def option_value(value) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value).lower() if isinstance(value, bool) else str(value)


def row_label(row: dict, preset: str) -> str:
    return f"{row['method']} H={row['hidden']}" if preset == "alternate" else row["method"]


def column_names(table: dict) -> list[str]:
    first = table["groups"][0]["rows"][0]
    cols = [f"k={c['shots']}" for c in first["cells"]]
    return cols + (["AVG"] if "avg" in first else [])


def entries(row: dict) -> list[dict]:
    return row["cells"] + ([row["avg"]] if "avg" in row else [])


def cell_text(e: dict, paper: bool, fmt: str, stacked: bool = False) -> str:
    ours = plus_minus(e)
    if fmt == "markdown" and e.get("best"):
        ours = f"**{ours}**"
    if fmt == "latex":
        ours = ours.replace("±", r"$\pm$")
        if e.get("best"):
            ours = rf"\textbf{{{ours}}}"
    if fmt == "rich" and e.get("best"):
        ours = f"[bold]{ours}[/]"
    if paper and e.get("published") is not None:
        ours += ("\n" if stacked else " ") + f"({e['published']:.4f})"
    return ours


def power_text(p: dict) -> str:
    """What --power says of one comparison: the seeds a paired t-test needs for the difference asked."""
    images = f"{p['images']} test image{'s' if p['images'] != 1 else ''}"
    if p["sd"] is None or not p["sd"] > 0:
        return f"to tell ±{images} apart: no spread in these pairs to go by, so no number of seeds can be estimated"
    if p["seeds"] is None:
        return f"to tell ±{images} apart at the pairs' spread (sd {p['sd']:.2g}): more than 100,000 seeds"
    return (
        f"to tell ±{images} apart at the pairs' spread (sd {p['sd']:.2g}): {p['seeds']} seeds "
        "(paired t-test, 0.05, 80% power)"
    )


def verdict_lines(table: dict) -> list[str]:
    lines = []
    for v in table["verdicts"]:
        lines.append(f"{outcome(v)} — {v['text']}")
        for part in v["comparisons"]:
            lines.append(f"    vs {part['baseline']}: {part['words']}")
            if "equivalence" in part:
                e = part["equivalence"]
                gain = f"; the paper's own gain {e['claimed']:+.2g}" if e.get("claimed") is not None else ""
                within = f"within ±{e['margin']:g} (TOST{gain})"
                lines.append(f"    vs {part['baseline']}: {outcome(e)} {within}: {e['numbers']}")
            if part.get("power"):
                lines.append(f"    vs {part['baseline']}: {power_text(part['power'])}")
    parts = [p for v in table["verdicts"] for p in v["comparisons"] if "tests" in p]
    if parts:
        claims, tosts = parts[0]["tests"], parts[0]["equivalence"]["tests"]
        lines.append(
            f"Tests made: {claims} of the claims (t-test) and {tosts} of equivalence (TOST), each family "
            "Holm-adjusted at 0.05; a comparison whose pairs have no spread (identical runs) or one seed makes none."
        )
    return lines


def footer_lines(table: dict) -> list[str]:
    """A paper table's footer: its seeds, its settings (with those of each source its methods compute, as the
    source says them), its arithmetic where not the default, how far it is from the published numbers."""
    s = table["settings"]
    used = computed_sources(s, [row["method"] for group in table["groups"] for row in group["rows"]])
    lines = [
        f"seeds: {', '.join(map(str, table['seeds'])) or 'none'}; settings: {s['iters']:,} iterations, "
        f"SGD lr {s['lr']}, subset {s['subset']}, init std {s['init_std']}"
        + "".join(f", {p}" for p in (sources.footer_phrase(n, s) for n in used) if p)
    ]
    chosen = [k for n in used for k in sources.get(n).arithmetic]
    defaults = TrainConfig().to_dict()
    if any(s.get(k, defaults[k]) != defaults[k] for k in ("precision", *chosen, "loss_epsilon")):
        said = "".join(f", {k.replace('_', ' ')} {s[k]}" for k in chosen)
        lines.append(f"arithmetic: {s['precision']}{said}, loss epsilon {s['loss_epsilon']:g}")
    network = [
        f"{k.replace('_', ' ')} {s[k]}" for k in ("activation", "pixels") if s.get(k, defaults[k]) != defaults[k]
    ]
    if network:
        lines.append(f"network: {', '.join(network)}")
    if table["mad_baseline"] is not None:
        lines.append(
            f"mean |ours − published|: baseline cells {table['mad_baseline']:.4f}, all cells {table['mad_all']:.4f}"
        )
    if (b := table.get("beside")) is not None:
        lines.append(
            f"  in gradsel's default setting (sigmoid; its shipped runs, {counted(len(b['seeds']), 'seed')}): "
            f"baseline cells {b['mad_baseline']:.4f}, all cells {b['mad_all']:.4f}"
        )
    if table["missing_cells"]:
        has = "has" if table["missing_cells"] == 1 else "have"
        run_preset = table.get("run_preset", table["preset"])
        varied = run_preset == table["preset"] and any(s[k] != defaults[k] for k in s if k in defaults)
        lines.append(
            f"{counted(table['missing_cells'], 'cell')} {has} no runs yet: "
            f"`gradsel table --preset {run_preset} --run`" + (" with the same options" if varied else "")
        )
    for m in table["avg_mismatches"]:
        lines.append(
            f"note: the published AVG of {m['method']} at B={m['batch']} is printed {m['printed']:.4f}, "
            f"the mean of its printed cells is {m['mean_of_cells']:.4f} (shown as printed)"
        )
    return lines


def study_parts(preset: str, s: dict) -> list[tuple[str, list[str], list[list[str]]]]:
    """The study's tables as (title, headers, rows) of plain strings, for Rich or Markdown."""
    if preset == "sources":
        return _sources_parts(s)
    if preset == "differences":
        return _differences_parts(s)
    if preset == "subsets":
        rows = [
            [
                f"H={r['hidden']} k={r['shots']}",
                str(r["subsets"]),
                f"{r['mean']:.4f}",
                f"{r['lo']:.3f}–{r['hi']:.3f}",
                fmt_number(r["published"]),
                fmt_number(r["published_percentile"], ".0f"),
                fmt_number(r["first_k_mean"]),
                fmt_number(r["published_percentile_first_k"], ".0f"),
            ]
            for r in s["rows"]
        ]
        return [
            (
                "Paper A, B=1, analytic: the published baseline among random few-shot subsets (pct) and among "
                "first-k runs (pct 1st), one run per seed",
                ["cell", "n", "random", "range", "paper", "pct", "first-k", "pct 1st"],
                rows,
            )
        ]
    parts = []
    for name in dict.fromkeys(r["condition"] for r in s["rows"]):
        rows, share, diverged = [], None, 0
        for r in (r for r in s["rows"] if r["condition"] == name):
            tost = r["tost"] or {}
            pm = (
                "—"
                if r["difference"] is None
                else f"{r['difference']:+.4f}"
                if r["ci"][0] is None
                else f"{r['difference']:+.4f}±{(r['ci'][1] - r['ci'][0]) / 2:.4f}"
            )
            rows.append(
                [
                    r["method"],
                    fmt_number(r["predictions_differ"], ".3%"),
                    pm,
                    outcome(tost, "\n", upper=False) if tost else "—",
                    f"{r['cells_equivalent']}/{r['cells']}",
                    f"{r['runs_within']}/{r['pairs'] - r['diverged']}",
                    fmt_number(r["largest"], "+.4f"),
                ]
            )
            share = r[f"{papers.STUDY_SOURCES[1]}_share"] if r["method"] == "select" else share
            diverged += r["diverged"]
        title = (
            f"{name}: against {papers.STUDY_SOURCES[0]}"
            + ("" if share is None else f"; select keeps {papers.STUDY_SOURCES[1]} {share:.1%}")
            + (f"; {counted(diverged, 'pair')} diverged" if diverged else "")
        )
        parts.append((title, ["method", "differ", "Δ acc ±CI", "TOST", "eq.", "≤2 img", "largest"], rows))
    pub = [
        [p["paper"], p["method"], f"{p['within']}/{p['n']}", str(p["exact_zero"]), f"{p['largest']:+.4f}"]
        for p in s["published"]
    ]
    parts.append(
        (
            f"Published: each method − {papers.STUDY_SOURCES[0]}, single runs",
            ["paper", "method", "≤2 img", "exactly 0", "largest"],
            pub,
        )
    )
    return parts


def _p(test: dict | None) -> str:
    """A test's Holm-adjusted p-value as a line of its cell: 'p 0.28', 'p 0.004', 'p 9e-15'."""
    if test is None:
        return ""
    p = test["p_holm"]
    return f"p {p:.0e}" if p < 1e-3 else f"p {p:.3f}" if p < 0.01 else f"p {p:.2f}"


def _differences_parts(s: dict) -> list[tuple[str, list[str], list[list[str]]]]:
    """The differences comparison: a table per scope of cells, the published differences' row first, then each
    condition's with the Holm-adjusted p-value of each test under its number, the baselines' distance and the
    verdict."""
    headers = ["", "n", "zeros", "mean |Δ|\nimages", "large\nat B=1", "up", "verdict"]
    scopes = {"study": "The study's cells (paper A's k=2 and B=1 cells)", "all": "Every cell of both papers"}
    parts = []
    for scope, said in scopes.items():
        rows = [r for r in s["rows"] if r["cells"] == scope]
        if not rows:
            continue
        pub = rows[0]
        loc = next((r["location"] for r in rows if r["location"] is not None), None)
        sg = next((r["signs"] for r in rows if r["signs"] is not None), None)
        table = [
            [
                "published",
                str(pub["strata"]),
                f"{pub['zeros']['published']:.0%}",
                f"{pub['spread']['published'] * papers.TEST_IMAGES:.1f}",
                "—" if loc is None else f"{loc['published']:.0%}",
                "—" if sg is None else f"{sg['published_up']}/{sg['published_up'] + sg['published_down']}",
                "",
            ]
        ]
        for r in rows:
            z, sp, loc, sg = r["zeros"], r["spread"], r["location"], r["signs"]
            table.append(
                [
                    f"{r['condition']}\nbase {fmt_number(r['baseline']['mad'], '.4f')}",
                    str(r["pairs"]),
                    f"{z['condition']:.0%}\n{_p(z)}",
                    f"{sp['condition'] * papers.TEST_IMAGES:.1f}\n{_p(sp)}",
                    "—" if loc is None else f"{loc['condition']:.0%}\n{_p(loc)}",
                    "—" if sg is None else f"{sg['condition']:.0%}\n{_p(sg)}",
                    r["verdict"],
                ]
            )
        title = (
            f"{said}: the published differences (method − {papers.STUDY_SOURCES[0]}, one run a cell) against "
            f"each condition's paired runs ({counted(max(r['seeds'] for r in rows), 'seed')})"
        )
        parts.append((title, headers, table))
    return parts


def differences_legend(summary: dict) -> str:
    """What the columns of the differences comparison mean."""
    near = round(summary["near_zero"] * papers.TEST_IMAGES)
    return (
        "n: differences of a method from analytic in the same cell (and seed): published (paper A: alternate; "
        "paper B: numeric, select), the condition's paired runs. zeros: the share exactly 0. zeros and mean |Δ| "
        "are tested as if each published difference were one more draw of its cell (exact permutation tests). "
        f"large at B=1: of the differences beyond {near} test images, the share at B=1 (Fisher's exact test). up: "
        "the published differences up of those not 0; the condition's share up (binomial test). p: Holm-adjusted "
        f"over the {summary['tests']} tests of the table; rejected: any p below {summary['alpha']}. base: the "
        "condition's analytic cells (mean over seeds) against the published ones, mean |ours − published|."
    )


def study_legend(summary: dict) -> str:
    """What the columns of the conditions study mean, with its margin and how far the papers' baselines differ."""
    x = summary["cross_paper"]
    return (
        f"differ: share of test predictions unlike {papers.STUDY_SOURCES[0]}'s. Δ: pooled by seed (mean over the "
        f"cells), 95% CI; TOST margin ±{summary['margin']}. eq.: cells equivalent on their own. Tests made: "
        f"{summary['tests']['pooled']} pooled (TOST) and {summary['tests']['cells']} per cell (eq.), each family "
        "Holm-adjusted at 0.05; a comparison whose pairs have no spread (identical runs) makes none. "
        f"≤2 img: single runs within {summary['near_zero']} of analytic. largest: of a single run. "
        f"The papers' analytic H=20 cells differ between the two papers by up to "
        f"{x['difference']:+.4f} (B={x['batch']}, k={x['shots']})."
    )


def ledger_text(ledger: dict, iterations: int) -> str:
    """A run's cost (numerics/ledger.py) in one phrase (plain text: the caller escapes it): its total in
    forward-pass equivalents, per iteration, and, of more than one part, by source (and select's comparisons)."""
    total = ledger["total"]
    text = f"{total:,.0f} {ledger['unit']} ({total / max(iterations, 1):,.1f} / iteration)"
    parts = [(name, v) for name, v in ledger["by_source"].items()]
    if ledger["comparisons"]:
        parts.append(("comparisons", ledger["comparisons"]))
    if len(parts) > 1:
        text += ": " + ", ".join(f"{name} {v:,.0f}" for name, v in parts)
    return text


def probe_text(probe: dict) -> str:
    """The fidelity probe of a run in one phrase (plain text): each source's mean cosine to the exact gradient
    over the readings, and the range of its relative error."""
    parts = []
    for name, cosines in probe["cosine"].items():
        known = [c for c in cosines if c is not None]
        errors = [e for e in probe["rel_error"][name] if e is not None]
        if not known:
            continue
        text = f"{name} {sum(known) / len(known):.3g}"
        if errors:
            text += f" (rel. error {min(errors):.2g}–{max(errors):.2g})"
        parts.append(text)
    n = len(probe["iterations"])
    return (", ".join(parts) or "—") + f"; mean of {n} reading{'s' if n != 1 else ''}, every {probe['every']:,}"


SHORT_POLICIES = {"alternate": "alt.", "select": "sel."}  # the sources study's tables, within 80 columns
REGIME_NAMES = {"iterations": "equal iterations", "budget": "equal compute", "long": "long"}


def _short(method: str) -> str:
    """A sources-study method's name in its tables: a policy (abbreviated) with the source it mixes with the
    exact one."""
    from .. import sources_study

    policy, source = sources_study.parts(method)
    return source if policy is None else f"{SHORT_POLICIES.get(policy, policy)} {source}"


def _sources_parts(s: dict) -> list[tuple[str, list[str], list[list[str]]]]:
    """The sources study: per setting and regime, each method's accuracy against the exact source's; then per
    setting what the probe read and how select split its wins."""
    parts = []
    for g in s["rows"]:
        budget = g["regime"] != "iterations"
        where = f"k={g['shots']}, B={g['batch']}, H={g['hidden']}"
        if g["regime"] == "iterations":
            title = (
                f"{where}, equal iterations: {s['iters']:,} each; alt., sel.: alternate, select with {g['baseline']}"
            )
        elif g["regime"] == "budget":
            title = f"{where}, equal compute: {g['budget']:,.0f} forward-pass equivalents each"
        else:
            title = (
                f"{where}, long: the random sources to {g['budget']:,.0f} forward-pass equivalents, {g['baseline']} "
                f"at {s['budget']:,.0f}; rise: accuracy gained over the second half"
            )
        rows = []
        for r in g["methods"]:
            v = r.get("versus")
            rows.append(
                [
                    _short(r["method"]),
                    f"{r['iterations']:,}" if budget else ("—" if r.get("cost") is None else f"{r['cost']:,.0f}"),
                    plus_minus(r["accuracy"], 3),
                    "—" if v is None else f"{v['difference']:+.4f}",
                    "—" if v is None else v["equivalence"]["outcome"],  # identical runs: 0.0% differ says so
                    "—" if v is None else f"{v['disagreement']:.1%}",
                ]
                + ([] if not budget else ["—" if r.get("rise") is None else f"{r['rise']:+.4f}"])
            )
        heads = ["method", "iters" if budget else "cost", "accuracy", "Δ", "TOST", "differ"]
        parts.append((title, heads + (["rise"] if budget else []), rows))
        probed = [r for r in g["methods"] if r.get("probe")]
        if probed:
            rows = [
                [
                    _short(r["method"]),
                    f"{r['probe']['cosine']:.3g}",
                    f"{r['probe']['rel_error']:.2g}",
                    "—" if r["select_win_rate"] is None else f"{r['select_win_rate']:.3f}",
                    "—" if r.get("select_tie_rate") is None else f"{r['select_tie_rate']:.3f}",
                ]
                for r in probed
            ]
            parts.append(
                (
                    f"{where}, {REGIME_NAMES[g['regime']]}: the probe against backprop",
                    ["method", "cosine", "rel. error", "sel. wins", "ties"],
                    rows,
                )
            )
    return parts
