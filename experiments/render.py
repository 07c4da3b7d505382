"""Drawing an episode from its observations, for a GIF of a policy (`experiments.evaluate --gif`).

The seals MuJoCo tasks keep the positions (qpos) at the head of their observations, so MuJoCo's
own renderer draws each frame (headless through EGL: MUJOCO_GL=egl, set here when unset);
CartPole and MountainCar are drawn with matplotlib from their state variables.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np


def drawable(env_id: str) -> bool:
    from envs.mujoco.tasks import TASKS

    return env_id in TASKS or env_id in _CLASSIC


def frames(env_id: str, observations: np.ndarray, size: tuple[int, int] = (240, 320)) -> list:
    """[T] uint8 RGB images (height, width) of the observations of one episode."""
    from envs.mujoco.tasks import TASKS

    observations = np.asarray(observations)
    if env_id in TASKS:
        return _mujoco_frames(TASKS[env_id], observations, size)
    if env_id in _CLASSIC:
        return [_CLASSIC[env_id](obs, size) for obs in observations]
    raise ValueError(f"env_id: no drawing for {env_id!r}; drawable: the seals MuJoCo tasks, "
                     f"{', '.join(_CLASSIC)}")


def save_gif(path, images: list, fps: int = 30) -> Path:
    """Write `images` as an animated GIF, atomically."""
    from PIL import Image

    from jaxrl_align.data.files import write_atomic

    first, *rest = [Image.fromarray(np.asarray(image)) for image in images]
    return write_atomic(Path(path), lambda f: first.save(
        f, format="GIF", save_all=True, append_images=rest, duration=int(1000 / fps), loop=0))


def _mujoco_frames(task, observations, size):
    os.environ.setdefault("MUJOCO_GL", "egl")
    import mujoco

    from envs.mujoco.host_physics import load_model

    model = load_model(task)
    data = mujoco.MjData(model)
    renderer = mujoco.Renderer(model, *size)
    camera = mujoco.MjvCamera()
    mujoco.mjv_defaultFreeCamera(model, camera)
    camera.distance = 4.0
    images = []
    try:
        for obs in observations:
            data.qpos[:] = obs[:model.nq]
            mujoco.mj_forward(model, data)
            camera.lookat[:2] = data.qpos[:2] if model.nq > 1 else camera.lookat[:2]
            renderer.update_scene(data, camera)
            images.append(renderer.render().copy())
    finally:
        renderer.close()
    return images


def _figure(size):
    from jaxrl_align.runtime.plots import _pyplot

    height, width = size
    figure = _pyplot().figure(figsize=(width / 80, height / 80), dpi=80)
    return figure, figure.add_axes((0, 0, 1, 1))


def _image(figure) -> np.ndarray:
    from jaxrl_align.runtime.plots import _pyplot

    figure.canvas.draw()
    image = np.asarray(figure.canvas.buffer_rgba())[..., :3].copy()
    _pyplot().close(figure)
    return image


def _cartpole(obs, size):
    figure, ax = _figure(size)  # first: it loads matplotlib (deferred by gymnax_import)
    from matplotlib.patches import Rectangle

    x, _, theta, _ = (float(v) for v in obs[:4])
    ax.set_xlim(-2.6, 2.6), ax.set_ylim(-0.6, 1.6), ax.axis("off")
    ax.plot([-2.4, 2.4], [0, 0], color="0.3")
    ax.add_patch(Rectangle((x - 0.25, -0.075), 0.5, 0.15, color="0.2"))
    ax.plot([x, x + np.sin(theta)], [0, np.cos(theta)], lw=6, color="tab:orange")
    return _image(figure)


def _mountain_car(obs, size):
    position = float(obs[0])
    figure, ax = _figure(size)
    xs = np.linspace(-1.2, 0.6, 200)
    ax.plot(xs, np.sin(3 * xs) * 0.45 + 0.55, color="0.3")
    ax.plot([0.5], [np.sin(1.5) * 0.45 + 0.55], marker=">", ms=12, color="tab:green")
    ax.plot([position], [np.sin(3 * position) * 0.45 + 0.55], "o", ms=14, color="tab:blue")
    ax.set_xlim(-1.25, 0.65), ax.set_ylim(-0.05, 1.15), ax.axis("off")
    return _image(figure)


_CLASSIC = {"seals/CartPole-v0": _cartpole, "seals/MountainCar-v0": _mountain_car,
            "CartPole-v1": _cartpole, "MountainCar-v0": _mountain_car}
