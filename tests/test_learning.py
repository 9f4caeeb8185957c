"""RAM learns: a short training run on real MNIST must be far better than chance (90% error)."""

import pytest

from ram import train
from ram.config import get_config


@pytest.mark.slow
def test_short_training_on_real_mnist_learns(tmp_path, mnist):
    # About 40 s on 2 CPU cores; the full recipe and its recorded result are in experiments/.
    config = get_config(
        "mnist28",
        ["train_steps=1200", "eval_every=400", "warmup_steps=100", "learning_rate=2e-3", "mc_samples=2"],
    )
    results = train.train_and_evaluate(config, tmp_path, mnist, progress=False)
    [single], [averaged] = results["test_error_pct"], results["test_error_mc_pct"]
    assert single < 30.0 and averaged < 30.0, results
