"""eignotes.course.summaries: the notebooks' templated summaries and the stored measurements they quote."""
import json

import pandas as pd
import pytest

from eignotes.course import experiments, summaries
from eignotes.course.experiments import summarize_study


def test_onecycle_rate_matches_the_recipes_scheduler():
    import torch

    from eignotes.training.stream import one_cycle

    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    sched = one_cycle(lr=1.0, n_epochs=60)(opt)
    for epoch in range(1, 61):
        assert summaries.onecycle_rate(epoch, 60) == pytest.approx(opt.param_groups[0]["lr"], abs=1e-12), epoch
        opt.step()
        sched.step()


def _write_results(folder, cut_val, full_val, cut_stop):
    def row(policy, vals, stops, schedule="one_cycle"):
        runs = [{"seed": i, "selection_rmse_dollars": v - 500, "assessment_rmse_dollars": v, "best_epoch": s - 5,
                 "epochs_run": s, "diverged": False} for i, (v, s) in enumerate(zip(vals, stops, strict=True))]
        return {"kind": "tridiagonal", "dim": 15, "epochs": 60, "policy": policy, "schedule": schedule,
                "runs": runs, "median_assessment_rmse_dollars": sorted(vals)[2],
                "median_selection_rmse_dollars": sorted(vals)[2] - 500}

    doc = {"meta": {"device": "a CPU", "date": "2026-12-01T00:00", "commit": "abc"},
           "rows": [row("onecycle+stop", cut_val, [cut_stop] * 5), row("onecycle full", full_val, [60] * 5),
                    row("constant+stop", full_val, [40] * 5, schedule=None)]}
    (folder / "2026-12-01_0000_schedule-stopping_a-cpu.json").write_text(json.dumps(doc))


def test_schedule_stopping_reads_the_newest_file_and_checks_the_claim(tmp_path):
    assert summaries.schedule_stopping(tmp_path) is None
    assert summaries.schedule_stopping_lines(None)[1] is None
    _write_results(tmp_path, [56000, 56100, 56200, 56300, 56400], [55000, 55100, 55200, 55300, 55400], 42)
    table = summaries.schedule_stopping(tmp_path)
    cut = table.set_index("policy").loc["onecycle+stop"]
    assert cut["median epochs run"] == 42
    assert cut["median rate at the stop"] == pytest.approx(summaries.onecycle_rate(42, 60))
    assert table.set_index("policy").loc["constant+stop", "median rate at the stop"] == 1.0
    lines, holds = summaries.schedule_stopping_lines(table)
    assert holds and "abc" in lines[0] and "tell them apart" in lines[-1]
    # the stop came late (the rate already below a tenth of its peak): the claim does not hold
    _write_results(tmp_path, [56000, 56100, 56200, 56300, 56400], [55000, 55100, 55200, 55300, 55400], 59)
    assert summaries.schedule_stopping_lines(summaries.schedule_stopping(tmp_path))[1] is False
    # the whole budget did worse on the held-out half than the stopped runs: the claim does not hold either
    _write_results(tmp_path, [55000, 55100, 55200, 55300, 55400], [56000, 56100, 56200, 56300, 56400], 42)
    assert summaries.schedule_stopping_lines(summaries.schedule_stopping(tmp_path))[1] is False


def _runs(converged_kinds=("tridiagonal",)):
    rows = []
    for model, dim, base, best in (("tridiagonal", 15, 55000, 50), ("tridiagonal", 45, 56000, 45),
                                   ("dense", 15, 54000, 40)):
        for seed in range(5):
            gain = 0.002 if model in converged_kinds else 0.02
            rows.append({"model": model, "dim": dim, "seed": seed, "epochs_run": 60, "epochs_max": 60,
                         "best_epoch": best if model == "tridiagonal" else 60,
                         "val_rmse_dollars": base + 10 * seed, "val_rmse_2x_dollars": (base + 10 * seed) * (1 - gain),
                         "gain_2x": gain, "converged": model in converged_kinds, "seconds_per_epoch": 0.01 * dim})
    return pd.DataFrame(rows)


def test_study_lines_rank_by_validation_and_test_only_the_chosen_setting():
    runs = _runs()
    summary = summarize_study(runs)
    assert "test_median" not in summary.columns  # the summary never holds test figures
    chosen = experiments.chosen_setting(summary)
    assert (chosen["model"], chosen["dim"]) == ("tridiagonal", 15)
    lines = summaries.study_lines(runs, summary, [55700.0, 55710.0, 55720.0, 55730.0, 55740.0])
    assert "converged (definition above): tridiagonal 15 (+0.2% at twice the budget)" in lines[0]
    assert "not converged: dense 15 (+2.0% at twice the budget)" in lines[0]
    assert lines[1].startswith("ranked by median validation RMSE: tridiagonal 15 $55,020, tridiagonal 45")
    assert "p = 0.00794" in lines[2] or "tell them apart" in lines[2]
    assert "chosen: tridiagonal dim 15" in lines[3] and "$55,720" in lines[3]
    assert sum("test RMSE" in line for line in lines) == 1
    assert "fitted exponent 1.00" in lines[-1]
    no_test = summaries.study_lines(runs, summary)
    assert not any("test" in line for line in no_test)


def test_study_lines_rank_at_the_budget_and_say_so_when_nothing_converged():
    runs = _runs(converged_kinds=())
    summary = summarize_study(runs)
    chosen = experiments.chosen_setting(summary)  # the lowest median among all, at this budget
    assert (chosen["model"], chosen["dim"]) == ("dense", 15)
    lines = summaries.study_lines(runs, summary)
    assert "converged (definition above): none" in lines[0]
    assert lines[1].startswith("no setting converged: ranked as models trained at this budget (dense 60 epochs, "
                               "tridiagonal 60 epochs)")
    assert lines[2].startswith("the same runs at twice the budget, by median validation RMSE: dense 15 $52,")
    assert any(line.startswith("chosen at this budget: dense dim 15") for line in lines)


def test_convergence_rule_reads_the_curve_only_where_the_schedule_lets_it():
    still_falling = [60_000 - 1 * i for i in range(100)]  # best at its last epoch: 0.16% over the last tenth
    stopped = [60_000 - 100 * i for i in range(63)] + [53_900] * 10  # early stopping: ten epochs with no new best
    blip = [60_000 - 100 * i for i in range(63)] + [53_900] * 9 + [53_700]  # a new best in the last tenth
    assert not experiments.converged(still_falling, 100)  # slow is not flat: the budget ended it
    assert experiments.converged(stopped, 100)
    assert not experiments.converged(blip, 100)
    assert experiments.epochs_since_best(stopped) == 10 and experiments.epochs_since_best(blip) == 0
    # one-cycle: the curve flattens whatever the budget, so only the runs with twice the budget can tell
    assert experiments.budget_enough(59_901, 59_901 * 0.996)
    assert not experiments.budget_enough(59_901, 59_901 * 0.994)
    assert experiments.budget_enough(59_901, 59_901 * 0.98, tol=0.03)


def test_scaling_study_trains_one_cycle_settings_again_at_twice_the_budget():
    from eignotes.training import data as hdata

    small = hdata.prepare_housing(seed=0).head(300)
    runs = experiments.scaling_study([("tridiagonal", 3), ("dense", 3)], seeds=[0, 1], epochs=2, data=small,
                                     show_progress=False)
    tri, dense = runs[runs["model"] == "tridiagonal"], runs[runs["model"] == "dense"]
    assert tri["val_rmse_2x_dollars"].notna().all() and dense["val_rmse_2x_dollars"].isna().all()
    assert (tri["gain_2x"] == (tri["val_rmse_dollars"] - tri["val_rmse_2x_dollars"]) / tri["val_rmse_dollars"]).all()
    assert tri["converged"].isna().all()  # a one-cycle run's verdict is its setting's (median over seeds)
    assert dense["converged"].map(type).eq(bool).all()  # a constant-rate run's, its own curve's
    summary = summarize_study(runs).set_index("model")
    assert summary.loc["tridiagonal", "converged"] is None  # two seeds: fewer than the rule judges
    first = summaries.study_lines(runs, summary.reset_index())[0]
    assert "not judged (fewer than 5 seeds): tridiagonal 3" in first and "not converged: dense 3" in first
    # the doubled runs are those seeds trained alone with twice the budget
    from eignotes.training import recipes

    alone = recipes.fit_runs("tridiagonal", small, dim=3, epochs=4, seeds=[1], read_test=False)
    assert tri["val_rmse_2x_dollars"].iloc[1] == pytest.approx(alone[0][2]["best_val_rmse_dollars"], rel=1e-5)


def test_alpha_lines_compare_five_with_a_tenth():
    runs = pd.DataFrame([{"alpha": a, "seed": s, "auc_val_rmse": base + s, "test_rmse": base + 600 + s}
                         for a, base in ((0.001, 58000), (0.1, 57000), (5.0, 56000), (25.0, 56500))
                         for s in range(5)])
    table = runs.groupby("alpha").agg(auc_median=("auc_val_rmse", "median")).reset_index()
    lines = summaries.alpha_lines(runs, table)
    assert lines[0].startswith("alphas by median area under the validation curve, lowest first: 5")
    assert lines[1].startswith("area, alpha 5 against 25: p = 0.0476 <= 0.05")
    assert lines[2].startswith("area, alpha 5 against 0.1")
    assert lines[3].startswith("area, alpha 0.1 against 0.001: p = 0.0476") and len(lines) == 4
    assert not any("test" in line for line in lines)
    pair = summaries.alpha_lines(runs[runs["alpha"] < 1], table[table["alpha"] < 1])  # 0.1 and 0.001 are the top two
    assert len(pair) == 2 and pair[1].startswith("area, alpha 0.1 against 0.001")


def test_stored_training_figures_read_the_seconds_and_leave_the_mixed_ratio_out(tmp_path):
    doc = {"meta": {"device": "x86_64 CPU, 2 threads"},
           "results": [{"suite": "runs", "case": "dense, 4 runs", "label": "4 runs together", "median_s": 1.5,
                        "ratio": 0.37},
                       {"suite": "dense", "case": "forward", "label": "not a training row", "median_s": 0.1}]}
    (tmp_path / "2026-01-01_0000_x86-64-cpu-2-threads_training-runs.json").write_text(json.dumps(doc))
    table = summaries.stored_training_figures(tmp_path)
    assert list(table.columns) == ["file", "device", "case", "variant", "seconds per epoch (median)"]
    assert table["seconds per epoch (median)"].tolist() == [1.5]
    assert summaries.stored_training_figures(tmp_path / "empty") is None


def test_a_one_cycle_setting_is_judged_by_its_median_over_seeds():
    """One seed's best moves by a percent or two between budgets by luck: the setting's verdict compares medians."""
    base = [54_000, 54_500, 55_000, 55_500, 56_000]
    twice = [52_900, 54_480, 54_990, 55_480, 57_500]  # three seeds within 0.5%, yet the median fell 0.04%
    runs = pd.DataFrame([{"model": "tridiagonal", "dim": 15, "seed": s, "val_rmse_dollars": b,
                          "val_rmse_2x_dollars": t, "gain_2x": (b - t) / b, "converged": (b - t) / b <= 0.005,
                          "seconds_per_epoch": 0.1} for s, (b, t) in enumerate(zip(base, twice, strict=True))])
    row = summarize_study(runs).iloc[0]
    assert row["val_2x_median"] == 54_990 and row["gain_2x"] == pytest.approx(10 / 55_000)
    assert bool(row["converged"])
    worse = runs.assign(val_rmse_2x_dollars=[b * 0.99 for b in base])  # every seed 1% better at twice the budget
    assert not bool(summarize_study(worse).iloc[0]["converged"])
    assert summarize_study(runs.iloc[:4]).iloc[0]["converged"] is None  # four seeds: not judged
    assert experiments.setting_budget(base[:4], twice[:4])[0] is None
    ok, gain = experiments.setting_budget(base, twice)
    assert ok and gain == pytest.approx(10 / 55_000)


def test_tridiagonal_vs_lapack_solves_the_same_task_as_scipy():
    out = experiments.tridiagonal_vs_lapack(8, 12, min_run_time=0.01)
    assert out["max abs difference"] < 1e-5  # float32 against LAPACK's float32 bisection, |entries| of order 1
    timings = [v for k, v in out.items() if k != "max abs difference"]
    assert len(timings) == 2 and all(t.median > 0 for t in timings)
    assert any(k.startswith("LAPACK stebz") for k in out)


def test_tridiagonal_speed_times_the_shared_point_once_and_skips_big_dense_runs():
    speed = experiments.tridiagonal_speed([4, 8], [16, 32], "cpu", min_run_time=0.01, dense_max_elems=32 * 8 * 8 - 1)
    tri = next(k for k in speed["vs n"] if k.startswith("tridiagonal"))
    assert speed["vs n"][tri][0] == [4, 8] and speed["vs B"][tri][0] == [16, 32]
    assert speed["vs n"][tri][1][-1] == speed["vs B"][tri][1][-1]  # (32, 8): one measurement, reported twice
    dense_n = speed["vs n"]["dense torch.linalg.eigh"][0]
    assert dense_n == [4] and all(t > 0 for t in speed["vs n"][tri][1])  # (32, 8) is over the dense limit
    iqr = speed["IQR vs n"][tri]
    assert iqr[0] == [4, 8] and all(0 <= q < 10 * t for q, t in zip(iqr[1], speed["vs n"][tri][1], strict=True))
    assert speed["IQR vs n"]["dense torch.linalg.eigh"][0] == [4]
