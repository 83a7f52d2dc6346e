"""A third-party plugin: importing this module registers its strategy with nasforge."""

import random

import nasforge


@nasforge.register("strategy", "example_plugin")
class ExamplePluginStrategy:
    """Proposes uniformly random values of a list of options (a stand-in strategy)."""

    def __init__(self, options=(0, 1, 2), *, seed=0):
        self.options = list(options)
        self.rng = random.Random(seed)
        self.told = []

    def ask(self):
        return self.rng.choice(self.options)

    def tell(self, arch, score):
        self.told.append((arch, score))
