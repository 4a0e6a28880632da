"""gradsel: analytic, numerical, alternating and selected gradients for few-shot MNIST.

The public Python API. Names are loaded on first use, so that importing the
command-line module does not import Numba.

    import gradsel_cli as gs
    x_train, y_train, x_test, y_test = gs.load_mnist()
    x, y = gs.few_shot(x_train, y_train, shots=2)
    params = gs.init_params(hidden=50, seed=0)
    g = gs.analytic_gradient(params, x[:8], y[:8])
    result = gs.train(gs.TrainConfig(method="select", iters=2000))
"""

from importlib import import_module

_API = {
    "load_mnist": "data",
    "few_shot": "data",
    "Params": "core.network",
    "init_params": "core.network",
    "loss": "core.network",
    "analytic_gradient": "core.network",
    "numeric_gradient": "sources.numeric",
    "naive_numeric_gradient": "sources.numeric",
    "predict": "core.network",
    "accuracy": "core.network",
    "settings": "numerics.loop",
    "Settings": "core.network",
    "POLICIES": "numerics.methods",
    "REGISTRY": "sources",
    "Source": "sources",
    "Optimizer": "numerics.optimizers",
    "TrainConfig": "config",
    "RunResult": "numerics.training",
    "train": "numerics.training",
    "unseen_split": "numerics.unseen",
    "drop_unseen": "numerics.unseen",
}

__all__ = ["__version__", *_API]


def __getattr__(name):
    if name == "__version__":  # looked up when asked: the command's start-up does not wait for it
        from importlib import metadata

        return metadata.version("gradsel")
    if name in _API:
        return getattr(import_module(f".{_API[name]}", __name__), name)
    raise AttributeError(f"module 'gradsel_cli' has no attribute {name!r}")


def __dir__():
    return __all__
