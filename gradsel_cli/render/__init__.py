"""Everything a person sees; the only package importing Rich.

console: the consoles and progress bars; layout: how a table fits the width; tables: the terminal tables of
every command; digits: digit pictures; cells: the text of a cell or a line; formats: CSV, Markdown, LaTeX, JSON.
"""

from .cells import fmt_loss, sparkline
from .console import RateColumn, clean, consoles, progress_bar, progress_enabled
from .digits import SHADES, DigitPicture, digit, digit_caption, digits_grid, shaded_digit
from .formats import (
    compare_csv,
    json_text,
    paper_table_csv,
    paper_table_latex,
    paper_table_markdown,
    runs_csv,
    study_markdown,
)
from .tables import (
    bench_record_tables,
    bench_tables,
    compare_parts,
    compare_tables,
    compile_tables,
    costs_table,
    gradcheck_tables,
    lab_table,
    paper_table_output,
    paper_table_rich,
    paths_table,
    runs_table,
    runs_title,
    study_output,
    study_tables,
    sweep_label,
    sweep_title,
    textbook_table,
    train_summary,
    tune_table,
)

__all__ = [
    "SHADES",
    "DigitPicture",
    "RateColumn",
    "bench_record_tables",
    "bench_tables",
    "clean",
    "compare_csv",
    "compare_parts",
    "compare_tables",
    "compile_tables",
    "consoles",
    "costs_table",
    "digit",
    "digit_caption",
    "digits_grid",
    "fmt_loss",
    "gradcheck_tables",
    "json_text",
    "lab_table",
    "paper_table_csv",
    "paper_table_latex",
    "paper_table_markdown",
    "paper_table_output",
    "paper_table_rich",
    "paths_table",
    "progress_bar",
    "progress_enabled",
    "runs_csv",
    "runs_table",
    "runs_title",
    "shaded_digit",
    "sparkline",
    "study_markdown",
    "study_output",
    "study_tables",
    "sweep_label",
    "sweep_title",
    "textbook_table",
    "train_summary",
    "tune_table",
]
