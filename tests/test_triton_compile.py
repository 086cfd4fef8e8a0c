"""Compile the Triton kernels ahead of time for real GPUs (no GPU needed): catches what the interpreter cannot,
such as names that compiled Triton does not carry out of a loop, or type clashes in loop-carried values. The
tridiagonal kernel, its fused one-launch variant and the dense kernel, for sm_80, sm_89 (L4) and sm_90.

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


FUSED_SCRIPT = textwrap.dedent(
    """
    import triton
    import triton.language as tl
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource
    from eignotes.linalg._tri_triton import _tridiagonal_fused_kernel as K

    for cap in (80, 89, 90):
        for dt in ("fp32", "fp64"):
            fp64 = dt == "fp64"
            sig = {name: f"*{dt}" for name in ("d_ptr", "e_ptr", "val_ptr", "prod_ptr", "dp_ptr", "dm_ptr")}
            sig.update({name: "i32" for name in ("B", "n", "k", "sd_b", "se_b")})
            sig["pivmin"] = "fp32"
            sig.update({c: "constexpr" for c in ("NITER", "WANT_PRODS", "BLOCK", "EXP_MASK", "INT_T")})
            const = {"NITER": 56 if fp64 else 28, "WANT_PRODS": True, "BLOCK": 128,
                     "EXP_MASK": 0x7FF0000000000000 if fp64 else 0x7F800000, "INT_T": tl.int64 if fp64 else tl.int32}
            cc = triton.compile(ASTSource(fn=K, signature=sig, constexprs=const), target=GPUTarget("cuda", cap, 32),
                                options={"num_warps": 4})
            assert cc.asm["cubin"], "no machine code"
            print("ok", cap, dt)
    """
)


DENSE_SCRIPT = textwrap.dedent(
    """
    import triton
    import triton.language as tl
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource
    from eignotes.linalg._dense_triton import TINY32, TINY64, _dense_kth_kernel as K, passes, warps_for

    cases = [(cap, dt, True, 64) for cap in (80, 89, 90) for dt in ("fp32", "fp64")]
    cases += [(89, "fp32", False, 64), (90, "fp32", True, 128)]
    for cap, dt, want, N in cases:
        fp64 = dt == "fp64"
        sig = {name: f"*{dt}" for name in ("A_ptr", "val_ptr", "vec_ptr", "s_ptr")}
        sig["ks_ptr"] = "*i32"
        sig.update({name: "i32" for name in ("n", "m", "sA_b", "sA_r", "sA_c")})
        sig["pivmin"] = "fp32"
        sig.update({c: "constexpr" for c in ("LOWER", "WANT_VEC", "N", "MS", "PASSES", "EXP_MASK", "INT_T", "TINY")})
        const = {"LOWER": True, "WANT_VEC": want, "N": N, "MS": 32, "PASSES": passes(56 if fp64 else 28),
                 "EXP_MASK": 0x7FF0000000000000 if fp64 else 0x7F800000, "INT_T": tl.int64 if fp64 else tl.int32,
                 "TINY": TINY64 if fp64 else TINY32}
        cc = triton.compile(ASTSource(fn=K, signature=sig, constexprs=const), target=GPUTarget("cuda", cap, 32),
                            options={"num_warps": warps_for(N)})
        assert cc.asm["cubin"], "no machine code"
        print("ok", cap, dt, want, N)
    """
)


def compile_script(script: str, expected: int, timeout: int = 900) -> None:
    """Run a compile script in a subprocess without TRITON_INTERPRET; expect `expected` lines starting with ok."""
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env["TRITON_DEFAULT_FP_FUSION"] = "1"
    proc = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("ok") == expected


needs_triton = pytest.mark.skipif(not _tri_triton.available,
                                  reason=f"Triton not importable: {_tri_triton.available.reason}")


@needs_triton
def test_kernel_compiles_for_gpus():
    compile_script(SCRIPT, 12)


@needs_triton
def test_fused_tridiagonal_kernel_compiles_for_gpus():
    compile_script(FUSED_SCRIPT, 6)


@needs_triton
def test_dense_kernel_compiles_for_gpus():
    compile_script(DENSE_SCRIPT, 8)
