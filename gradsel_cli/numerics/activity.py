"""Hidden activations as histograms: the textbook's deep stack of random layers, and a network's hidden layer.

The textbook's experiment (ch06/weight_init_activation_histogram.py) passes
1,000 N(0, 1) inputs forward through 5 layers of 100 units with random weights
of one scale and draws a histogram of each layer's activations (30 bins). Here
every layer is gradsel's own hidden layer (network.hidden: its activations, in
its kernels), its weights drawn at the scale of gradsel's initialisations.
"""

import numpy as np

from ..core import network
from ..seeding import rng

BINS = 30  # the textbook's
RANGES = {"sigmoid": (0.0, 1.0), "tanh": (-1.0, 1.0)}  # the others: OTHER_RANGE
CLIPPED = ("relu",)  # activations that are exactly 0 for every negative input: their zeros are counted apart
OTHER_RANGE = (0.0, 1.0)  # the textbook's range for every activation (ReLU's values above 1 are counted apart)
SAMPLE_IMAGES = 1000  # a network's histogram: its activations on the first this many test images


def value_range(activation: str) -> tuple[float, float]:
    return RANGES.get(activation, OTHER_RANGE)


def histogram(values: np.ndarray, activation: str) -> dict:
    """Counts of `values` in BINS equal bins over the activation's range (its last bin closed; the range given
    too), the counts below and above it, and their mean and standard deviation (of every value). ReLU's exact
    zeros (half of a layer's values, a spike that would hide the rest) are counted apart, not in the bins."""
    lo, hi = value_range(activation)
    v = np.asarray(values, dtype=np.float64).ravel()
    zero = v == 0.0 if activation in CLIPPED else np.zeros(v.shape, bool)
    counts, _ = np.histogram(v[~zero], BINS, range=(lo, hi))
    return {
        "range": [lo, hi],
        "counts": [int(c) for c in counts],
        "zeros": int(np.count_nonzero(zero)),
        "below": int(np.count_nonzero(v < lo)),
        "above": int(np.count_nonzero(v > hi)),
        "mean": float(v.mean()),
        "std": float(v.std()),
    }


def deep_stack(
    activation: str, init: str, std: float, seed: int = 0, layers: int = 5, nodes: int = 100, samples: int = 1000
) -> list[dict]:
    """The textbook's experiment: `samples` N(0, 1) inputs of `nodes` values through `layers` layers of `nodes`
    units (weights N(0, scale²) at the initialisation's scale for fan-in `nodes`, biases 0); each layer's
    histogram. The inputs and then each layer's weights are drawn in turn from the seed's "lab" stream."""
    gen = rng(seed, "lab")
    z = gen.standard_normal((samples, nodes))
    out = []
    for _ in range(layers):
        p = network.Params.zeros(nodes, nodes, 1)
        p.W1[...] = network.init_scale(init, std, nodes) * gen.standard_normal((nodes, nodes))
        z = network.hidden(p, z, activation)
        out.append(histogram(z, activation))
    return out


def of_network(params: network.Params, x, activation: str) -> dict:
    """The histogram of a network's hidden activations on the first SAMPLE_IMAGES rows of x."""
    return histogram(network.hidden(params, x[:SAMPLE_IMAGES], activation), activation)
