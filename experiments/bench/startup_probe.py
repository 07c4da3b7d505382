"""What a user's training script does before its first results, run by the throughput bench in
a fresh interpreter: imports, env, programs shaped like the runner's (init and a chunk of
updates vmapped over seeds, here 1 seed; a chunk is 1/20 of the default PPO run), then one
chunk. Prints wall-clock timestamps (time.time(), comparable across processes) as JSON.

    python -m experiments.bench.startup_probe CACHE_DIR
"""
import time

t_start = time.time()

import json  # noqa: E402
import sys  # noqa: E402

import jax  # noqa: E402

import envs  # noqa: E402
from experiments.configs import PUREJAXRL_CARTPOLE  # noqa: E402
from jaxrl_align.platform import compilation_cache  # noqa: E402
from jaxrl_align.rl import ppo  # noqa: E402


def main(cache_dir: str) -> dict:
    t_imports = time.time()
    compilation_cache.enable(cache_dir)
    env, env_params = envs.make("seals/CartPole-v0")
    algo = ppo.make(PUREJAXRL_CARTPOLE, env, env_params)
    chunk = max(1, algo.config.num_updates // 20)
    keys = jax.random.PRNGKey(0)[None]
    t_env = time.time()

    def run_chunk(states):
        one_seed = lambda s: jax.lax.scan(lambda s, _: algo.update(s, None), s, None,
                                          length=chunk)
        return jax.vmap(one_seed)(states)

    init = jax.vmap(lambda key: algo.init(key, None))
    init_fn = jax.jit(init).lower(keys).compile()
    chunk_fn = jax.jit(run_chunk).lower(jax.eval_shape(init, keys)).compile()
    t_compiled = time.time()
    states, metrics = chunk_fn(init_fn(keys))
    jax.block_until_ready((states, metrics))
    t_done = time.time()
    return dict(t_start=t_start, t_imports=t_imports, t_env=t_env, t_compiled=t_compiled,
                t_done=t_done, chunk_updates=chunk, env_steps=int(states.env_steps[0]))


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1])))
