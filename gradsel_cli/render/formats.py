"""The text formats: CSV (one writer, the csv module), Markdown, LaTeX and JSON. Plain strings; no Rich."""

import csv
import io
import json
import math

from .cells import (
    cell_text,
    column_names,
    differences_legend,
    entries,
    footer_lines,
    row_label,
    study_legend,
    study_parts,
    verdict_lines,
)


def paper_table_markdown(table: dict, paper: bool = True) -> str:
    cols = column_names(table)
    lines = [
        f"**{table['title']}** — ours: mean ± 95% CI over seeds" + ("; published in parentheses" if paper else ""),
        "",
        "| B | method | " + " | ".join(cols) + " |",
        "|---|---|" + "---:|" * len(cols),
    ]
    for g in table["groups"]:
        for row in g["rows"]:
            lines.append(
                f"| {g['batch']} | {row_label(row, table['preset'])} | "
                + " | ".join(cell_text(e, paper, "markdown") for e in entries(row))
                + " |"
            )
    lines += [""] + [f"- {x}" for x in footer_lines(table)] + ["", "Verdicts:", ""]
    lines += [f"- {x.strip()}" if not x.startswith("    ") else f"  - {x.strip()}" for x in verdict_lines(table)]
    return "\n".join(lines)


def paper_table_latex(table: dict, paper: bool = True) -> str:
    cols = column_names(table)
    lines = [
        r"\begin{tabular}{rl" + "r" * len(cols) + "}",
        r"\hline",
        "B & method & " + " & ".join(cols) + r" \\",
        r"\hline",
    ]
    for g in table["groups"]:
        for i, row in enumerate(g["rows"]):
            lines.append(
                f"{g['batch'] if i == 0 else ''} & {row_label(row, table['preset'])} & "
                + " & ".join(cell_text(e, paper, "latex") for e in entries(row))
                + r" \\"
            )
        lines.append(r"\hline")
    lines.append(r"\end{tabular}")
    return "\n".join(lines)


CSV_DIGITS = 15  # significant digits of a float in CSV: 0.4966, not the 0.49660000000000004 a mean can be


def csv_cell(x) -> str:
    """A CSV cell: None and NaN empty, a float as the shortest text of its value to CSV_DIGITS digits."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return ""
    if isinstance(x, float):
        return repr(float(f"{x:.{CSV_DIGITS}g}"))
    return str(x)


def csv_text(header, rows) -> str:
    """CSV text (the csv module's quoting) of a header and rows, every cell through csv_cell."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    w.writerows([csv_cell(x) for x in row] for row in rows)
    return buf.getvalue()


def paper_table_csv(table: dict) -> str:
    rows = []
    for g in table["groups"]:
        for row in g["rows"]:
            for e, col in zip(entries(row), [c["shots"] for c in row["cells"]] + (["avg"] if "avg" in row else [])):
                rows.append(
                    [
                        table["preset"],
                        g["batch"],
                        row["method"],
                        row["hidden"],
                        col,
                        *(e.get(k) for k in ("mean", "lo", "hi")),
                        e["n"],
                        e["published"],
                        int(bool(e.get("best"))),
                    ]
                )
    return csv_text(
        ["preset", "batch", "method", "hidden", "shots", "mean", "ci_lo", "ci_hi", "n", "published", "best"], rows
    )


def runs_csv(summary: dict) -> str:
    """The runs summary as CSV: the varied options, then runs, seeds, accuracy and its CI, loss, diverged."""
    rows = [
        [
            *(row["values"][k] for k in summary["varied"]),
            row["runs"],
            " ".join(map(str, row["seeds"])),
            *(row["accuracy"][k] for k in ("mean", "lo", "hi")),
            row["final_loss"],
            row["diverged"],
        ]
        for row in summary["rows"]
    ]
    return csv_text(
        [
            *summary["varied"],
            "runs",
            "seeds",
            "accuracy_mean",
            "accuracy_ci_lo",
            "accuracy_ci_hi",
            "final_loss",
            "diverged",
        ],
        rows,
    )


COMPARE_CSV_HEADER = (
    "method",
    "seeds",
    "accuracy_mean",
    "accuracy_ci_lo",
    "accuracy_ci_hi",
    "final_loss",
    "time_per_iter",
    "not_exact_share",
    "select_win_rate",
    "select_tie_rate",
    "diff_vs_baseline",
    "diff_ci_lo",
    "diff_ci_hi",
    "p_t",
    "p_wilcoxon",
    "disagreement",
    "tost",
    "tost_ci_lo",
    "tost_ci_hi",
    "p_lower",
    "p_upper",
)


def compare_csv(summary: dict) -> str:
    """The per-method summary of `compare` as CSV (one header line, one line per method)."""
    rows = []
    for r in summary["methods"]:
        v = r.get("versus", {})
        cells = [
            r["method"],
            len(r["seeds"]),
            r["accuracy"]["mean"],
            r["accuracy"]["lo"],
            r["accuracy"]["hi"],
            r["final_loss"],
            r["time_per_iter"],
            r["not_exact_share"],
            r["select_win_rate"],
            r.get("select_tie_rate"),
            v.get("difference"),
            *(v.get("ci") or (None, None)),
            v.get("p_t"),
            v.get("p_wilcoxon"),
            v.get("disagreement"),
        ]
        e = v.get("equivalence", {})
        cells += [e.get("outcome"), *(e.get("ci") or (None, None)), e.get("p_lower"), e.get("p_upper")]
        rows.append(cells)
    return csv_text(COMPARE_CSV_HEADER, rows)


def _md_cell(text: str) -> str:
    """A study's cell in a Markdown table: one line, its pipes escaped (mean |Δ|)."""
    return text.replace("\n", " ").replace("|", "\\|")


def study_markdown(preset: str, summary: dict) -> str:
    """The conditions or subsets study as Markdown: each table under its bold title, the legend of conditions."""
    out = []
    for title, headers, rows in study_parts(preset, summary):
        lines = [
            f"**{title}**",
            "",
            "| " + " | ".join(_md_cell(h) for h in headers) + " |",
            "|" + "|".join("---" if i == 0 else "---:" for i in range(len(headers))) + "|",
        ]
        lines += ["| " + " | ".join(_md_cell(cell) for cell in row) + " |" for row in rows]
        out.append("\n".join(lines) + "\n")
    if preset == "conditions":
        out.append(study_legend(summary) + "\n")
    if preset == "differences":
        out.append(differences_legend(summary) + "\n")
    return "".join(part + "\n" for part in out)


def json_text(data) -> str:
    """What --json prints: `data` indented by two, one newline at the end."""
    return json.dumps(data, indent=2) + "\n"
