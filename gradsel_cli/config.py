"""TrainConfig: a run's configuration, the options of the toolkit and of every gradient source (sources/).

Above the sources, whose options are its fields; the names of the choices
(choices.py) and the option helper (fields.py) sit below both. No heavy imports
here: the command line and the tables read configurations without loading Numba.
"""

import re
from dataclasses import dataclass, fields
from functools import cached_property
from typing import TYPE_CHECKING, Any

from . import sources
from .choices import ACTIVATIONS, INITS, LOSSES, OPTIMIZERS, PRECISIONS, SELECT_ON, SUBSETS
from .fields import KINDS, field_problem, option  # noqa: F401  (option, KINDS: part of config's interface)

POLICIES = ("alternate", "select")  # methods that mix the sources of --sources (the others: one source alone)
METHOD_NAMES = (*sources.names(), *POLICIES)  # as the command line offers them (a source added at run time too)
DEFAULT_SOURCES = "analytic,numeric"  # what the papers mixed
POLICY_READS = {"sources": POLICIES, "alternate_every": ("alternate",), "select_on": ("select",)}  # option: its readers
# option: (the field that decides whether a run reads it, the values of that field that do); a run with another
# value gives the same result whatever the option says. The sources' options are the sources' own (Source.reads).
SETTING_READS = {
    "momentum": ("optimizer", ("momentum", "nesterov")),
    "rho": ("optimizer", ("rmsprop",)),
    "beta1": ("optimizer", ("adam",)),
    "beta2": ("optimizer", ("adam",)),
    "eps": ("optimizer", ("adagrad", "rmsprop", "adam")),
    "init_std": ("init", ("std",)),
    "shots": ("subset", ("first", "random")),
}


def images_label(config) -> str:
    """The training images of a config (a TrainConfig or its dict) as tables and titles name them: "k=2", or
    "all images" (--subset all)."""
    c = config if isinstance(config, dict) else config.to_dict()
    return "all images" if c.get("subset") == "all" else f"k={c['shots']}"


def counted(n: int, noun: str, spec: str = "") -> str:
    """'1 run', '3 runs': a count and its noun, plural unless the count is one (`spec`: the count's format)."""
    return f"{n:{spec}} {noun}{'' if n == 1 else 'es' if noun.endswith(('s', 'sh', 'ch', 'x')) else 's'}"


STUDIES = ("conditions", "subsets", "sources", "differences")  # `table` presets that are studies, not a paper's table
# The shipped runs a study reads when they are not its own file: the differences comparison reads the conditions
# study's and the relu-textbook preset's.
STUDY_RUNS = {"differences": ("conditions", "relu-textbook")}
DIGITS_FROM = ("first", "disagree", "random")  # which test images a digit picture shows
VAL_PER_CLASS = 200  # tune: validation images per class beside the few-shot set (2,000 in all: accuracy in 0.05% steps)


# Limits that keep a run within memory: a bigger value would only end in a MemoryError mid-run.
class Notice(UserWarning):
    """A warning of gradsel's library (a skipped line of a results file, a step too small to resolve): the command
    line shows each as one line ``Warning: ...``, whatever the warnings filter."""


MAX_HIDDEN = 10_000  # W1 alone is 784 x H float64 (63 MB at the limit), and the optimizer keeps copies
MAX_BATCH = 10_000  # each mini-batch is copied out as B x 784 float64 (63 MB at the limit)
MAX_DRAWS = 100_000_000  # iters x batch: all mini-batch indices are drawn up front, 8 bytes each
DASK_TIMEOUT = 10.0  # seconds for a Dask scheduler given by address to answer, and for a worker to join it
MAX_DASK_TIMEOUT = 86_400.0  # the most --timeout can be (a day): more means nothing, and 1e300 overflows timers


def _with_source_options(cls):
    """Every gradient source's options (sources/) as fields of `cls`, before @dataclass makes them: each after
    the field its source places it after (Source.placed: the order of the fields of the configurations stored
    before sources were modules), else after cls's own."""
    own = dict(cls.__annotations__)
    added = sources.options()
    placed = {k: v for s in sources.REGISTRY.values() for k, v in s.placed.items()}
    order: list[str] = []
    for name in own:
        order.append(name)
        order += [k for k in added if placed.get(k) == name]
    order += [k for k in added if k not in order]
    for name, (kind, f) in added.items():
        setattr(cls, name, f)
        own[name] = kind
    cls.__annotations__.clear()
    cls.__annotations__.update({k: own[k] for k in order})
    return cls


@dataclass(frozen=True)
@_with_source_options
class TrainConfig:
    """Everything that changes the outcome of a run (and nothing that does not).

    Each field's metadata is its command-line option (see ``option``): a field
    without an option, or an option without a field, cannot exist.
    """

    method: str = option(
        "alternate",
        "A gradient source alone, or a policy over --sources: alternate (paper A) or select (paper B).",
        choices=METHOD_NAMES,
    )
    shots: int = option(2, "Images per class (k).", low=1, high=5421)
    batch: int = option(8, "Mini-batch size (B), drawn with replacement.", low=1, high=MAX_BATCH)
    hidden: int = option(50, "Hidden units (H).", low=1, high=MAX_HIDDEN)
    iters: int = option(10000, "Iterations, one mini-batch each.", low=1)
    lr: float = option(0.1, "Learning rate.", kind="positive")
    seed: int = option(0, "Seed of the initial weights, subset and batch order.", low=0)
    subset: str = option(
        "first",
        "Training images: the first k per class in file order, a seeded random draw of k per class, or all "
        "60,000 (the textbook's chapter-4 training; --shots is not read).",
        choices=SUBSETS,
    )
    init_std: float = option(0.01, "Std of the N(0, std^2) initial weights (--init std).", kind="positive")
    sources: str = option(
        DEFAULT_SOURCES,
        "alternate, select: the gradient sources they mix, comma-separated. The first is the main one: alternate "
        "uses it on every iteration it gives no other source, and select keeps its update when the losses tie.",
    )
    alternate_every: int = option(
        2,
        "alternate: every K-th iteration uses the next of the other sources (the second, of two).",
        low=1,
        formerly=("numeric_every",),  # paper A's "numeric every K-th": the name when numeric was the other source
    )
    select_on: str = option(
        "batch", "select: compare the candidate updates on the batch or the whole training set.", choices=SELECT_ON
    )
    test_limit: int = option(10000, "Evaluate on the first N test images.", low=1, high=10000)
    optimizer: str = option("sgd", "Update rule.", choices=OPTIMIZERS)
    momentum: float = option(0.9, "momentum, nesterov: the velocity decay.", kind="fraction")
    rho: float = option(0.99, "rmsprop: decay of the squared-gradient average.", kind="fraction")
    beta1: float = option(0.9, "adam: first-moment decay.", kind="fraction")
    beta2: float = option(0.999, "adam: second-moment decay.", kind="fraction")
    eps: float = option(1e-7, "adagrad, rmsprop, adam: epsilon.", kind="positive")
    init: str = option(
        "std", "Weight initialisation: std (--init-std), xavier sqrt(1/n_in), he sqrt(2/n_in).", choices=INITS
    )
    activation: str = option("sigmoid", "Hidden activation.", choices=ACTIVATIONS)
    loss: str = option(
        "cross-entropy", "Softmax cross-entropy, or 1/2 squared error of the softmax output.", choices=LOSSES
    )
    weight_decay: float = option(
        0.0, "L2 weight decay lambda: adds 1/2 lambda (|W1|^2 + |W2|^2) to the loss.", kind="nonneg"
    )
    dropout: float = option(
        0.0, "Inverted dropout rate on the hidden layer (mask fixed within an iteration).", kind="fraction"
    )
    batch_norm: bool = option(False, "Batch normalisation of the hidden pre-activations (needs --batch >= 2).")
    precision: str = option(
        "float64", "Arithmetic of the run: data, weights and every kernel in float64 or float32.", choices=PRECISIONS
    )
    pixels: str = option(
        "float64",
        "Pixel values k/255 in float64, or rounded to float32 first, as the textbook's loader gives them "
        "(then computed in --precision): the training and the test images.",
        choices=PRECISIONS,
    )
    loss_epsilon: float = option(
        0.0,
        "Cross-entropy as -log(p + EPS), the textbook's form with 1e-7: every loss "
        "evaluation (numeric gradient, select's comparison, reported loss) sees it; the "
        "analytic gradient stays that of -log p, as the textbook's backward pass.",
        kind="fraction",
    )

    if TYPE_CHECKING:  # the sources' options, added by _with_source_options

        def __getattr__(self, name: str) -> Any: ...

    def validate(self) -> "TrainConfig":
        """Raise ValueError naming the first bad field and its allowed values: each field as its option()
        metadata declares it (field_problem), then what the fields mean together."""
        for f in fields(self):
            problem = None if f.name == "method" else field_problem(f, getattr(self, f.name))
            if problem:
                raise ValueError(problem)
        methods = (*sources.names(), *POLICIES)  # a source registered at run time included
        if self.method not in methods:
            raise ValueError(f"unknown method {self.method!r}; choose one of: {', '.join(methods)}")
        if len(self.listed_sources) < 2:
            raise ValueError(
                f"sources {self.sources!r} is one gradient source; alternate and select mix two or more: "
                f"list another, e.g. {DEFAULT_SOURCES}"
            )
        for name in self.run_sources():
            if (problem := sources.get(name).problem(self)) is not None:
                raise ValueError(problem)
        if self.iters * self.batch > MAX_DRAWS:
            raise ValueError(
                f"iters x batch must be at most {MAX_DRAWS:,} (the mini-batch indices are drawn up "
                f"front), got {self.iters:,} x {self.batch:,}; lower iters or batch"
            )
        if self.loss_epsilon and self.loss != "cross-entropy":
            raise ValueError(
                f"loss_epsilon applies to the cross-entropy only, not to {self.loss!r}; "
                "drop --loss-epsilon or use --loss cross-entropy"
            )
        if self.batch_norm and self.batch < 2:
            raise ValueError(
                "batch norm needs a batch of at least 2 (the batch statistics of one sample are "
                "degenerate); raise --batch or drop --batch-norm"
            )
        return self

    @cached_property
    def listed_sources(self) -> tuple[str, ...]:
        """--sources parsed into a tuple, checked (ValueError naming the problem): once per configuration, whatever
        reads it how often (a field stays a string, as the command line gives it and records store it)."""
        return sources.parse(self.sources)

    def run_sources(self) -> tuple[str, ...]:
        """The gradient sources the run computes: its method's alone, or a policy's --sources."""
        return self.listed_sources if self.method in POLICIES else (self.method,)

    def read_options(self) -> set[str]:
        """The options of the policies and sources that this run reads (the rest of those change nothing)."""
        read = {k for k, methods in POLICY_READS.items() if self.method in methods}
        for name in self.run_sources():
            read |= {*sources.get(name).reads, *sources.get(name).options}
        return read

    def effective(self) -> "TrainConfig":
        """The run this config really is, its identity: every option the run does not read set to its default
        (any value gives the same run): the policies' and sources' options its method does not use, and the
        optimizer's and initialisation's options its optimizer and initialisation do not use (SETTING_READS)."""
        default, read = TrainConfig(), self.read_options()
        read |= {k for k, (by, values) in SETTING_READS.items() if getattr(self, by) in values}
        unread = [k for k in (*POLICY_READS, *SETTING_READS) if k not in read]
        unread += [k for s in sources.REGISTRY.values() for k in s.reads if k not in read]
        return self.replace(**{k: getattr(default, k) for k in unread})

    def to_dict(self) -> dict:
        """Every field by name, in field order (asdict's result: the fields are numbers, strings and booleans,
        so no copy is needed, and a results file's thousands of records are read without one)."""
        return {name: getattr(self, name) for name in _FIELD_NAMES}

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        """The config of a stored dict: fields by their names or their former ones (option(formerly=)), unknown
        keys (retired fields) dropped."""
        return cls(**{_FORMERLY.get(k, k): v for k, v in d.items() if _FORMERLY.get(k, k) in _FIELD_NAMES})

    def replace(self, **changes) -> "TrainConfig":
        return TrainConfig(**{**self.to_dict(), **changes})


_FIELD_NAMES = tuple(f.name for f in fields(TrainConfig))
_FORMERLY = {old: f.name for f in fields(TrainConfig) for old in f.metadata["formerly"]}  # a former name: the field


CELL_KEYS = ("shots", "batch", "hidden")  # the grid keys of a paper table's cell


def computed_sources(config: dict, methods) -> tuple[str, ...]:
    """The gradient sources that runs of `methods` with the config dict `config` compute, each once, in order."""
    return tuple(
        dict.fromkeys(n for m in methods for n in TrainConfig.from_dict({**config, "method": m}).run_sources())
    )


GRID_KEYS = ("method", "sources", *CELL_KEYS, "seed")  # a table's grid: what its runs differ in; the rest: settings
GRADCHECK_DRAWS = 20  # gradcheck: the draws a random source's error is averaged over (iterations 1 ... 20's)
GRADCHECK_QS = (1, 4, 16, 64, 256)  # gradcheck: the numbers of directions q a random source is checked at
MARGIN = 0.002  # equivalence margin on test accuracy for the TOST verdicts: 20 of the 10,000 test images


def setting_keys() -> tuple[str, ...]:
    """The fields besides method, seed and the cell keys: the settings a table's runs share."""
    return tuple(f.name for f in fields(TrainConfig) if f.name not in GRID_KEYS)


def canonical(config: dict) -> dict:
    """A stored config with every field, defaults filled in for fields added since it was written, and
    retired ones dropped (eval_every: the accuracy curve is not part of a run's configuration)."""
    return TrainConfig.from_dict(config).to_dict()


SCHEDULER_FORM = "tcp://HOST:PORT"  # how a Dask scheduler's address is written (tls:// also; no scheme means tcp)
_ADDRESS = re.compile(r"(?:(?P<scheme>[a-z]+)://)?(?P<host>\[[^\]]*\]|[^:/\[\]]+):(?P<port>[0-9]+)", re.ASCII)
_HOST_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?", re.ASCII | re.IGNORECASE)


def scheduler_address(text: str) -> str:
    """A Dask scheduler's address, checked: [tcp:// or tls://]HOST:PORT with a host name, an IPv4 address or
    a bracketed IPv6 one, and a port 1-65535; HOST:PORT comes back as tcp://HOST:PORT. ValueError otherwise."""
    import ipaddress

    match = _ADDRESS.fullmatch(str(text).strip())
    problem = None
    if match is None:
        problem = " is not an address"
    elif (match["scheme"] or "tcp") not in ("tcp", "tls"):
        problem = f": {match['scheme']}:// is not a protocol gradsel connects with (tcp or tls)"
    elif not 1 <= int(match["port"]) <= 65535:
        problem = ": the port is not 1-65535"
    else:
        host = match["host"]
        try:
            if host.startswith("["):
                ipaddress.IPv6Address(host[1:-1])
            elif host.replace(".", "").isdigit():
                ipaddress.IPv4Address(host)
            elif len(host) > 253 or not all(_HOST_LABEL.fullmatch(label) for label in host.split(".")):
                raise ValueError(host)
        except ValueError:
            problem = f": {host!r} is not a host name or IP address"
    if problem:
        raise ValueError(
            f"{str(text)!r}{problem}; give the scheduler's address as {SCHEDULER_FORM}, e.g. tcp://127.0.0.1:8786"
        )
    assert match is not None  # no match set a problem
    return f"{match['scheme'] or 'tcp'}://{match['host']}:{int(match['port'])}"
