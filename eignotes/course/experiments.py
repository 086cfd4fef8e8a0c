"""The experiments the notebooks run, importable without side effects; the CLIs and the bench call them too.

- warmup_eigvalsh, sweep_n, growth_exponents, stored_gpu_warmup: the blog's warm-up (full eigvalsh of a batch)
  with every library that runs here, its time against n and how fast that grows, and the GPU figures of a
  committed results file for machines without a GPU (notebook 01);
- autograd_comparison, saved_bytes: inference and training time and the memory kept for backward of k-th
  eigenvalue functions side by side (notebook 03);
- gradient_boosting_baseline: a measured non-spectral baseline on the same split (notebook 04);
- hard_tridiagonal_cases, tridiagonal_accuracy, tridiagonal_speed, tridiagonal_vs_lapack: the tridiagonal kernels on
  hard inputs and their speed against n and the batch size, and against LAPACK's tridiagonal solver (notebook 05);
- epoch_seconds: seconds per training epoch of the blog's models, eignotes' op against torch.linalg (notebook 04);
- scaling_study, summarize_study: many seeds of many (model, dim), the validation-selected model of each run, and
  per setting the median and IQR of its validation RMSE (what settings are ranked by) and of its test RMSE
  (notebook 06).
"""
from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from ..bench.timing import Timing, cupy_usable, random_symmetric, time_interleaved
from ..linalg import kth_eigvalsh_tridiagonal, tridiagonal_backends, tridiagonal_to_dense
from ..training import recipes
from ..training import stream as st
from ..training.data import HousingData, prepare_housing

if TYPE_CHECKING:
    import pandas as pd


def warmup_eigvalsh(B: int, n: int, device: torch.device, dtype: torch.dtype = torch.float32,
                    min_run_time: float = 0.5, with_eignotes: bool = True, slow_s: float | None = None) -> list[Timing]:
    """The blog's warm-up: full eigvalsh of a (B, n, n) batch with each library that can run here.

    On the CPU, `with_eignotes` adds eignotes' own op (its numba backend) twice: for all n eigenvalues (the same
    task as the others) and for the k = n // 2 one only (what a model needs). On a GPU the CuPy row is the
    computation eignotes' op runs there. slow_s: a variant whose warm call takes longer is timed once
    (`eignotes.bench.timing.time_interleaved`; its Timing then says repeats=1), so that one pathologically slow library
    (a busy machine, a GPU loop over the matrices) does not hold the run for minutes.
    """
    fns = _eigvalsh_fns(random_symmetric(B, n, dtype, device), device, with_eignotes)
    return list(time_interleaved(fns, min_run_time=min_run_time * len(fns), slow_s=slow_s).values())


def _eigvalsh_fns(A: torch.Tensor, device: torch.device, with_eignotes: bool = True) -> dict[str, Callable[[], object]]:
    """The warm-up's callables for one batch A: {label: fn} (see `warmup_eigvalsh`)."""
    n = A.shape[-1]
    if device.type == "cpu":
        An = A.numpy()
        fns: dict[str, Callable[[], object]] = {"torch CPU": lambda: torch.linalg.eigvalsh(A),
                                                "NumPy CPU": lambda: np.linalg.eigvalsh(An)}
        if with_eignotes:
            from ..linalg import kth_eigvalsh

            every = list(range(n))
            fns["eignotes CPU, all n"] = lambda: kth_eigvalsh(A, every)
            fns["eignotes CPU, k-th only"] = lambda: kth_eigvalsh(A, n // 2)
        return fns
    fns = {"torch CUDA": lambda: torch.linalg.eigvalsh(A)}
    if cupy_usable(device):
        from ..linalg import _cupy

        fns["CuPy (DLPack)"] = lambda: _cupy.eigvalsh(A, True)
    return fns


def sweep_n(ns: Iterable[int], B: int, device: torch.device, dtype: torch.dtype = torch.float32,
            min_run_time: float = 0.2, with_eignotes: bool = True,
            slow_s: float | None = None) -> dict[str, tuple[list[int], list[float]]]:
    """Full eigvalsh time against n: the rows of `warmup_eigvalsh` at each n. Returns {label: (ns, seconds)}."""
    series = {}
    for n in ns:
        for t in warmup_eigvalsh(B, n, device, dtype, min_run_time=min_run_time, with_eignotes=with_eignotes,
                                 slow_s=slow_s):
            series.setdefault(t.label, ([], []))
            series[t.label][0].append(n)
            series[t.label][1].append(t.median)
    return series


def step_check(a: int, b: int, B: int, device: torch.device, dtype: torch.dtype = torch.float32,
               min_run_time: float = 0.2, slow_s: float | None = None) -> dict[str, dict[str, float]]:
    """A step in time between n = a and n = b (a sweep's segment), re-timed so that the machine cannot make it: the
    rows of `warmup_eigvalsh` at both sizes in one alternating run (each round times every library at a, then at
    b), so a slow moment hits both sizes alike. Returns {label: {"ratio": median at b / median at a, "iqr_a",
    "iqr_b": the spreads as fractions of their medians, "repeats": the fewer samples of the two sizes (a call
    slower than slow_s is timed once)}}; a step larger than both spreads is the codes', not the moment's."""
    fns = {}
    for n in (a, b):
        A = random_symmetric(B, n, dtype, device)
        for label, fn in _eigvalsh_fns(A, device).items():
            fns[f"{label} @ {n}"] = fn
    t = time_interleaved(fns, min_run_time=min_run_time * len(fns), slow_s=slow_s)
    out = {}
    for key in fns:
        label, n = key.rsplit(" @ ", 1)
        if int(n) == a:
            ta, tb = t[key], t[f"{label} @ {b}"]
            out[label] = {"ratio": tb.median / ta.median, "iqr_a": ta.iqr / ta.median, "iqr_b": tb.iqr / tb.median,
                          "repeats": min(ta.repeats, tb.repeats)}
    return out


# Fewer samples than this at either size give no spread to judge a step by (a call timed once has an IQR of 0).
MIN_STEP_REPEATS = 3


def real_steps(check: dict[str, dict[str, float]], a: int, b: int) -> dict[str, bool]:
    """Which series of a `step_check` step beyond the cube law by more than their timings' spread: ratio above
    (b / a)^3 (1 + the larger relative IQR of the two sizes), from at least MIN_STEP_REPEATS samples at each size
    (where "repeats" is given). {label: True where the step is the codes'}.

    >>> real_steps({"x": {"ratio": 1.5, "iqr_a": 0.1, "iqr_b": 0.05}, "y": {"ratio": 1.15, "iqr_a": 0.1, "iqr_b": 0.1}},
    ...            32, 33)
    {'x': True, 'y': False}
    """
    cube = (b / a) ** 3
    return {label: r.get("repeats", MIN_STEP_REPEATS) >= MIN_STEP_REPEATS
            and r["ratio"] > cube * (1 + max(r["iqr_a"], r["iqr_b"])) for label, r in check.items()}


def step_lines(check: dict[str, dict[str, float]], a: int, b: int) -> list[str]:
    """Notebook 01's reading of a re-timed step (`step_check`): one line per series, then the verdict.

    >>> check = {"x": {"ratio": 1.5, "iqr_a": 0.1, "iqr_b": 0.05}, "y": {"ratio": 1.05, "iqr_a": 0.1, "iqr_b": 0.1}}
    >>> print(step_lines(check, 32, 33)[-1])
    n = 32 to 33: a step of x on this machine, its cause not measured here
    """
    real = real_steps(check, a, b)
    lines = [f"  re-timed, n = {a} and {b} alternating: {label} x{r['ratio']:.2f} (cube law x{(b / a) ** 3:.2f}, "
             f"spread {100 * max(r['iqr_a'], r['iqr_b']):.0f}%): "
             + ("a step of the code" if real[label] else
                "too few samples to tell (timed once: slow at this size)"
                if r.get("repeats", MIN_STEP_REPEATS) < MIN_STEP_REPEATS else "within the cube law and the spread")
             for label, r in check.items()]
    steps = [label for label, is_step in real.items() if is_step]
    lines.append(f"n = {a} to {b}: " + (f"a step of {', '.join(steps)} on this machine, its cause not measured here"
                                        if steps else "not reproduced when re-timed: the sweep's jump was the "
                                        "machine's moment, not the codes'"))
    return lines


def segment_reading(xs: Sequence[float], ts: Sequence[float], expected: float = 1.0) -> str:
    """Each segment's slope on log-log axes, read against the expected growth t ~ x^expected: below half of it a
    fixed cost still dominates, up to 1.3 times it the expected growth, above that more than the expected work grew
    there (a cache outgrown, a change of strategy; the cause is not measured by a timing).

    >>> for part in segment_reading([15, 45, 100, 200], [1.0, 1.2, 3.0, 10.6]).split("; "):
    ...     print(part)
    n = 15 to 45: slope 0.17 (a fixed cost dominates)
    n = 45 to 100: slope 1.15 (about the expected)
    n = 100 to 200: slope 1.82 (steeper than expected: more than the arithmetic grew there, cause not measured here)
    """
    parts = []
    for a, b, ta, tb in zip(xs, xs[1:], ts, ts[1:], strict=False):
        p = float(np.log(tb / ta) / np.log(b / a))
        what = ("a fixed cost dominates" if p < expected / 2 else "about the expected" if p <= 1.3 * expected
                else "steeper than expected: more than the arithmetic grew there, cause not measured here")
        parts.append(f"n = {a} to {b}: slope {p:.2f} ({what})")
    return "; ".join(parts)


def growth_exponents(series: dict[str, tuple[Sequence[float], Sequence[float]]]) -> pd.DataFrame:
    """How fast each timing series grows with x: the time ratio from the smallest to the largest x, the ratio a
    cube law would give, and the exponent p of the least-squares fit t ~ c x^p on log-log axes (over all points and
    over the two largest x, where the leading term dominates most).

    >>> row = growth_exponents({"cube": ([10, 20, 40], [1.0, 8.0, 64.0])}).iloc[0]
    >>> float(row["time ratio"]), float(row["cube-law ratio"]), round(float(row["fitted exponent"]), 6)
    (64.0, 64.0, 3.0)
    """
    import pandas as pd

    rows = []
    for label, (xs, ts) in series.items():
        lx, lt = np.log(np.asarray(xs, dtype=float)), np.log(np.asarray(ts, dtype=float))
        p = float(np.polyfit(lx, lt, 1)[0]) if len(xs) > 1 else float("nan")
        tail = float((lt[-1] - lt[-2]) / (lx[-1] - lx[-2])) if len(xs) > 1 else float("nan")
        rows.append({"series": label, "x from": xs[0], "x to": xs[-1], "time ratio": float(ts[-1] / ts[0]),
                     "cube-law ratio": float((xs[-1] / xs[0]) ** 3), "fitted exponent": p,
                     "exponent, two largest x": tail})
    return pd.DataFrame(rows)


RESULTS_DIR = Path(__file__).resolve().parents[2] / "benchmarks" / "results"
# The committed GPU results the warm-up quotes, both JSON: an H100 benchmark run (its (500, 100) forward rows) and
# the n = 32 / 33 sweep at batch 64 of an H100 GPU check (sweep_n([32, 33], 64, cuda), benchmarks/gpu_check.sh).
GPU_WARMUP_FILE = "2026-11-27_1936_nvidia-h100-80gb-hbm3_dense-tridiagonal.json"
GPU_SWEEP_FILE = "2026-11-28_0406_nvidia-h100-80gb-hbm3_warmup-sweep.json"


def stored_gpu_warmup(results_dir: str | Path | None = None) -> pd.DataFrame | None:
    """The GPU figures of the warm-up as stored in committed JSON results files (not measured by this call): full
    eigvalsh of 500 x 100 x 100 float32 by torch and CuPy, and the n = 32 / 33 step at batch 64, with the device,
    date, file and commit ("unknown" where the file predates provenance recording) of each figure. None where the
    files are absent (an installed package has no benchmarks/)."""
    import pandas as pd

    folder = Path(results_dir) if results_dir is not None else RESULTS_DIR
    bench, sweep = folder / GPU_WARMUP_FILE, folder / GPU_SWEEP_FILE
    if not (bench.exists() and sweep.exists()):
        return None
    names = {"torch.linalg.eigvalsh": "torch CUDA (all eigenvalues)",
             "blog CuPy function": "CuPy, batched (all eigenvalues)",
             "kth_eigvalsh[cupy]": "eignotes, cupy backend (all, then one)",
             "torch CUDA": "torch CUDA (all eigenvalues)", "CuPy (DLPack)": "CuPy, batched (all eigenvalues)"}
    rows = []
    for path in (bench, sweep):
        doc = json.loads(path.read_text())
        meta = doc["meta"]
        source = {"device": meta["device_name"], "date": meta["date"][:10], "file": path.name,
                  "commit": meta.get("commit", "unknown")}
        for r in doc["results"]:
            if path == bench:
                if not (r["suite"] == "dense" and r["case"] == "forward" and tuple(r["shape"]) == (500, 100)
                        and r["dtype"] == "float32" and r["label"] in names):
                    continue
                batch, n = r["shape"]
            else:
                batch, n = r["batch"], r["n"]
            rows.append({**source, "batch": batch, "n": n, "what": names[r["label"]],
                         "median (ms)": r["median_s"] * 1e3, "timed calls": r["repeats"]})
    out = pd.DataFrame(rows)
    out["timed calls"] = out["timed calls"].astype("Int64")
    return out


def hard_tridiagonal_cases() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Named (diag, offdiag) float64 NumPy pairs that stress a tridiagonal eigensolver."""
    rng = np.random.default_rng(7)
    wd = np.abs(np.arange(-10, 11.0))
    we = np.ones(20)
    return {
        "random n=50": (rng.standard_normal(50), rng.standard_normal(49)),
        "Wilkinson W21+ (close pairs)": (wd, we),
        "Wilkinson W21-": (np.arange(-10, 11.0), we),
        "glued W21+ x3 (glue 1e-12)": (np.tile(wd, 3), np.concatenate([we, [1e-12], we, [1e-12], we])),
        "zero off-diagonal (repeated)": (np.array([1.0, 2, 1, 2, 1, 2]), np.zeros(5)),
        "entries ~1e-30": (rng.standard_normal(9) * 1e-30, rng.standard_normal(8) * 1e-30),
        "entries ~1e30": (rng.standard_normal(9) * 1e30, rng.standard_normal(8) * 1e30),
        "n=1": (np.array([3.5]), np.zeros(0)),
        "n=2": (np.array([1.0, -1.0]), np.array([2.0])),
    }


def _precise_eigenvalues(d: np.ndarray, e: np.ndarray, digits: int = 40) -> np.ndarray:
    """The eigenvalues of the tridiagonal (d, e), ascending, computed with `digits` significant digits, rounded to
    float64."""
    import mpmath

    n = len(d)
    with mpmath.workdps(digits):
        T = mpmath.zeros(n, n)
        for i in range(n):
            T[i, i] = mpmath.mpf(float(d[i]))
        for i in range(n - 1):
            T[i, i + 1] = T[i + 1, i] = mpmath.mpf(float(e[i]))
        values = mpmath.eigsy(T, eigvals_only=True)
        return np.array(sorted(float(v) for v in values))


def tridiagonal_accuracy(backends: Sequence[str] | None = None,
                         dtypes: Sequence[torch.dtype] = (torch.float64, torch.float32),
                         device: torch.device | str = "cpu") -> list[dict[str, str | int | float]]:
    """Max eigenvalue error over all k, in units of eps * ||T||, against eigenvalues computed with 40 significant
    digits (mpmath's symmetric eigensolver): a reference far more precise than float64, so that the float64 column
    measures the kernels, not the reference (LAPACK's float64 bisection errs by up to about one unit itself)."""
    device = torch.device(device)
    avail = tridiagonal_backends(device)
    # Interpreted Triton (TRITON_INTERPRET=1 without a GPU) is a test device, far too slow for a table.
    backends = backends or [b for b in ("torch", "numba", "triton")
                            if avail[b] and not (b == "triton" and device.type == "cpu")]
    rows = []
    for name, (d, e) in hard_tridiagonal_cases().items():
        ref = _precise_eigenvalues(d, e)
        norm = max(np.abs(ref).max(), np.finfo(float).tiny)
        row = {"case": name, "n": len(d)}
        for dtype in dtypes:
            if dtype == torch.float32 and not (1e-37 < np.abs(d).max() < 1e37):
                for b in backends:
                    row[f"{b} {str(dtype)[6:]}"] = float("nan")  # not representable in float32
                continue
            for b in backends:
                dev = torch.device("cpu") if b == "numba" else device
                got = kth_eigvalsh_tridiagonal(
                    torch.tensor(d, dtype=dtype, device=dev), torch.tensor(e, dtype=dtype, device=dev),
                    list(range(len(d))), backend=b,
                ).double().cpu().numpy()
                row[f"{b} {str(dtype)[6:]}"] = float(np.abs(got - ref).max() / (torch.finfo(dtype).eps * norm))
        rows.append(row)
    return rows


def tridiagonal_speed(ns: Sequence[int], Bs: Sequence[int], device: torch.device | str,
                      dtype: torch.dtype = torch.float32, min_run_time: float = 0.2,
                      dense_max_elems: float = 2e8,
                      slow_s: float = 1.0) -> dict[str, dict[str, tuple[list[int], list[float]]]]:
    """Forward+backward time of the tridiagonal op and of dense eigh autograd on the same matrices.

    Returns {"vs n": {label: (ns, s)}, "vs B": {label: (Bs, s)}} with B = max(Bs) for the n sweep and n = max(ns)
    for the B sweep (medians), and "IQR vs n", "IQR vs B" in the same shape: each median's interquartile range.
    Dense runs are skipped where B * n * n exceeds dense_max_elems (memory and patience). At each point the two are
    timed in alternating rounds (time_interleaved; a dense call slower than slow_s seconds is timed once), and the
    point both sweeps share, (max(Bs), max(ns)), is timed once and reported in both.
    """
    device = torch.device(device)
    avail = tridiagonal_backends(device)
    backend = "triton" if device.type == "cuda" and avail["triton"] else ("numba" if avail["numba"] else "torch")
    cache: dict[tuple[int, int], dict[str, float]] = {}

    def one(B, n):
        if (B, n) in cache:
            return cache[(B, n)]
        g = torch.Generator().manual_seed(0)
        d = torch.randn(B, n, generator=g, dtype=dtype).to(device)
        e = torch.randn(B, n - 1, generator=g, dtype=dtype).to(device)

        def tri():
            dd, ee = d.detach().requires_grad_(), e.detach().requires_grad_()
            kth_eigvalsh_tridiagonal(dd, ee, n // 2, backend=backend).sum().backward()

        fns: dict[str, Callable[[], object]] = {f"tridiagonal [{backend}]": tri}
        if B * n * n <= dense_max_elems:
            T = tridiagonal_to_dense(d, e)

            def dense():
                X = T.detach().requires_grad_()
                torch.linalg.eigh(X)[0][:, n // 2].sum().backward()

            fns["dense torch.linalg.eigh"] = dense
        timed = time_interleaved(fns, min_run_time=min_run_time * len(fns), slow_s=slow_s)
        cache[(B, n)] = timed
        return timed

    out = {"vs n": {}, "vs B": {}, "IQR vs n": {}, "IQR vs B": {}}
    for key, xs, make in (("vs n", ns, lambda x: (max(Bs), x)), ("vs B", Bs, lambda x: (x, max(ns)))):
        for x in xs:
            for label, t in one(*make(x)).items():
                for k, v in ((key, t.median), (f"IQR {key}", t.iqr)):
                    out[k].setdefault(label, ([], []))
                    out[k][label][0].append(x)
                    out[k][label][1].append(v)
    return out


def tridiagonal_vs_lapack(B: int, n: int, *, dtype: torch.dtype = torch.float32,
                          min_run_time: float = 0.2) -> dict[str, Timing | float]:
    """The tridiagonal op's forward (the middle eigenvalue, k = n // 2, no gradient) against LAPACK's own
    tridiagonal solver on the CPU: SciPy's `eigh_tridiagonal(select="i")` (bisection for the one eigenvalue, stebz),
    one matrix per call over the batch, as a program without a batched tridiagonal solver would call it. Timed in
    alternating rounds (time_interleaved) on the same random (B, n) matrices; returns {label: Timing} and
    "max abs difference", the largest difference between the two answers (a check that both solved the same task)."""
    import numpy as np
    from scipy.linalg import eigh_tridiagonal

    g = torch.Generator().manual_seed(0)
    d = torch.randn(B, n, generator=g, dtype=dtype)
    e = torch.randn(B, n - 1, generator=g, dtype=dtype)
    k = n // 2
    dn, en = d.numpy(), e.numpy()
    avail = tridiagonal_backends(torch.device("cpu"))
    backend = "numba" if avail["numba"] else "torch"

    def ours():
        with torch.no_grad():
            return kth_eigvalsh_tridiagonal(d, e, k, backend=backend)

    def lapack():
        return np.array([eigh_tridiagonal(dn[b], en[b], eigvals_only=True, select="i", select_range=(k, k))[0]
                         for b in range(B)])

    diff = float(np.abs(ours().double().numpy() - lapack()).max())
    timed = time_interleaved({f"tridiagonal [{backend}], forward": ours,
                              "LAPACK stebz via SciPy, one matrix per call": lapack},
                             min_run_time=2 * min_run_time, slow_s=1.0)
    return {**timed, "max abs difference": diff}


def reduction_layouts(ns: Sequence[int], B: int, *, dtype: torch.dtype = torch.float32, lanes: int = 64,
                      min_run_time: float = 0.2) -> pd.DataFrame:
    """Microseconds per matrix to reduce B random symmetric (n, n) matrices to tridiagonal form on the CPU with the
    dense backend's two kernels, timed in alternating rounds: one matrix at a time (each thread takes whole
    matrices; the vector units run along a row of the matrix, at most n - 1 entries) and `lanes` matrices side by
    side (the vector units run across the matrices); the speed-up is the first over the second. Also the kernel the
    backend picks for that batch (_dense_numba.lanes_for)."""
    import pandas as pd

    from ..linalg import _dense_numba

    if not _dense_numba.available:
        raise RuntimeError(f"the CPU kernels need numba: {_dense_numba.available.reason}")
    rows = []
    for n in ns:
        A = random_symmetric(B, n, dtype, "cpu", seed=n).numpy()
        out = (np.empty((0, n, n), A.dtype), *(np.empty((B, n), A.dtype) for _ in range(3)), np.empty(B))
        t = time_interleaved({
            "one": lambda A=A, out=out: _dense_numba._tridiagonalize(A, True, False, *out),
            "side": lambda A=A, out=out: _dense_numba._tridiagonalize_lanes(A, True, False, *out, lanes),
        }, min_run_time=min_run_time)
        one, side = t["one"].median * 1e6 / B, t["side"].median * 1e6 / B
        chosen = _dense_numba.lanes_for(B, n, A.dtype.itemsize)
        rows.append({"n": n, "one at a time (us)": one, f"{lanes} side by side (us)": side, "speed-up": one / side,
                     "the backend picks": f"{chosen} side by side" if chosen else "one at a time"})
    return pd.DataFrame(rows).set_index("n")


def saved_bytes(fn: Callable[[], torch.Tensor]) -> int:
    """Bytes that autograd keeps for backward while fn() builds its graph (distinct storages of the tensors saved
    by every node, the input itself included where a node saves it). fn's result is discarded.

    >>> x = torch.ones(10, requires_grad=True)
    >>> saved_bytes(lambda: (x * x).sum())  # x * x saves x, twice over one storage
    40
    """
    storages: dict[int, int] = {}

    def pack(t):
        st = t.untyped_storage()
        storages[st.data_ptr()] = st.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        fn()
    return sum(storages.values())


def autograd_comparison(fns: dict[str, Callable[[torch.Tensor], torch.Tensor]], A: torch.Tensor, *,
                        min_run_time: float = 0.5, slow_s: float | None = None) -> pd.DataFrame:
    """k-th eigenvalue functions side by side on one batch A (B, n, n): each f(X) returns (B,) values.

    inference: f(A) with no gradient wanted; training: forward and backward of f(X).sum(); kept for backward: the
    KiB autograd saves per matrix (`saved_bytes`). Every callable is timed in alternating rounds; the speed columns
    are the first entry's time over each one's (above 1: faster than the first). Times in ms, medians with their
    interquartile range, and the number of timed calls. slow_s: as for `warmup_eigvalsh`.
    """
    import pandas as pd

    def train(f):
        def run():
            X = A.detach().requires_grad_()
            f(X).sum().backward()
        return run

    calls = {}
    for label, f in fns.items():
        calls[(label, "inference")] = lambda f=f: f(A)
        calls[(label, "training")] = train(f)
    keyed = {f"{label} / {what}": fn for (label, what), fn in calls.items()}
    times = time_interleaved(keyed, min_run_time=min_run_time * len(keyed), slow_s=slow_s)
    rows = []
    for label, f in fns.items():
        inf, tr = times[f"{label} / inference"], times[f"{label} / training"]
        rows.append({"function": label, "inference ms": inf.median * 1e3, "inference IQR ms": inf.iqr * 1e3,
                     "training ms": tr.median * 1e3, "training IQR ms": tr.iqr * 1e3,
                     "timed calls": f"{inf.repeats} / {tr.repeats}",
                     "kept for backward, KiB/matrix":
                         saved_bytes(lambda f=f: f(A.detach().requires_grad_())) / A.shape[0] / 1024})
    out = pd.DataFrame(rows).set_index("function")
    first = out.iloc[0]
    out.insert(2, "inference speed", first["inference ms"] / out["inference ms"])
    out.insert(5, "training speed", first["training ms"] / out["training ms"])
    return out


def gradient_boosting_baseline(data: HousingData, *, seed: int = 0) -> dict[str, str | float]:
    """scikit-learn's HistGradientBoostingRegressor with its defaults (random_state fixed for its internal
    early-stopping split) fitted on our training rows; its validation and test RMSE in dollars. Trees ignore the
    scaling of the features, so the scaled inputs give what the raw ones would.

    The fit runs on one OpenMP thread: the model is the same (each feature's histogram is built by one thread), and
    a fit of our 13600 training rows is short on one core (the returned seconds say how short here), while on two
    threads of a 2-core machine with another job keeping a core busy, OpenMP's waiting threads made fits take many
    times longer."""
    import time

    from sklearn.ensemble import HistGradientBoostingRegressor
    from threadpoolctl import threadpool_limits

    t0 = time.perf_counter()
    with threadpool_limits(limits=1, user_api="openmp"):
        model = HistGradientBoostingRegressor(random_state=seed).fit(data.X_train.numpy(), data.y_train.numpy())
    seconds = time.perf_counter() - t0

    def rmse(X, y):
        return data.dollars(float(np.sqrt(np.mean((model.predict(X.numpy()) - y.numpy()) ** 2))))

    return {"model": "HistGradientBoostingRegressor (defaults)", "validation RMSE ($)": rmse(data.X_val, data.y_val),
            "test RMSE ($)": rmse(data.X_test, data.y_test), "fit seconds": seconds}


def epoch_seconds(variants: Iterable[tuple], data: HousingData, *, dim: int, epochs: int = 2,
                  device: torch.device | str | None = None) -> list[dict[str, str | float]]:
    """Seconds per training epoch of the blog's recipes for each (kind, backend, label) or (kind, backend, label,
    fused_step) in `variants` (fused_step as in stream.train_epochs: None, the default, takes the fused CPU step
    where it applies, False the eager PyTorch step). The first epoch warms up (compilation, caches); reported: the
    median and the IQR of the others' seconds (of the one epoch there is, with `epochs` = 1)."""
    rows = []
    for kind, backend, label, *rest in variants:
        fused_step = rest[0] if rest else None
        recipe = recipes.blog_recipe(kind, dim)
        model = recipes.build_model(kind, num_features=data.num_features, dim=dim, backend=backend).to(device)
        events = list(recipes.epochs_stream(model, data, recipe, epochs=epochs, device=device, fused_step=fused_step))
        secs = np.array([ev["train_time_sec"] for ev in events[1:]] or [events[-1]["train_time_sec"]])
        q1, med, q3 = np.percentile(secs, [25, 50, 75])
        rows.append({"variant": label, "seconds per epoch": float(med), "IQR (s)": float(q3 - q1),
                     "timed epochs": len(secs)})
    return rows


def training_devices(data: HousingData, *, dim: int, kinds: Sequence[str] = ("dense", "tridiagonal"), epochs: int = 2,
                     candidates: Sequence[torch.device | str] | None = None,
                     timer: Callable[..., list[dict[str, str | float]]] | None = None,
                     ) -> tuple[dict[str, torch.device], pd.DataFrame]:
    """Where each model kind trains faster, by measurement: one timed epoch (the last of `epochs`) of the blog's
    recipe on every candidate device (the CPU, and the current CUDA device where there is one).

    Returns ({kind: the faster device}, a table of seconds per epoch per kind and device). With the CPU as the only
    candidate nothing is timed: it is the answer. `timer` replaces epoch_seconds (for tests)."""
    import pandas as pd

    if candidates is None:
        candidates = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    candidates = [torch.device(c) for c in candidates]
    if len(candidates) == 1:
        return {kind: candidates[0] for kind in kinds}, pd.DataFrame(
            [{"model": kind, "device": str(candidates[0]), "seconds per epoch": float("nan")} for kind in kinds])
    timer = timer or epoch_seconds
    rows = []
    for dev in candidates:
        timed = timer([(kind, "auto", kind) for kind in kinds], data, dim=dim, epochs=epochs, device=dev)
        rows += [{"model": r["variant"], "device": str(dev), "seconds per epoch": r["seconds per epoch"]}
                 for r in timed]
    table = pd.DataFrame(rows)
    best = table.loc[table.groupby("model")["seconds per epoch"].idxmin()]
    return {r["model"]: torch.device(r["device"]) for _, r in best.iterrows()}, table


def runs_cost(data: HousingData, *, dim: int, runs_list: Sequence[int], epochs: int = 2,
              device: torch.device | str | None = None) -> pd.DataFrame:
    """What R runs trained together (eignotes.training.runs) cost against one run: seconds per epoch, that time over one
    run's (timed beside it), and the throughput (run-epochs per second relative to one run), dense and tridiagonal
    with the blog's recipes. Seconds per epoch: the median over all `epochs` but the first (it warms up)."""
    import pandas as pd

    from ..bench.suites import suite_runs

    rows = suite_runs(torch.device(device) if device is not None else torch.device("cpu"), dim, runs_list,
                      epochs=epochs, data=data, verbose=False)
    return pd.DataFrame([{"model": r["case"].split()[0], "runs together": r["runs"],
                          "seconds per epoch": r["median_s"], "time over one run's": r["cost"],
                          "throughput over one run": r["throughput"]} for r in rows if r.get("runs")])


def scaling_study(grid: Iterable[tuple[str, int]], *, seeds: Sequence[int] | dict[str, Sequence[int]],
                  epochs: int | dict[str, int],
                  data: HousingData | None = None,
                  device: torch.device | str | dict[str, torch.device] | None = None,
                  show_progress: bool = True, keep: dict | None = None, budget_check: bool = True) -> pd.DataFrame:
    """Train every (kind, dim) of `grid` with each seed, the seeds of a setting together in one stream
    (recipes.fit_runs: each run equals its seed trained alone); return a DataFrame with one row per run.
    device: one for all, or {kind: device} (training_devices' choice per model).

    grid: iterable of ("dense" | "tridiagonal", dim). seeds: one list for all, or {kind: list}. epochs: an int, or
    {kind: int}, the most a run may train; each run follows its recipe (early stopping or the whole budget) and
    selects its epoch on the validation split. The test set is not read here: `test_rmses` reads it for the setting a
    study chooses (pass `keep` to have its models). seconds_per_epoch is the time of an epoch of all the setting's
    seeds together. `converged` per run is the constant-rate rule (`converged`), judged on the run's own curve; for a
    one-cycle kind (budget_check, the default) every seed is trained again with twice the budget,
    `val_rmse_2x_dollars` is that run's best validation RMSE and `gain_2x` the fraction it gained (NaN where the rule
    reads the curve, or without budget_check). `converged` is the run's own verdict for a constant-rate run and None
    for a one-cycle run, whose verdict is its setting's (summarize_study: the median over at least BUDGET_SEEDS
    seeds; one seed's gain differs from the next seed's by a percent or two).
    keep: a dict that receives each setting's trained models, {(kind, dim): [model per seed, restored to its
    best validation epoch]} (the models of the scale's budget, not the doubled one).
    """
    import pandas as pd

    from .widgets import progress_bar

    data = data or prepare_housing(seed=0)
    rows = []
    grid = list(grid)
    bar = progress_bar(grid, desc="scaling study, a setting's seeds together", unit="setting",
                       disable=not show_progress)
    for kind, dim in bar:
        n_ep = epochs[kind] if isinstance(epochs, dict) else epochs
        kind_seeds = list(seeds[kind] if isinstance(seeds, dict) else seeds)
        bar.set_postfix(model=f"{kind} {dim}", refresh=False)  # shown at the next update: no extra lines
        dev = device.get(kind) if isinstance(device, dict) else device
        results = recipes.fit_runs(kind, data, dim=dim, epochs=n_ep, seeds=kind_seeds, device=dev, read_test=False)
        one_cycle = recipes.blog_recipe(kind, dim).schedule == "one_cycle"
        longer = [float("nan")] * len(kind_seeds)
        if one_cycle and budget_check:
            bar.set_postfix(model=f"{kind} {dim}, twice the budget", refresh=False)
            longer = [s["best_val_rmse_dollars"] for _, _, s in
                      recipes.fit_runs(kind, data, dim=dim, epochs=2 * n_ep, seeds=kind_seeds, device=dev,
                                       read_test=False)]
        if keep is not None:
            keep[(kind, dim)] = [m for m, _, _ in results]
        for (_, history, s), seed, best_2x in zip(results, kind_seeds, longer, strict=True):
            best = s["best_val_rmse_dollars"]
            # a constant-rate run is judged on its own curve; one one-cycle seed's gain varies too much, so its
            # verdict is its setting's (summarize_study)
            verdict = None if one_cycle else converged(history["val_rmse_dollars"], s["epochs_max"])
            rows.append({"model": kind, "dim": dim, "seed": seed, "epochs_run": s["epochs_run"],
                         "epochs_max": s["epochs_max"], "best_epoch": s["best_epoch"], "val_rmse_dollars": best,
                         "val_rmse_2x_dollars": best_2x, "gain_2x": (best - best_2x) / best,
                         "converged": verdict, "seconds_per_epoch": s["seconds_per_epoch"]})
    return pd.DataFrame(rows)


# A budget is enough when twice the budget would improve the best validation RMSE by at most this fraction.
CONVERGED_TOL = 0.005


def converged(val_rmse: Sequence[float], epochs_max: int) -> bool:
    """The series' convergence rule for a constant-rate run (the dense recipe, with early stopping): its own curve
    answers. It has converged when a tenth of its budget (recipes.patience_for) passed after its best epoch with no
    new best, which is what early stopping waits for; a run that the budget ended while it still set new bests has
    not converged, however slowly its curve was falling. A one-cycle curve flattens at the end of any budget (the
    rate anneals to almost zero), so it cannot tell: `setting_budget` judges a one-cycle setting instead, by its seeds
    trained again with twice the budget.

    >>> falling = [60.0 - 0.01 * i for i in range(100)]   # best at its last epoch: the budget ended it
    >>> stopped = [60.0 - 0.1 * i for i in range(63)] + [54.0] * 10   # ten epochs without a new best
    >>> converged(falling, 100), converged(stopped, 100)
    (False, True)"""
    return epochs_since_best(val_rmse) >= recipes.patience_for(int(epochs_max))


# A setting's budget is judged on the median over at least this many seeds (fewer: not judged).
BUDGET_SEEDS = 5


def setting_budget(best: Sequence[float], best_2x: Sequence[float]) -> tuple[bool | None, float]:
    """The one-cycle rule for a setting: (converged, gain), gain the fraction by which twice the budget lowered the
    median over seeds of the best validation RMSE; converged None with fewer than BUDGET_SEEDS seeds (one seed's
    gain differs from the next seed's by a percent or two, more than the rule's 0.5%)."""
    m1, m2 = float(np.median(np.asarray(best, dtype=float))), float(np.median(np.asarray(best_2x, dtype=float)))
    gain = (m1 - m2) / m1
    return (None if min(len(best), len(best_2x)) < BUDGET_SEEDS else budget_enough(m1, m2)), gain


def budget_enough(best: float, best_2x: float, tol: float = CONVERGED_TOL) -> bool:
    """The one-cycle half of the convergence rule: twice the budget lowered the best validation RMSE (a setting's
    median over seeds) by at most `tol` of it.

    >>> budget_enough(60.0, 59.8), budget_enough(60.0, 59.6), budget_enough(60.0, 59.0, tol=0.03)
    (True, False, True)"""
    return (best - best_2x) / best <= tol


def epochs_since_best(val_rmse: Sequence[float]) -> int:
    """How many epochs ran after the one with the lowest validation RMSE (the first such epoch)."""
    vals = [float(v) for v in val_rmse]
    return len(vals) - 1 - int(np.argmin(vals)) if vals else 0


def summarize_study(df: pd.DataFrame) -> pd.DataFrame:
    """Per (model, dim): the median and interquartile range over seeds of the validation RMSE (what a setting is
    ranked and chosen by), the median seconds per epoch, `val_2x_median` and `gain_2x` (the fraction by which twice
    the budget lowered the median over seeds; NaN where not measured) and `converged`: for a one-cycle setting,
    `setting_budget` (gain_2x <= CONVERGED_TOL, judged only with at least BUDGET_SEEDS seeds: one seed's gain
    differs from the next seed's by a percent or two; with fewer, None: not judged); for a constant-rate one, at least
    half its runs converged (`converged`). A setting that did not converge was cut short by its budget: its
    errors say more about the budget than about the model."""
    g = df.groupby(["model", "dim"])

    def q(p: float):
        return lambda s: s.quantile(p)

    out = g.agg(runs=("seed", "count"), val_median=("val_rmse_dollars", "median"),
                val_q1=("val_rmse_dollars", q(0.25)), val_q3=("val_rmse_dollars", q(0.75)),
                sec_per_epoch=("seconds_per_epoch", "median"),
                val_2x_median=("val_rmse_2x_dollars", "median"))
    out["gain_2x"] = (out["val_median"] - out["val_2x_median"]) / out["val_median"]
    verdicts = []
    for _, part in g:
        if part["val_rmse_2x_dollars"].notna().all():  # one-cycle: the setting's median (None below BUDGET_SEEDS)
            verdicts.append(setting_budget(part["val_rmse_dollars"], part["val_rmse_2x_dollars"])[0])
        else:  # constant rate: at least half its runs converged on their own curves
            verdicts.append(bool(part["converged"].fillna(False).astype(float).mean() >= 0.5))
    import pandas as pd

    out["converged"] = pd.Series(verdicts, index=out.index, dtype=object)
    return out.reset_index()


def chosen_setting(summary: pd.DataFrame) -> pd.Series:
    """The setting a study chooses: the lowest median validation RMSE among those that converged; where none did,
    the lowest among all (a choice at the study's budget, which `summaries.study_lines` says)."""
    pool = summary[summary["converged"].eq(True)]
    pool = pool if len(pool) else summary
    return pool.loc[pool["val_median"].idxmin()]


def test_rmses(models: Sequence[torch.nn.Module], data: HousingData) -> list[float]:
    """The test RMSE in dollars of each model (each restored to its best validation epoch): the test set, read for
    the runs a study chose, after the choice."""
    return [st.test_rmse(m, data) for m in models]
