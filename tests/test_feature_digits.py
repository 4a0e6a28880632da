"""The paper's Figure 2 in the terminal: half-block digits, captions, which digits to show, compare --show-digits."""

import json

import numpy as np
import pytest
from rich.console import Console
from rich.style import Style

from gradsel_cli import render
from gradsel_cli.analysis import report
from gradsel_cli.cli.commands import cli

TINY_COMPARE = [
    "compare",
    "--methods",
    "analytic,alternate",
    "--seeds",
    "1",
    "--iters",
    "20",
    "--hidden",
    "5",
    "--batch",
    "4",
    "--test-limit",
    "200",
    "--workers",
    "1",
]


def styles(text, console=None):
    """The style of every character of a Rich Text (newlines skipped)."""
    console = console or Console()
    return [text.get_style_at_offset(console, i) for i, ch in enumerate(text.plain) if ch != "\n"]


def grey(v):
    return f"rgb({v},{v},{v})"


# --- the half-block renderer --------------------------------------------------------


def test_a_2x2_image_is_one_line_of_two_half_blocks():
    text = render.digit(np.array([[0, 255], [128, 64]], dtype=np.uint8))
    assert text.plain == "▀▀"
    assert styles(text) == [Style(color=grey(0), bgcolor=grey(128)), Style(color=grey(255), bgcolor=grey(64))]


def test_a_4x3_image_is_two_lines_of_three_pairing_rows_0_1_and_2_3():
    image = np.array([[10, 20, 30], [40, 50, 60], [70, 80, 90], [100, 110, 120]], dtype=np.uint8)
    text = render.digit(image)
    assert text.plain == "▀▀▀\n▀▀▀"
    want = [(10, 40), (20, 50), (30, 60), (70, 100), (80, 110), (90, 120)]
    assert styles(text) == [Style(color=grey(top), bgcolor=grey(bottom)) for top, bottom in want]


def test_an_odd_last_row_is_paired_with_black():
    text = render.digit(np.array([[1, 2], [3, 4], [255, 7]], dtype=np.uint8))
    assert text.plain == "▀▀\n▀▀"
    assert styles(text)[2:] == [Style(color=grey(255), bgcolor=grey(0)), Style(color=grey(7), bgcolor=grey(0))]


def test_an_mnist_digit_is_14_lines_of_28_characters(mnist_raw):
    text = render.digit(mnist_raw[2][0].reshape(28, 28))
    lines = text.plain.split("\n")
    assert len(lines) == 14 and {len(line) for line in lines} == {28} and set(text.plain) == {"▀", "\n"}
    # the drawn ink is the image's: the brightest foreground is the brightest pixel of an even row
    assert max(s.color.triplet.red for s in styles(text)) == mnist_raw[2][0].reshape(28, 28)[0::2].max()


def test_digit_rejects_a_flat_array():
    with pytest.raises(ValueError, match="2-D"):
        render.digit(np.zeros(784))


def test_caption_colours_right_and_wrong_and_flags_disagreement():
    agree = render.digit_caption(5, 3, {"analytic": 3, "alternate": 3})
    assert agree.plain.splitlines()[0] == "#5 true 3"
    assert "differ" not in agree.plain
    differ = render.digit_caption(5, 3, {"analytic": 3, "alternate": 8})
    lines = differ.plain.splitlines()
    assert "differ" in lines[0]
    assert lines[1].startswith("analytic") and lines[1].endswith("3")
    assert lines[2].startswith("alternate") and lines[2].endswith("8")
    console = Console()
    start_2, start_3 = differ.plain.index("analytic"), differ.plain.index("alternate")
    right, wrong = differ.get_style_at_offset(console, start_2), differ.get_style_at_offset(console, start_3)
    assert right.color.name == "green" and right.bold
    assert wrong.color.name == "red" and wrong.bold


# --- which digits --------------------------------------------------------------------

PREDS = {"analytic": np.array([1, 2, 3, 4, 5, 6]), "alternate": np.array([1, 9, 3, 4, 0, 6])}


def test_pick_first():
    idx, note = report.pick_digits(PREDS, 3, "first")
    assert idx.tolist() == [0, 1, 2] and note == ""


def test_pick_disagree_takes_the_differing_images_and_says_when_there_are_too_few():
    idx, note = report.pick_digits(PREDS, 3, "disagree")
    assert idx.tolist() == [1, 4]
    assert "only 2 of 6" in note


def test_pick_disagree_falls_back_to_first_when_the_methods_agree_everywhere():
    same = {"analytic": np.arange(6) % 10, "alternate": np.arange(6) % 10}
    idx, note = report.pick_digits(same, 4, "disagree")
    assert idx.tolist() == [0, 1, 2, 3]
    assert "same digit on all 6" in note and "first 4" in note


def test_pick_random_is_seeded_sorted_and_distinct():
    a, _ = report.pick_digits(PREDS, 4, "random", seed=3)
    b, _ = report.pick_digits(PREDS, 4, "random", seed=3)
    assert a.tolist() == b.tolist() == sorted(set(a.tolist())) and len(a) == 4
    assert report.pick_digits(PREDS, 50, "random")[0].tolist() == list(range(6))  # capped at the test set


def test_pick_rejects_an_unknown_choice():
    with pytest.raises(ValueError, match="first, disagree, random"):
        report.pick_digits(PREDS, 3, "best")


def test_parse_predictions_marks_a_diverged_run():
    assert report.parse_predictions("70-1").tolist() == [7, 0, -1, 1]


# --- compare --show-digits ------------------------------------------------------------


def test_compare_show_digits_json_lists_labels_and_each_methods_predictions(runner, mnist_raw):
    result = runner.invoke(cli, [*TINY_COMPARE, "--show-digits", "5", "--json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    digits = data["digits"]
    assert digits["indices"] == [0, 1, 2, 3, 4] and digits["seed"] == 0 and digits["from"] == "first"
    assert digits["labels"] == mnist_raw[3][:5].tolist()
    assert set(digits["predictions"]) == {"analytic", "alternate"}
    assert all(len(p) == 5 and all(0 <= d <= 9 for d in p) for p in digits["predictions"].values())


def test_compare_show_digits_draws_the_grid(runner):
    result = runner.invoke(
        cli, [*TINY_COMPARE, "--show-digits", "2", "--digits-from", "disagree"], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    # not a terminal, no colour: ASCII shades, not half blocks whose colours would be lost
    assert "▀" not in result.stdout and "@" in result.stdout
    assert len(result.stdout) < 6000
    assert "#0 true 7" in result.stdout and "#1 true 2" in result.stdout
    # 20 iterations of analytic and alternate give the same predictions: the fallback is said
    assert "showing the first 2 instead" in result.stderr


@pytest.mark.parametrize("color_system, env", [(None, {}), ("truecolor", {"NO_COLOR": "1"})])
def test_a_digit_without_colour_is_drawn_in_ascii_shades(mnist_raw, color_system, env, monkeypatch):
    import io

    for k, v in env.items():
        monkeypatch.setenv(k, v)
    image = mnist_raw[2][0].reshape(28, 28)
    console = Console(file=io.StringIO(), width=80, color_system=color_system, force_terminal=bool(color_system))
    console.print(render.DigitPicture(image))
    text = console.file.getvalue()
    lines = [line.rstrip("\n") for line in text.splitlines()]
    assert "▀" not in text and set("".join(lines)) <= set(render.SHADES) and len(lines) == 14
    assert render.shaded_digit(image).plain == "\n".join(lines)
    # the shade follows the ink: the brightest pair of pixels is drawn with the brightest character
    pairs = (image[0::2].astype(float) + image[1::2]) / 2
    r, c = np.unravel_index(pairs.argmax(), pairs.shape)
    assert lines[r][c] == render.SHADES[-1] and lines[0][0] == " "


def test_a_digit_in_colour_is_half_blocks(mnist_raw):
    import io

    console = Console(file=io.StringIO(), width=80, color_system="truecolor", force_terminal=True)
    console.print(render.DigitPicture(mnist_raw[2][0].reshape(28, 28)))
    assert console.file.getvalue().count("▀") == 14 * 28
