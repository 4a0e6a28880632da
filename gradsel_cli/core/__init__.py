"""The network core: what both the gradient sources (sources/) and the training (numerics/) build on, knowing
neither: the network's parameters, checked batches, loss, exact gradient and predictions (network.py), the
thread policy of the kernels (threads.py), Numba's on-disk cache of them (kernel_cache.py), and the timer
(timing.py). Imports run one way: kernels/ below, sources/ and numerics/ above.
"""
