"""Per-image score files and the paired comparison of two runs, with hand-computed numbers."""

import numpy as np
import pytest

from benchmarks.intervals import bootstrap_mean_interval
from benchmarks.paired import check_pairing, paired_difference, paired_rows
from benchmarks.per_image import image_hashes, read_per_image, read_runs, write_per_image
from benchmarks.results import ResultsError

TRUTH = np.arange(4 * 2 * 2 * 3, dtype=np.uint8).reshape(4, 2, 2, 3)


def run(tmp_path, method, psnr, ssim, lpips=None, truth=TRUTH, dataset="inpaint"):
    """Write and read back one run's per-image CSV."""
    path = tmp_path / f"{dataset}-{method}.csv"
    write_per_image(path, dataset, method, truth, {"psnr": np.array(psnr, dtype=float),
                                                   "ssim": np.array(ssim, dtype=float),
                                                   "lpips": None if lpips is None else np.array(lpips, dtype=float)})
    return read_per_image(path)


def test_per_image_csv_round_trips_with_inf_and_a_skipped_metric(tmp_path):
    frame = run(tmp_path, "deft", [10.0, np.inf, 12.5, 1 / 3], [0.5, 1.0, 0.25, 0.125])
    assert frame["index"].tolist() == [0, 1, 2, 3] and frame["truth_sha256"].tolist() == image_hashes(TRUTH)
    assert frame["psnr"].tolist() == [10.0, np.inf, 12.5, 1 / 3] and frame["lpips"].isna().all()
    assert set(frame["file"]) == {str(tmp_path / "inpaint-deft.csv")}
    assert len(set(image_hashes(TRUTH))) == 4 and image_hashes(TRUTH[:1]) == image_hashes(TRUTH)[:1]


def test_per_image_files_are_checked(tmp_path):
    with pytest.raises(ResultsError, match="with 4 values each.*'ssim': 3"):
        write_per_image(tmp_path / "x.csv", "inpaint", "deft", TRUTH,
                        {"psnr": np.zeros(4), "ssim": np.zeros(3), "lpips": None})
    path = tmp_path / "bad.csv"
    path.write_text("dataset,method,index,truth_sha256,psnr,ssim,lpips\ninpaint,deft,1,ab,1.0,0.5,\n")
    with pytest.raises(ResultsError, match="'index' must run 0..0 in order"):
        read_per_image(path)
    path.write_text("dataset,method,index,truth_sha256,psnr,ssim,lpips\ninpaint,deft,0,ab,high,0.5,\n")
    with pytest.raises(ResultsError, match="column 'psnr' must hold numbers"):
        read_per_image(path)
    path.write_text("dataset,method,index,psnr\ninpaint,deft,0,1.0\n")
    with pytest.raises(ResultsError, match="expected"):
        read_per_image(path)
    run(tmp_path, "deft", [1, 2, 3, 4], [0, 0, 0, 0])
    with pytest.raises(ResultsError, match="both hold the per-image scores of deft on inpaint"):
        read_runs([tmp_path / "inpaint-deft.csv", tmp_path / "inpaint-deft.csv"])


def test_paired_difference_by_hand(tmp_path):
    """PSNR A = (10, 12, 14, +inf), B = (9, 12, 11, 13): the identical pair (index 3) is left out, the differences
    are (1, 0, 3), mean 4/3; their bootstrap interval is that of benchmarks.intervals and lies in [0, 3]."""
    a = run(tmp_path, "deft", [10, 12, 14, np.inf], [0.5, 0.6, 0.7, 0.8])
    b = run(tmp_path, "dps", [9, 12, 11, 13], [0.4, 0.6, 0.6, 0.8])
    difference = paired_difference(a, b, "psnr")
    assert (difference.mean, difference.n, difference.left_out) == (pytest.approx(4 / 3), 3, 1)
    assert (difference.low, difference.high) == bootstrap_mean_interval([1.0, 0.0, 3.0])
    assert 0 <= difference.low < 4 / 3 < difference.high <= 3 and difference.excludes_zero() == (difference.low > 0)
    assert paired_difference(a, b, "lpips") is None  # skipped in both


def test_pairing_cancels_the_spread_between_images(tmp_path):
    """B's scores spread 10 dB between images and A is B + 0.5 dB on every image: unpaired intervals of the two
    means overlap, but every paired difference is 0.5, so the paired interval is exactly [0.5, 0.5]."""
    base = [15.0, 25.0, 20.0, 30.0]
    a, b = run(tmp_path, "deft", np.add(base, 0.5), [0.5] * 4), run(tmp_path, "dps", base, [0.5] * 4)
    unpaired_a, unpaired_b = bootstrap_mean_interval(a["psnr"]), bootstrap_mean_interval(b["psnr"])
    assert unpaired_a[0] < unpaired_b[1]  # overlap
    difference = paired_difference(a, b, "psnr")
    assert (difference.mean, difference.low, difference.high) == pytest.approx((0.5, 0.5, 0.5))
    assert difference.excludes_zero() and not paired_difference(a, b, "ssim").excludes_zero()


def test_runs_pair_only_on_the_same_truth_images(tmp_path):
    a = run(tmp_path, "deft", [1, 2, 3, 4], [0, 0, 0, 0])
    other = TRUTH.copy()
    other[2, 0, 0, 0] += 1
    with pytest.raises(ResultsError, match=r"inpaint-deft.csv and .*inpaint-dps.csv have different truth images at 1 "
                                           r"indexes \(first 2\)"):
        check_pairing(a, run(tmp_path, "dps", [1, 2, 3, 4], [0, 0, 0, 0], truth=other))
    with pytest.raises(ResultsError, match="hold 4 and 3 images"):
        check_pairing(a, run(tmp_path, "ddrm", [1, 2, 3], [0, 0, 0], truth=TRUTH[:3]))
    with pytest.raises(ResultsError, match=r"score different datasets \(inpaint, sr4\)"):
        check_pairing(a, run(tmp_path, "deft", [1, 2, 3, 4], [0, 0, 0, 0], dataset="sr4"))


def test_paired_rows_name_the_baseline_and_the_score(tmp_path):
    run(tmp_path, "deft", [11, 12, 13, 14], [0.5, 0.6, 0.7, 0.8], lpips=[0.1, 0.2, 0.1, 0.2])
    run(tmp_path, "dps", [10, 12, 13, 12], [0.5, 0.6, 0.7, 0.8], lpips=[0.2, 0.2, 0.2, 0.2])
    runs = read_runs(sorted(tmp_path.glob("*.csv")))
    rows = {row["metric"]: row for row in paired_rows(runs, "deft")}
    assert set(rows) == {"psnr_diff", "ssim_diff", "lpips_diff"}
    assert {(row["method"], row["dataset"], row["n_samples"]) for row in rows.values()} == {("dps", "inpaint", 4)}
    assert rows["psnr_diff"]["value"] == pytest.approx(0.75)  # (1 + 0 + 0 + 2) / 4
    assert rows["lpips_diff"]["value"] == pytest.approx(-0.05) and rows["ssim_diff"]["value"] == 0.0
    assert rows["psnr_diff"]["note"] == ("95% interval: percentile bootstrap of the mean paired difference (image "
                                         "indices redrawn jointly) over the 4 images (2000 resamples, seed 0)")
    (tmp_path / "inpaint-deft.csv").unlink()
    with pytest.raises(ResultsError, match=r"no per-image scores of deft on inpaint, to pair with \['dps'\]"):
        paired_rows(read_runs(sorted(tmp_path.glob("*.csv"))), "deft")
