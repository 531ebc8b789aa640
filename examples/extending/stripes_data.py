"""A dataset from a function (docs/extending.md): ``load(image_size, seed, **options)``
returns every labelled image as a ``LoadedImages`` pool (reflectance in [0, 1]); orbitfl
carves the test set and SAFE's shared set out of it, applies data.imbalance_ratio and
splits the rest among the satellites by data.partition. Named as

    data: {factory: "stripes_data:load", options: {per_class: 60}, partition: dirichlet}
"""

import numpy as np

from orbitfl.fl.folders import LoadedImages


def load(image_size: int, seed: int, per_class: int = 60) -> LoadedImages:
    """Three classes: horizontal stripes, vertical stripes, flat noise."""
    rng = np.random.default_rng(seed)
    s = image_size
    rows = np.arange(s)[:, None] * np.ones((1, s))
    patterns = [0.5 + 0.4 * np.sin(rows), 0.5 + 0.4 * np.sin(rows.T), np.full((s, s), 0.5)]
    labels = np.repeat(np.arange(3), per_class)
    images = np.stack([patterns[c] for c in labels])[:, None].repeat(3, axis=1)
    images = np.clip(images + rng.normal(0, 0.1, images.shape), 0, 1).astype(np.float32)
    return LoadedImages(images, labels, ("horizontal", "vertical", "flat"))
