"""Data parallel over a `Mesh`: the same seeds give the same parameters on one device and on two,
for one seed and for two seeds trained at once.

Runs in a subprocess with two fake CPU devices (XLA_FLAGS must be set before JAX starts)."""

import os
import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent(
    """
    import jax, numpy as np, jax.numpy as jnp
    from ram import step, tasks
    from ram.config import Config

    assert jax.device_count() == 2, jax.devices()
    config = Config(patch_size=4, num_glimpses=3, glimpse_hidden=16, location_hidden=16,
                    glimpse_features=32, core_hidden=32, batch_size=8, policy_hidden=8,
                    first_location="learned", warmup_steps=0)
    data = tasks.synthetic_split(64)
    for seeds in (1, 2):
        out = []
        for devices in (jax.devices()[:1], jax.devices()):
            mesh = step.make_mesh(devices)
            graphdef, states = step.init_states(config, seeds)
            states = step.replicate(states, mesh)
            chunk = step.make_train_chunk(graphdef, config, seeds, steps=5, mesh=mesh)
            states, metrics = chunk(states, step.replicate(data, mesh), step.seed_keys(config, seeds))
            out.append((jax.device_get(states.params), np.asarray(metrics["loss"])))
            if mesh is not None:
                assert len(states.params["classifier"]["kernel"][...].sharding.device_set) == 2
        (a, la), (b, lb) = out
        assert la.shape == (seeds,) and np.abs(la - lb).max() < 1e-5, (la, lb)
        for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
            np.testing.assert_allclose(x, y, rtol=2e-5, atol=2e-6)
        print(f"{seeds} seed(s): same parameters on 1 and 2 devices")
    """
)


def test_one_device_and_two_give_the_same_parameters():
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=2", JAX_PLATFORMS="cpu")
    proc = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "1 seed(s): same parameters on 1 and 2 devices" in proc.stdout
    assert "2 seed(s): same parameters on 1 and 2 devices" in proc.stdout
