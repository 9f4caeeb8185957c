"""Data parallel over a `Mesh`: the same seed gives the same parameters on one device and on two.

Runs in a subprocess with two fake CPU devices (XLA_FLAGS must be set before JAX starts)."""

import os
import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent(
    """
    import jax, numpy as np, jax.numpy as jnp
    from ram import tasks, train
    from ram.config import Config

    assert jax.device_count() == 2, jax.devices()
    config = Config(patch_size=4, num_glimpses=3, glimpse_hidden=16, location_hidden=16,
                    glimpse_features=32, core_hidden=32, batch_size=8, policy_hidden=8,
                    first_location="learned", warmup_steps=0)
    data = tasks.synthetic_split(64)
    out = []
    for devices in (jax.devices()[:1], jax.devices()):
        mesh = train.make_mesh(devices)
        graphdef, params = train.init_model(config)
        state = train.replicate(train.init_state(config, params), mesh)
        chunk = train.make_train_chunk(graphdef, config, steps=5, mesh=mesh)
        state, metrics = chunk(state, train.replicate(data, mesh), jax.random.key(3))
        out.append((jax.device_get(state.params), float(metrics["loss"])))
        if mesh is not None:
            assert len(state.params["classifier"]["kernel"][...].sharding.device_set) == 2
    (a, la), (b, lb) = out
    assert abs(la - lb) < 1e-5, (la, lb)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_allclose(x, y, rtol=2e-5, atol=2e-6)
    print("same parameters on 1 and 2 devices")
    """
)


def test_one_device_and_two_give_the_same_parameters():
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=2", JAX_PLATFORMS="cpu")
    proc = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "same parameters on 1 and 2 devices" in proc.stdout
