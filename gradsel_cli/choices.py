"""The names of every choice a run can make, in the order the kernels code them (a name's code is its position).

Below everything that reads a configuration: the network core (core/) codes
activations and losses by them without knowing TrainConfig (config.py), which
offers them as its options' choices.
"""

SUBSETS = ("first", "random", "all")  # all: every training image, the textbook's chapter-4 setting
PRECISIONS = ("float64", "float32")
SELECT_ON = ("batch", "train")
OPTIMIZERS = ("sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam")
SURFACES = ("textbook", "saddle", "two-minima", "rosenbrock")  # gradsel paths' 2-D functions (numerics/paths.py)
INITS = ("std", "xavier", "he")
ACTIVATIONS = ("sigmoid", "tanh", "relu", "leaky-relu", "mish")
LOSSES = ("cross-entropy", "mse")
CURVE_AXES = ("iterations", "budget", "time")  # what learning curves are drawn against (compare --x-axis)
