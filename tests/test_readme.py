"""The README's "Python API" section runs exactly as written, in order, in one namespace (on real
MNIST from $RAM_MNIST_DIR and the recorded run experiments/runs/mnist28-g6)."""

import re
from pathlib import Path

import numpy as np

README = Path(__file__).resolve().parent.parent / "README.md"


def python_api_snippets() -> list[str]:
    text = README.read_text()
    section = text[text.index("\n## Python API\n") :]
    section = section[: section.index("\n## ", 1)]
    return re.findall(r"```python\n(.*?)```", section, flags=re.S)


def test_python_api_snippets_run(tmp_path, monkeypatch, mnist_dir):
    snippets = python_api_snippets()
    assert len(snippets) == 3
    monkeypatch.setenv("RAM_MNIST_DIR", mnist_dir)
    monkeypatch.chdir(tmp_path)  # "runs/arrays" is written here; the recorded runs are read in place
    (tmp_path / "experiments").symlink_to(README.parent / "experiments")
    namespace = {}
    for code in snippets:
        exec(compile(code, str(README), "exec"), namespace)  # noqa: S102 (the README's own code)
    assert namespace["trajectory"].logits.shape == (8, 10)
    assert namespace["results"]["test_error_pct"][0] < 80.0  # chance is 90%
    assert (tmp_path / "runs" / "arrays" / "results.json").is_file()
    probs = namespace["probs"]
    assert probs.shape == (100, 10) and np.allclose(probs.sum(-1), 1.0, atol=1e-5)
    assert (probs.argmax(-1) == namespace["mnist"].test.labels[:100]).mean() >= 0.95
