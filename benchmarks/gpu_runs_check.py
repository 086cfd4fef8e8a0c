"""Runs together on a GPU: equality with separate runs (R = 3, a few epochs) and the cost of 16 runs against one.

    PYTHONPATH=. python3 benchmarks/gpu_runs_check.py      (from the repository root, on a machine with a CUDA GPU)
"""
import json

import torch

from eignotes import config
from eignotes.provenance import provenance
from eignotes.training import data as D
from eignotes.training import recipes, runs
from eignotes.training import stream as st

dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
print(config.device_name(dev), "torch", torch.__version__)
# The log this script prints is the results file: its first lines say which code, command and device made it.
print("provenance:", json.dumps(provenance(device=config.device_name(dev))))
full = D.prepare_housing(seed=0)
small = full.head(1200, 400)
for kind in ("tridiagonal", "dense"):
    # the blog's rates: at rates many times higher, training amplifies float32 rounding until runs part ways
    rec = recipes.blog_recipe(kind, 15)
    seeds = [0, 1, 2]
    models = [recipes.build_model(kind, num_features=8, dim=15, seed=s).to(dev) for s in seeds]
    together = list(runs.train_runs(models, small, seeds=seeds, batch_size=rec.batch_size, lr=rec.lr, n_epochs=4,
                                    optimizer=rec.optimizer, weight_decay=rec.weight_decay, patience=2, device=dev))
    worst = 0.0
    for r, s in enumerate(seeds):
        m = recipes.build_model(kind, num_features=8, dim=15, seed=s).to(dev)
        alone = list(st.pipe(st.train_epochs(m, small, n_epochs=4, batch_size=rec.batch_size, lr=rec.lr,
                                             optimizer=rec.optimizer, weight_decay=rec.weight_decay, seed=s,
                                             device=dev),
                             st.augment(st.validation(small)), st.keep_best("val_loss"), st.early_stop("val_loss", 2)))
        same_best = together[-1]["best_step"][r] == alone[-1]["best_step"]
        pairs = zip(together, alone, strict=False)  # together runs on where this seed alone stopped
        worst = max([worst] + [abs(t["val_loss"][r] / a["val_loss"] - 1) for t, a in pairs])
        print(f"{kind} seed {s}: selected epoch together {together[-1]['best_step'][r]}, alone "
              f"{alone[-1]['best_step']} ({'same' if same_best else 'DIFFERENT'})")
    print(f"{kind}: largest relative difference of a validation loss, together vs alone: {worst:.1e}")

for kind in ("tridiagonal", "dense"):
    rec = recipes.blog_recipe(kind, 45)
    data = full.head(2000, 400)
    for R in (1, 16):
        m = recipes.build_model(kind, num_features=8, dim=45).to(dev)
        one = list(recipes.epochs_stream(m, data, rec, epochs=2, device=dev))[-1]["train_time_sec"]
        models = [recipes.build_model(kind, num_features=8, dim=45, seed=s).to(dev) for s in range(R)]
        evs = list(runs.train_runs(models, data, seeds=list(range(R)), batch_size=rec.batch_size, lr=rec.lr,
                                   n_epochs=2, optimizer=rec.optimizer, weight_decay=rec.weight_decay, device=dev))
        print(f"{kind} dim 45, 2000 rows: one run {one:.3f} s per epoch; {R} runs together "
              f"{evs[-1]['train_time_sec']:.3f} s ({evs[-1]['train_time_sec'] / one:.2f}x one run)")
