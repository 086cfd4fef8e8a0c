"""Compile the Triton kernel ahead of time for real GPUs (no GPU needed): catches what the interpreter cannot,
such as names that compiled Triton does not carry out of a loop, or type clashes in loop-carried values.

Runs in a subprocess without TRITON_INTERPRET (conftest sets it for this process, where kernels are interpreted).
"""
import os
import subprocess
import sys
import textwrap

import pytest

from eignotes.linalg import _tri_triton

SCRIPT = textwrap.dedent(
    """
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource
    from eignotes.linalg._tri_triton import _tridiagonal_kth_kernel as K

    for cap in (80, 89, 90):  # A100, L4 (Colab), H100
        for dt in ("fp32", "fp64"):
            for want in (False, True):
                sig = {name: f"*{dt}" for name in ("d_ptr", "e_ptr", "val_ptr", "vec_ptr", "dm_ptr")}
                sig.update({name: "i32" for name in ("B", "n", "k", "sd_i", "se_i", "sv_b", "sq_i")})
                sig.update(pivmin="fp32", NITER="constexpr", WANT_VEC="constexpr", BLOCK="constexpr")
                src = ASTSource(fn=K, signature=sig, constexprs={"NITER": 28, "WANT_VEC": want, "BLOCK": 128})
                cc = triton.compile(src, target=GPUTarget("cuda", cap, 32), options={"num_warps": 4})
                assert cc.asm["cubin"], "no machine code"
                print("ok", cap, dt, want)
    """
)


@pytest.mark.skipif(not _tri_triton.AVAILABLE, reason=f"Triton not importable: {_tri_triton.WHY}")
def test_kernel_compiles_for_gpus():
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env["TRITON_DEFAULT_FP_FUSION"] = "1"
    proc = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("ok") == 12
