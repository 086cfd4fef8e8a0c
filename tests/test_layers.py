"""The core at run time (import-linter checks the imports as written; this checks what actually loads): in a fresh
interpreter, `import eignotes`, each model kind, each op, and the training loop (train_epochs and train_runs with
two runs, fused and eager steps) load none of the course's packages: matplotlib, ipywidgets, pandas, scikit-learn,
IPython."""
import json
import subprocess
import sys

COURSE_PACKAGES = ("matplotlib", "ipywidgets", "pandas", "sklearn", "IPython")

SCRIPT = r"""
import json, sys, torch
import eignotes
from eignotes.training import data, recipes, runs, stream

gen = torch.Generator().manual_seed(0)
A = torch.randn(3, 6, 6, generator=gen, dtype=torch.float64)
A = (A + A.transpose(-1, -2)).requires_grad_()
d = torch.randn(3, 6, generator=gen, dtype=torch.float64, requires_grad=True)
e = torch.randn(3, 5, generator=gen, dtype=torch.float64, requires_grad=True)
outs = [eignotes.kth_eigvalsh(A, 2), eignotes.kth_eigvalsh_smooth(A, 2, 0.5),
        eignotes.kth_eigvalsh_tridiagonal(d, e, 2), eignotes.kth_eigvalsh_tridiagonal_smooth(d, e, 2, 0.5),
        eignotes.tridiagonal_to_dense(d, e).sum(-1)]
sum(o.sum() for o in outs).backward()

h = data.prepare_housing(seed=0).head(96, 32)
kinds = []
for kind in ("dense", "tridiagonal", "pencil"):
    for alpha in (None, 0.5):
        x = recipes.build_model(kind, num_features=8, dim=4, alpha=alpha)(h.X_val[:5])
        x.sum().backward()
    for fused_step in (None, False):
        m = recipes.build_model(kind, num_features=8, dim=4)
        evs = list(stream.pipe(stream.train_epochs(m, h, n_epochs=2, batch_size=32, lr=1e-2, fused_step=fused_step),
                               stream.augment(stream.validation(h)), stream.augment(stream.spectral_norms),
                               stream.keep_best("val_loss"), stream.early_stop("val_loss", 5)))
        ms = [recipes.build_model(kind, num_features=8, dim=4, seed=s) for s in (0, 1)]
        together = list(runs.train_runs(ms, h, seeds=[0, 1], n_epochs=2, batch_size=32, lr=1e-2,
                                        fused_step=fused_step))
        kinds.append((evs[-1]["step_kind"], together[-1]["step_kind"], len(evs), len(together)))
print(json.dumps({"loaded": sorted(p for p in %r if p in sys.modules), "kinds": kinds}))
"""


def test_the_core_loads_no_course_package():
    run = subprocess.run([sys.executable, "-c", SCRIPT % (COURSE_PACKAGES,)], capture_output=True, text=True,
                         timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert result["loaded"] == [], f"the core loaded {result['loaded']}"
    assert result["kinds"] == [[k, k, 2, 2] for _ in range(3) for k in ("fused", "eager")], result["kinds"]
