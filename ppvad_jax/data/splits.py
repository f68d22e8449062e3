"""Train / validation / test splits of UCFCrime2Local, as in the paper.

Train is ``Train_split_AD.txt``. The paper halves ``Test_split_AD.txt`` into
validation and test "preserving class distribution": per class, a seeded
shuffle, then half goes to validation and half to test. Where a class has an
odd count, the extra video goes alternately to test and to validation (class by
class in a fixed order), so that small sets still get both splits.
"""

import collections

import numpy as np

from ppvad_jax.data import ucf_layout


def halve_stratified(names, *, seed):
    """Returns ``(validation, test)``, two sorted lists that partition ``names``."""
    by_class = collections.defaultdict(list)
    for name in sorted(names):
        by_class[ucf_layout.video_class(name)].append(name)
    rng = np.random.default_rng(seed)
    validation, test = [], []
    extra_to_test = True
    for cls in ucf_layout.CLASSES:  # fixed order: the same seed gives the same split
        members = by_class.get(cls, [])
        order = rng.permutation(len(members))
        half = len(members) // 2
        if len(members) % 2:
            half += 0 if extra_to_test else 1
            extra_to_test = not extra_to_test
        validation += [members[i] for i in order[:half]]
        test += [members[i] for i in order[half:]]
    return sorted(validation), sorted(test)
