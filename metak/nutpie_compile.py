"""Compile a PyMC model for nutpie, without numba's ~4 s detour through error-message formatting.

nutpie (0.16) wraps the model's PyTensor/numba log-density and "expand" functions in two numba
C callbacks. Each copies its result into the sampler's buffer with ``out[...] = values``. For
that one line numba (0.6x) compiles its generic slice-assignment error path, which formats the
mismatching shapes into a string: the unicode formatting machinery takes about 4 s to compile,
once per process, and numba cannot cache it (measured on the 2-core reference machine: first
``compile_pymc_model`` 5.9 s, with the copy written as a loop 2.2 s; later models 1.1-1.7 s
either way). The callbacks are tiny, so :func:`compile_for_nutpie` builds them with an explicit
element loop instead; everything else is nutpie's own code path, and the sampler sees the same
log density and gradient (a test compares the draws with and without the substitution).

The substitution only happens when nutpie still has the two factory functions with the
signatures written for here; otherwise nutpie compiles the model unchanged, just slower.
"""

from __future__ import annotations

import inspect
import threading
from contextlib import contextmanager

__all__ = ["compile_for_nutpie"]

_LOCK = threading.Lock()
_LOGP_PARAMS = ["n_dim", "logp_fn", "user_data", "shared_keys", "shared_data"]
_EXPAND_PARAMS = ["n_dim", "n_expanded", "expand_fn", "user_data", "shared_var_keys", "shared_data"]


def _make_c_logp_func(n_dim, logp_fn, user_data, shared_keys, shared_data):
    import numba
    import numpy as np
    from nutpie.compile_pymc import make_extraction_fn

    extract = make_extraction_fn(logp_fn, shared_data, shared_keys, user_data.dtype)
    c_sig = numba.types.int64(
        numba.types.uint64,
        numba.types.CPointer(numba.types.double),
        numba.types.CPointer(numba.types.double),
        numba.types.CPointer(numba.types.double),
        numba.types.voidptr,
    )

    # Return codes as nutpie's own callback: 0 ok, 1 error, 3 non-finite gradient, 4 non-finite
    # log density, -1 wrong dimension.
    def logp_numba(dim, x_, out_, logp_, user_data_):
        if dim != n_dim:
            return -1
        try:
            x = numba.carray(x_, (n_dim,))
            out = numba.carray(out_, (n_dim,))
            logp = numba.carray(logp_, ())
            logp_val, grad = extract(x, user_data_)
            logp[()] = logp_val
            finite = True
            for i in range(n_dim):
                out[i] = grad[i]
                if not np.isfinite(grad[i]):
                    finite = False
            if not finite:
                return 3
            if not np.isfinite(logp_val):
                return 4
        except Exception:  # noqa: BLE001 - a C callback must not raise
            return 1
        return 0

    return logp_numba, c_sig


def _make_c_expand_func(n_dim, n_expanded, expand_fn, user_data, shared_var_keys, shared_data):
    import numba
    from nutpie.compile_pymc import make_extraction_fn

    extract = make_extraction_fn(expand_fn, shared_data, shared_var_keys, user_data.dtype)
    c_sig = numba.types.int64(
        numba.types.uint64,
        numba.types.uint64,
        numba.types.CPointer(numba.types.double),
        numba.types.CPointer(numba.types.double),
        numba.types.voidptr,
    )

    def expand_numba(dim, expanded, x_, out_, user_data_):
        if dim != n_dim:
            return -1
        if expanded != n_expanded:
            return -1
        try:
            x = numba.carray(x_, (n_dim,))
            out = numba.carray(out_, (n_expanded,))
            (values,) = extract(x, user_data_)
            for i in range(n_expanded):
                out[i] = values[i]
        except Exception:  # noqa: BLE001 - a C callback must not raise
            return -2
        return 0

    return expand_numba, c_sig


def _substitutable(module) -> bool:
    """True when nutpie has the two factories, with the parameters written for here."""
    for name, params in (("_make_c_logp_func", _LOGP_PARAMS), ("_make_c_expand_func", _EXPAND_PARAMS)):
        original = getattr(module, name, None)
        if original is None or list(inspect.signature(original).parameters) != params:
            return False
    return hasattr(module, "make_extraction_fn")


@contextmanager
def _loop_copy_callbacks():
    import nutpie.compile_pymc as module

    if not _substitutable(module):
        yield False
        return
    with _LOCK:
        saved = module._make_c_logp_func, module._make_c_expand_func
        module._make_c_logp_func, module._make_c_expand_func = _make_c_logp_func, _make_c_expand_func
        try:
            yield True
        finally:
            module._make_c_logp_func, module._make_c_expand_func = saved


def compile_for_nutpie(model, *, loop_copy: bool = True):
    """``nutpie.compile_pymc_model(model)`` (numba backend), with loop-copy callbacks when possible.

    ``loop_copy=False`` compiles with nutpie's own callbacks (the tests compare the two).
    """
    import nutpie

    if not loop_copy:
        return nutpie.compile_pymc_model(model, backend="numba")
    with _loop_copy_callbacks():
        return nutpie.compile_pymc_model(model, backend="numba")
