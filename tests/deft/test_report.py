"""DEFT's report CLI: Table 1 against its committed snapshot (bold only where an interval tells the best from the
rest), the paired table, and --help."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from benchmarks.per_image import write_per_image
from benchmarks.results import ResultsError
from deft import paired, report

DATA = Path(__file__).resolve().parents[1] / "data"
PER_IMAGE = sorted(str(path) for path in (DATA / "deft_per_image").glob("*.csv"))


def table_args(out_dir, *extra) -> list[str]:
    return ["table", "--results", str(DATA / "deft_results.csv"), "--layout", "deft", "--out-dir", str(out_dir),
            "--methods", "dps,reddiff,deft", *extra]


def test_table_matches_the_committed_snapshot(tmp_path):
    """inpaint: DEFT's PSNR lead over RED-diff and RED-diff's SSIM lead over DEFT flip sign from image to image, and
    the KID intervals overlap, so nothing is bold; sr4: DEFT beats DPS on every image and the KID intervals are apart,
    so DEFT is bold throughout. Costs are never bold."""
    report.main(table_args(tmp_path, "--per-image", *PER_IMAGE))
    markdown = (tmp_path / "deft_main.md").read_text()
    assert markdown == (DATA / "deft_main.md").read_text()
    assert "| inpaint | dps | 21.10 ± 0.14 | 0.698 ± 0.004 |" in markdown and "**" not in markdown.split("| sr4 |")[0]
    assert "|  | deft | **26.50** | **0.801** | **0.210** | **1.10**[^2] | 100 | — | — | — | 4.1 |" in markdown
    latex = (tmp_path / "deft_main.tex").read_text()
    assert latex.startswith(r"\begin{table}") and r"\caption{" in latex
    assert r"\textbf{0.210}" in latex  # the lowest LPIPS


def test_without_per_image_scores_psnr_ssim_and_lpips_are_not_bold(tmp_path):
    report.main(table_args(tmp_path))
    markdown = (tmp_path / "deft_main.md").read_text()
    assert "|  | deft | 26.50 | 0.801 | 0.210 | **1.10**[^2] |" in markdown
    assert "PSNR, SSIM and LPIPS are not marked (no per-image scores were given)" in markdown


def test_per_image_scores_of_other_truth_images_are_refused(tmp_path):
    truth = np.arange(8 * 4 * 4 * 3, dtype=np.uint8).reshape(8, 4, 4, 3) + 1  # the fixture's sr4 truth images
    truth[5, 0, 0, 0] += 1  # but one pixel of one image
    values = np.linspace(20, 27, 8)
    write_per_image(tmp_path / "dps.csv", "sr4", "dps", truth, {"psnr": values, "ssim": values / 30, "lpips": None})
    with pytest.raises(ResultsError, match=r"sr4-deft.csv and .*dps.csv have different truth images at 1 indexes "
                                           r"\(first 5\)"):
        report.main(table_args(tmp_path, "--per-image", str(DATA / "deft_per_image/sr4-deft.csv"),
                               str(tmp_path / "dps.csv")))


def test_paired_rows_and_table(tmp_path):
    """sr4: DEFT − DPS per image is 1.4 ± 0.2 dB (PSNR), 0.011 ± 0.002 (SSIM) and −0.04 (LPIPS) on all 8 images."""
    out = tmp_path / "deft_paired.csv"
    paired.main(["--per-image", *PER_IMAGE, "--scale", "mini", "--out", str(out)])
    report.main(["table", "--results", str(out), "--layout", "paired", "--out-dir", str(tmp_path)])
    markdown = (tmp_path / "deft_paired.md").read_text()
    assert "| sr4 | dps | **+1.40 [+1.25, +1.55]** | **+0.011 [+0.010, +0.013]** | **-0.040 [-0.040, -0.040]** | 8 |" \
        in markdown
    # inpaint: DEFT − RED-diff flips sign from image to image: +0.25 dB, not told from a tie, so not bold.
    assert "| inpaint | dps | **+3.10 [+2.50, +3.70]** | **+0.117 [+0.109, +0.124]** | —[^1] | 8 |" in markdown
    assert "|  | reddiff | +0.25 [-0.35, +0.85] | -0.003 [-0.011, +0.005] | —[^1] | 8 |" in markdown
    assert "[^1]: lpips skipped: a run has no finite per-image values" in markdown
    assert "[low, high]: 95% intervals, percentile bootstrap of the mean paired difference" in markdown
    assert (tmp_path / "deft_paired.tex").read_text().startswith(r"\begin{table}")


@pytest.mark.parametrize("argv", [["--help"], ["table", "--help"]])
def test_help(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        report.main(argv)
    assert exit_info.value.code == 0 and "usage:" in capsys.readouterr().out


def test_caption_states_total_times_on_the_test_images_and_at_the_papers_count():
    rows = pd.DataFrame([{"dataset": "sr4", "method": m, "metric": k, "value": v, "n_samples": 100}
                         for m, k, v in (("deft", "time_train_s", 300.0), ("deft", "time_sample_s", 50.0),
                                         ("deft", "time_total_s", 350.0), ("dps", "time_sample_s", 370.0),
                                         ("dps", "time_total_s", 370.0))])
    caption = report.time_ratios(rows)
    assert "on the test images: sr4: dps 1.1×." in caption
    assert "At the paper's count of 1000 images (training + the sampling time scaled): sr4: dps 4.6×." in caption
