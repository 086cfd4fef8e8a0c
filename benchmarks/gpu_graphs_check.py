"""Launch-free GPU training (issue: whole-step CUDA graphs): one run of every check, eager loop as the baseline.

    PYTHONPATH=. python3 benchmarks/gpu_graphs_check.py      (from the repository root, on a CUDA machine)

Prints: a torch.profiler summary of one step (kernels per step, host time), eager and graphed epoch times for
the tridiagonal (Triton) and dense (backend="triton") models at dim 45 and the blog's batch sizes, the
eigen-overhead (the epoch against the same epoch with the eigenvalue replaced by trace / dim), 16 runs together
against one, graphed-vs-eager parameter equality over 20 steps, whether a step synchronizes the host, the
same epochs on this machine's CPU with the fused step (the CPU's default), and the Moreau post's pencil training
(one run, and 45 runs with three alphas) on the GPU against the CPU's fused step.
"""
import json
import time

import torch
from torch.profiler import ProfilerActivity, profile

from eignotes import config
from eignotes.provenance import provenance
from eignotes.training import data as D
from eignotes.training import recipes, runs
from eignotes.training import stream as st

dev = torch.device("cuda")
print(config.device_name(dev), "torch", torch.__version__)
# The log this script prints is the results file: its first lines say which code, command and device made it.
print("provenance:", json.dumps(provenance(device=config.device_name(dev))))
full = D.prepare_housing(seed=0)


def epoch_time(kind, backend, graphed, epochs=3, data=full, dim=45, R=1, device=dev):
    rec = recipes.blog_recipe(kind, dim)
    models = [recipes.build_model(kind, num_features=8, dim=dim, backend=backend, seed=s).to(device)
              for s in range(R)]
    if R == 1:
        stream = st.train_epochs(models[0], data, batch_size=rec.batch_size, lr=rec.lr, n_epochs=epochs,
                                 optimizer=rec.optimizer, weight_decay=rec.weight_decay, device=device,
                                 cuda_graphs=graphed)
    else:
        stream = runs.train_runs(models, data, seeds=list(range(R)), batch_size=rec.batch_size, lr=rec.lr,
                                 n_epochs=epochs, optimizer=rec.optimizer, weight_decay=rec.weight_decay,
                                 device=device, cuda_graphs=graphed)
    times = [ev["train_time_sec"] for ev in stream]
    return min(times[1:]) if len(times) > 1 else times[0], models


def profile_step(kind, backend):
    rec = recipes.blog_recipe(kind, 45)
    model = recipes.build_model(kind, num_features=8, dim=45, backend=backend).to(dev)
    X, y = full.X_train[: rec.batch_size].to(dev), full.y_train[: rec.batch_size].to(dev)
    opt = torch.optim.Adam(model.parameters(), lr=rec.lr)

    def one_step():
        opt.zero_grad(set_to_none=True)
        torch.nn.functional.mse_loss(model(X), y).backward()
        opt.step()

    for _ in range(5):
        one_step()
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        for _ in range(20):
            one_step()
        torch.cuda.synchronize()
    kernels = [e for e in prof.events() if e.device_type == torch.autograd.DeviceType.CUDA]
    print(f"profile {kind}: {len(kernels) / 20:.0f} kernels per eager step")
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=12))
    torch.cuda.set_sync_debug_mode("error")
    try:
        one_step()
        print(f"{kind}: no host sync in an eager step")
    except RuntimeError as exc:
        print(f"{kind}: HOST SYNC in a step: {str(exc).splitlines()[0]}")
    finally:
        torch.cuda.set_sync_debug_mode(0)


for kind, backend in (("tridiagonal", "auto"), ("dense", "triton")):
    profile_step(kind, backend)

small = full.head(1280, 200)
for kind, backend in (("tridiagonal", "auto"), ("dense", "triton")):
    params = {}
    for graphed in (False, True):
        torch.manual_seed(0)
        model = recipes.build_model(kind, num_features=8, dim=15, backend=backend, seed=1).to(dev)
        rec = recipes.blog_recipe(kind, 15)
        list(st.train_epochs(model, small.head(20 * rec.batch_size + 7, 100), batch_size=rec.batch_size, lr=rec.lr,
                             n_epochs=2, optimizer=rec.optimizer, weight_decay=rec.weight_decay, device=dev,
                             scheduler=st.one_cycle(lr=rec.lr, n_epochs=2), cuda_graphs=graphed))
        params[graphed] = torch.cat([p.detach().flatten() for p in model.parameters()])
    diff = ((params[True] - params[False]).abs().max() / params[False].abs().max()).item()
    print(f"{kind}: graphed vs eager parameters after 2 epochs of 21 steps (last one partial): max rel diff {diff:.1e}")

for kind, backend in (("tridiagonal", "auto"), ("dense", "triton")):
    t0 = time.perf_counter()
    eager, _ = epoch_time(kind, backend, False)
    graphed, _ = epoch_time(kind, backend, True)
    trace_g, _ = epoch_time(kind, "trace", True)
    print(f"{kind} dim 45 epoch: eager {eager:.3f} s, graphed {graphed:.3f} s ({eager / graphed:.1f}x), "
          f"trace/dim graphed {trace_g:.3f} s, eigen-overhead {graphed / trace_g:.2f} "
          f"({time.perf_counter() - t0:.0f} s)")
    one, _ = epoch_time(kind, backend, True, epochs=2, data=full.head(2000, 400))
    sixteen, _ = epoch_time(kind, backend, True, epochs=2, data=full.head(2000, 400), R=16)
    print(f"{kind} dim 45, 16 runs together graphed: {sixteen / one:.2f}x one run")

# The same epochs on this machine's CPU, with the CPU's default, the fused step (eignotes.training.fused): the figure
# the GPU is compared with when notebooks 04 and 06 choose where to train.
for kind in ("tridiagonal", "dense"):
    cpu_epoch, _ = epoch_time(kind, "auto", False, device=torch.device("cpu"))
    print(f"{kind} dim 45 epoch on this machine's CPU ({torch.get_num_threads()} threads), fused step: "
          f"{cpu_epoch:.3f} s")


# The Moreau post's training (the pencil model, dim 15, alpha 5, Adam lr 1e-2, batch 64, OneCycle), one run and the
# post's 45 runs (15 each of alpha 0.001, 0.1, 5) on 4,000 training rows: the GPU's eager step against this
# machine's CPU with the fused step. recipes.training_device keeps these models on the GPU until this comparison
# has been made on a GPU; the faster place is what it should choose.
pencil_data = full.head(4000, 400)


def pencil_epoch(device, alphas, epochs=3):  # the median of 3 epochs leaves out the first's warm-up
    res = recipes.fit_runs("pencil", pencil_data, dim=15, epochs=epochs, seeds=list(range(len(alphas))), alpha=alphas,
                           patience=epochs + 1, device=device)
    return res[0][2]["seconds_per_epoch"], res[0][2]["step"]


for label, alphas in (("one run, alpha 5", [5.0]), ("45 runs, alphas 0.001/0.1/5", [0.001] * 15 + [0.1] * 15 +
                                                                                     [5.0] * 15)):
    for device in (dev, torch.device("cpu")):
        t0 = time.perf_counter()
        secs, step = pencil_epoch(device, alphas)
        print(f"pencil dim 15, {label}, 4,000 rows: {device.type} {step} step {secs:.3f} s per epoch "
              f"({time.perf_counter() - t0:.0f} s)")
