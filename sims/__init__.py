"""Simulations of implicit bias, benign overfitting and grokking on one ensemble training engine.

    import sims
    run = sims.run("xor-cluster", preset="ci", seeds=3)
    run.metric("test_acc")        # [n_evals, 3]
    sims.load(run.dir).summary    # read it back later

`import sims` is cheap (no torch): `run`, `load`, `resume`, `Run`, `names`, `__version__` and the submodules load on
first use.
"""

import importlib

__all__ = ["run", "load", "resume", "Run", "names", "__version__"]
_LAZY = {"run": "api", "load": "api", "resume": "api", "Run": "api", "names": "registry"}  # name -> its module


def __getattr__(name: str):
    if name == "__version__":
        value = _version()
    elif name in _LAZY:
        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    elif name.startswith("__"):  # probes such as __wrapped__ are no submodules
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    else:
        try:
            value = importlib.import_module(f".{name}", __name__)  # a submodule, e.g. sims.api
        except ModuleNotFoundError as exc:
            if exc.name != f"{__name__}.{name}":
                raise
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    globals()[name] = value
    return value


def _version() -> str:
    """The installed distribution's version (importlib.metadata costs ~50 ms, so it is read on first access)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("implicit-bias-lab")
    except PackageNotFoundError:  # run from a source tree that is not installed
        return "0+unknown"


def __dir__():
    return sorted(set(globals()) | set(__all__))
