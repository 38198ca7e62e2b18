"""The evaluation layer: the test protocol, scoring, baselines and controls, sample spread, plots.

``protocol.run_evaluation`` is what `vpi eval` and the end of `vpi train` call; ``scoring`` pools
a model's counts over a seeded episode list; ``controls`` holds what exposes a model that ignores
its support (swapped support, the class-agnostic oracle); ``baselines`` the trivial predictors.
"""
